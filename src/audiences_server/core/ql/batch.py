"""Evaluating a set of definitions from scratch, each after the definitions it reads."""

from __future__ import annotations

import graphlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from audiences_server.core.ql.checker import CheckedDefinition
from audiences_server.core.ql.interpreter import Profile, evaluate


class CycleError(ValueError):
    """Definitions that read each other in a circle; ``keys`` lists the circle in order."""

    def __init__(self, keys: Sequence[str]) -> None:
        super().__init__("definitions read each other in a cycle: " + " -> ".join(keys))
        self.keys = tuple(keys)


@dataclass(frozen=True)
class Results:
    """Every definition's value for every profile: ``users[user_id][key]`` and
    ``accounts[account_id][key]``; an absent computed trait is ``None``."""

    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)


def dependencies(key: str, definitions: Mapping[str, CheckedDefinition]) -> set[str]:
    """The keys among ``definitions`` that definition ``key`` reads.

    A ``trait('k')`` names definition ``k`` when ``k`` is defined for the collection it is
    read from: the definition's own collection, or ``users`` inside an account's ANY/ALL.
    """
    checked = definitions[key]
    summary = checked.summary
    found = {k for k in summary.traits
             if k in definitions and definitions[k].collection == checked.collection}
    found |= {k for k in summary.user_traits
              if k in definitions and definitions[k].collection == "users"}
    return found


def dependency_order(definitions: Mapping[str, CheckedDefinition]) -> list[str]:
    """Order the keys so each definition comes after the definitions it reads.

    Raises:
        CycleError: If definitions read each other in a cycle.
    """
    sorter = graphlib.TopologicalSorter(
        {key: sorted(dependencies(key, definitions)) for key in sorted(definitions)}
    )
    try:
        return list(sorter.static_order())
    except graphlib.CycleError as error:
        raise CycleError(error.args[1]) from None


def evaluate_all(
    definitions: Mapping[str, CheckedDefinition],
    *,
    users: Mapping[str, Profile],
    accounts: Mapping[str, Profile] | None = None,
    links: Mapping[str, Sequence[str]] | None = None,
    now_ms: int,
) -> Results:
    """Evaluate every definition for every profile of its collection, in dependency order.

    Each value is written into the profile's traits under its key before the definitions
    that read it run, so audiences of audiences, and account audiences whose ``ANY``/``ALL``
    read user audiences, see current values. An absent computed trait removes the key.

    Args:
        definitions: Checked definitions by key.
        users: User profiles by id (their ``users`` field is ignored).
        accounts: Account profiles by id (their ``users`` field is ignored).
        links: Per account id, the ids of its linked users.
        now_ms: The evaluation time.

    Returns:
        The value of each definition for each profile of its collection.
    """
    accounts = accounts or {}
    links = links or {}
    user_traits = {uid: dict(p.traits) for uid, p in users.items()}
    account_traits = {aid: dict(p.traits) for aid, p in accounts.items()}
    results = Results({uid: {} for uid in users}, {aid: {} for aid in accounts})
    for key in dependency_order(definitions):
        checked = definitions[key]
        if checked.collection == "users":
            for uid, user in users.items():
                profile = Profile(user.events, user_traits[uid])
                _store(key, evaluate(checked, profile, now_ms), user_traits[uid],
                       results.users[uid])
        else:
            for aid, account in accounts.items():
                linked = [Profile(users[u].events, user_traits[u]) for u in links.get(aid, ())]
                profile = Profile(account.events, account_traits[aid], linked)
                _store(key, evaluate(checked, profile, now_ms), account_traits[aid],
                       results.accounts[aid])
    return results


def _store(key: str, value: Any, traits: dict[str, Any], results: dict[str, Any]) -> None:
    results[key] = value
    if value is None:
        traits.pop(key, None)
    else:
        traits[key] = value
