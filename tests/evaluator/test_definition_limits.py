"""Definitions past the language's limits (length, list values, number digits) and definitions
that read themselves are refused precisely through the real server: INVALID_ARGUMENT naming the
line and column, never INTERNAL, and before any costly work."""

from __future__ import annotations

import time

import grpc
import pytest
from audiences.v1 import admin_pb2, common_pb2
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from audiences_server.core.ql.calls import MAX_LIST_VALUES
from audiences_server.core.ql.parser import MAX_DEFINITION_BYTES
from tests.conftest import bearer, error_reason
from tests.evaluator.conftest import Space

USERS = common_pb2.COLLECTION_USERS
AUDIENCE = common_pb2.COMPUTATION_KIND_AUDIENCE
HUGE = "9" * 5000


def _validate(space: Space, definition: str, key: str = "") -> admin_pb2.ValidateDefinitionResponse:
    request = admin_pb2.ValidateDefinitionRequest(definition=definition, kind=AUDIENCE, collection=USERS, key=key)
    reply: admin_pb2.ValidateDefinitionResponse = space.running.admin.ValidateDefinition(
        request, metadata=bearer(space.tokens["admin"]))
    return reply


def _create_error(space: Space, definition: str, key: str = "x") -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        space.define(key, definition)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    return caught.value


def _info(error: grpc.RpcError) -> dict[str, str]:
    """The ErrorInfo metadata of a failed call."""
    status = rpc_status.from_call(error)
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return dict(info.metadata)
    raise AssertionError("no ErrorInfo detail")


@pytest.mark.parametrize(
    ("definition", "column"),
    [
        (f"trait('a') = {HUGE}", 14),
        (f"event('A').mode(property('x'), {HUGE}) = 'a'", 32),
        (f"trait('a') = -{HUGE}.5", 14),
    ],
)
def test_huge_numbers_are_refused_where_they_stand(space: Space, definition: str, column: int) -> None:
    """A number of thousands of digits (an equality operand, mode's minimum) is a definition error
    at the number's line and column, in ValidateDefinition and in CreateAudience."""
    reply = _validate(space, definition)
    assert not reply.valid
    assert (reply.error.reason, reply.error.line, reply.error.column) == ("DEFINITION_TOO_LARGE", 1, column)
    assert "at most 100 characters" in reply.error.message
    error = _create_error(space, definition)
    assert error_reason(error) == "INVALID_DEFINITION"
    assert (_info(error)["line"], _info(error)["column"]) == ("1", str(column))


def test_a_definition_past_the_length_limit_is_refused_before_parsing(space: Space) -> None:
    """`one_of` with 100,000 values is refused at once, pointing at the first character past the
    limit, with a short message however long the line."""
    values = ", ".join(f"'v{i}'" for i in range(100_000))
    definition = f"trait('a').one_of({values})"
    started = time.monotonic()
    reply = _validate(space, definition)
    error = _create_error(space, definition)
    assert time.monotonic() - started < 2  # parsing it took 5 s
    assert (reply.valid, reply.error.reason, reply.error.line) == (False, "DEFINITION_TOO_LARGE", 1)
    assert reply.error.column == MAX_DEFINITION_BYTES + 1
    assert f"at most {MAX_DEFINITION_BYTES:,} bytes" in reply.error.message
    assert len(reply.error.caret_display) < 300
    assert len(error.details() or "") < 1000
    assert _info(error)["column"] == str(MAX_DEFINITION_BYTES + 1)


def test_bytes_not_characters_are_counted(space: Space) -> None:
    """The limit is in bytes of UTF-8: a definition of fewer characters than the limit but more
    bytes is refused; one of exactly the limit is read."""
    room = MAX_DEFINITION_BYTES - len("trait('') = 1")
    padding = "é" * (room // 2) + "a" * (room % 2)
    fits = f"trait('{padding}') = 1"
    assert len(fits.encode()) == MAX_DEFINITION_BYTES
    assert _validate(space, fits).valid
    over = _validate(space, f"trait('{padding}é') = 1")
    assert (over.valid, over.error.reason) == (False, "DEFINITION_TOO_LARGE")


def test_list_values_past_the_limit_are_refused_at_the_first_one_too_many(space: Space) -> None:
    """A list may hold MAX_LIST_VALUES values; one more is refused, pointing at it."""
    values = [f"'{i}'" for i in range(MAX_LIST_VALUES + 1)]
    assert _validate(space, f"trait('a').one_of({', '.join(values[:-1])})").valid
    definition = f"trait('a').none_of({', '.join(values)})"
    reply = _validate(space, definition)
    assert (reply.valid, reply.error.reason) == (False, "DEFINITION_TOO_LARGE")
    assert reply.error.offending_text == values[-1]
    assert reply.error.column == definition.index(values[-1], definition.index(values[-2]) + 1) + 1
    _create_error(space, definition)


def test_a_long_line_reports_its_error_in_a_short_message(space: Space) -> None:
    """A syntax error at the end of a long one-line definition comes back with its column and a
    caret display cut around the fault, not the whole line."""
    definition = " OR ".join(f"trait('t') = '{'x' * 200}{i}'" for i in range(40)) + " OR"
    reply = _validate(space, definition)
    assert (reply.valid, reply.error.reason, reply.error.column) == (False, "SYNTAX_ERROR", len(definition) + 1)
    shown, caret = reply.error.caret_display.splitlines()
    assert len(shown) < 200
    assert shown.startswith("\u2026")
    assert caret.index("^") == len(shown)
    error = _create_error(space, definition)
    assert _info(error)["column"] == str(len(definition) + 1)


@pytest.mark.parametrize(
    ("key", "definition", "kind"),
    [("c", "trait('c') = 1", "audience"), ("n", "NOT (trait('n') = true)", "audience"),
     ("t", "trait('t')", "computed_trait")],
)
def test_a_definition_reading_its_own_key_is_a_cycle(space: Space, key: str, definition: str, kind: str) -> None:
    """A definition that reads its own key is a cycle of length one: refused on create, and by
    ValidateDefinition, naming the key like a longer cycle."""
    with pytest.raises(grpc.RpcError) as caught:
        space.define(key, definition, kind=kind)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(caught.value) == "DEPENDENCY_CYCLE"
    assert _info(caught.value)["cycle_keys"] == f"{key},{key}"
    assert f"{key} -> {key}" in (caught.value.details() or "")
    kinds = {"audience": AUDIENCE, "computed_trait": common_pb2.COMPUTATION_KIND_COMPUTED_TRAIT}
    reply = space.running.admin.ValidateDefinition(admin_pb2.ValidateDefinitionRequest(
        definition=definition, kind=kinds[kind], collection=USERS, key=key), metadata=bearer(space.tokens["admin"]))
    assert (reply.valid, reply.error.reason, list(reply.error.cycle_keys)) == (False, "DEPENDENCY_CYCLE", [key, key])


def test_an_edit_to_read_its_own_key_is_refused(space: Space) -> None:
    """Updating a definition so that it reads itself is refused and leaves it as it was."""
    space.define("c", "trait('plan') = 'pro'")
    stub, meta = space.running.admin, bearer(space.tokens["admin"])
    with pytest.raises(grpc.RpcError) as caught:
        stub.UpdateAudience(admin_pb2.UpdateAudienceRequest(
            audience=admin_pb2.Audience(collection=USERS, key="c", definition="trait('c') = true"),
            update_mask=field_mask_pb2.FieldMask(paths=["definition"])), metadata=meta)
    assert error_reason(caught.value) == "DEPENDENCY_CYCLE"
    got = stub.GetAudience(admin_pb2.GetAudienceRequest(collection=USERS, key="c"), metadata=meta).audience
    assert got.definition == "trait('plan') = 'pro'"


def test_an_account_audience_reading_the_users_key_of_its_name_is_not_a_cycle(space: Space) -> None:
    """Inside ANY, `trait('vip')` reads the users' `vip`: an account audience named `vip` may."""
    space.define("vip", "trait('plan') = 'pro'")
    space.define("vip", "ANY trait('vip') = true", collection="accounts")
