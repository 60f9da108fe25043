"""The audit log's entries, written by a decorator on the admin RPCs that change something.

An entry is written once the RPC has succeeded (a refused call changes nothing and leaves none),
with the label of the caller's token; it is its own small write, after the action's.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from audiences_server.api.context import caller_label, space_id
from audiences_server.engine.computations import EDITABLE

Entry = tuple[str, str, str, dict[str, Any]]  # action, target type, target, details
Describe = Callable[[Any, Any], Entry]
F = TypeVar("F", bound=Callable[..., Any])


def audited(describe: Describe) -> Callable[[F], F]:
    """Records what `describe(request, response)` says the RPC did, after it succeeded."""

    def wrap(method: F) -> F:
        @functools.wraps(method)
        def run(self: Any, request: Any, context: Any) -> Any:
            response = method(self, request, context)
            action, target_type, target, details = describe(request, response)
            self.engine.versions.record(space_id(), caller_label(), action, target_type, target, details)
            return response

        return run  # type: ignore[return-value]

    return wrap


def mask_paths(request: Any, resource: str, ignored: frozenset[str] = frozenset(),
               only: frozenset[str] | None = None) -> list[str]:
    """The fields an update names: its mask, or with an empty mask the fields set on the resource
    (but those `ignored`, and of `only` when given)."""
    paths = list(request.update_mask.paths)
    if not paths:
        paths = [f.name for f, _ in getattr(request, resource).ListFields()
                 if f.name not in ignored and (only is None or f.name in only)]
    return sorted(paths)


def switched(paths: list[str], enabled: bool) -> str:
    """`enable` or `disable` for an update of the switch alone, else `update`."""
    if paths == ["enabled"]:
        return "enable" if enabled else "disable"
    return "update"


def definition_update(kind: str, resource: str) -> Describe:
    """An update of an audience or computed trait: enable, disable or update, with the fields
    changed (with an empty mask, the editable ones set) and the version it leaves current."""

    def describe(request: Any, response: Any) -> Entry:
        paths = mask_paths(request, resource, only=EDITABLE)
        message = getattr(request, resource)
        return (switched(paths, message.enabled), kind, message.key,
                {"fields": paths, "version": getattr(response, resource).version})

    return describe


def definition_change(action: str, kind: str, resource: str | None = None) -> Describe:
    """A create (the key is on the resource, and the details name its version) or a delete (the key
    on the request) of a definition."""

    def describe(request: Any, response: Any) -> Entry:
        if resource is None:
            return action, kind, request.key, {}
        return action, kind, getattr(request, resource).key, {"version": getattr(response, resource).version}

    return describe


def identity_rule_update(request: Any, response: Any) -> Entry:
    """An identity rule's update, with the fields changed."""
    paths = mask_paths(request, "rule", frozenset({"id_type", "update_time"}))
    return "update_identity_rule", "identity_rule", request.rule.id_type.strip().lower(), {"fields": paths}


def destination_create(request: Any, response: Any) -> Entry:
    """A destination's creation, with its kind."""
    return "create", "destination", request.destination.key, {"kind": request.destination.WhichOneof("config") or ""}


def destination_update(request: Any, response: Any) -> Entry:
    """A destination's update (or enable, disable), with the fields changed."""
    paths = mask_paths(request, "destination", frozenset({"key", "id"}))
    return switched(paths, request.destination.enabled), "destination", request.destination.key, {"fields": paths}


def destination_delete(request: Any, response: Any) -> Entry:
    """A destination's deletion."""
    return "delete", "destination", request.key, {"force": request.force}


def _connection(destination_key: str, computation: Any) -> str:
    return f"{destination_key}/{computation.key}"


def connection_create(request: Any, response: Any) -> Entry:
    """A definition connected to a destination."""
    connection = request.connection
    return "connect", "connection", _connection(connection.destination_key, connection.computation), {}


def connection_update(request: Any, response: Any) -> Entry:
    """A connection's options changed."""
    connection = request.connection
    paths = mask_paths(request, "connection", frozenset({"destination_key", "computation"}))
    return ("update_connection", "connection", _connection(connection.destination_key, connection.computation),
            {"fields": paths})


def connection_delete(request: Any, response: Any) -> Entry:
    """A definition disconnected from a destination."""
    return "disconnect", "connection", _connection(request.destination_key, request.computation), {}


def redrive(request: Any, response: Any) -> Entry:
    """Dead letters put back in their queue, with how many."""
    target = _connection(request.destination_key, request.computation) if request.HasField("computation") \
        else request.destination_key
    return "redrive", "dead_letters", target, {"count": response.redriven_count}
