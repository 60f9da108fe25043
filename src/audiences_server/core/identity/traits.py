"""Custom traits: last write wins by event time, ties by arrival (docs/identity.md, "Traits").

Each top-level trait key is one register. A write carries the stamp `(event timestamp,
arrival sequence)` and replaces the stored entry only when its stamp is greater, so applying
messages in any order gives the state of applying them in stamp order, and applying one
twice changes nothing. A `null` stores a tombstone with its stamp: the trait disappears, a
later-stamped value brings it back, and an earlier-stamped value arriving late does not.

Nested objects are values like any other: `{"address": {"city": "Paris"}}` replaces the
whole `address`, it is not merged key by key with the stored one (the top-level key is the
unit of last-write-wins, as in Segment's profile traits). `trait('address.city')` reads into
the stored object.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TraitValue:
    """The stored state of one trait key.

    Attributes:
        value: the JSON value; None is a tombstone (the trait was removed).
        ts_ms: the event timestamp of the write, in ms since the epoch.
        seq: the write's arrival sequence, increasing per space in the order messages were
            accepted; it orders writes with the same timestamp.
    """

    value: object
    ts_ms: int
    seq: int

    @property
    def removed(self) -> bool:
        """Whether this entry is a tombstone."""
        return self.value is None

    @property
    def stamp(self) -> tuple[int, int]:
        """The order of writes: by timestamp, then by arrival."""
        return (self.ts_ms, self.seq)


@dataclass(frozen=True, slots=True)
class TraitUpdate:
    """What a write or a merge did to a trait map.

    Attributes:
        written: keys whose stored entry changed, tombstones included: persist these.
        changed: keys whose visible value changed: the profile is touched if any.
    """

    written: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()


def apply_traits(
    current: MutableMapping[str, TraitValue],
    incoming: Mapping[str, object],
    event_ts_ms: int,
    arrival_seq: int,
) -> TraitUpdate:
    """Apply one message's traits to a profile's trait map, in place.

    Args:
        current: the profile's entries, tombstones included; updated in place.
        incoming: the message's traits (top-level keys; a None value removes the trait).
        event_ts_ms: the message's event timestamp.
        arrival_seq: the message's arrival sequence.

    Returns:
        The keys written and the keys whose visible value changed, sorted.
    """
    offers = {
        key: TraitValue(value, event_ts_ms, arrival_seq)
        for key, value in incoming.items()
        if isinstance(key, str)
    }
    return _offer_all(current, offers)


def merge_traits_into(
    survivor: MutableMapping[str, TraitValue], loser: Mapping[str, TraitValue]
) -> TraitUpdate:
    """Fold a merged profile's trait map into the survivor's, in place, by the same rule.

    For each key the entry with the greater stamp wins, tombstones included, so the result
    is what one profile would hold had it received both profiles' messages. On equal stamps
    the survivor's entry stays.

    Args:
        survivor: the surviving profile's entries; updated in place.
        loser: the merged profile's entries.

    Returns:
        The survivor's keys written and the keys whose visible value changed, sorted.
    """
    return _offer_all(survivor, loser)


def visible_traits(entries: Mapping[str, TraitValue]) -> dict[str, object]:
    """The traits as a profile shows them: tombstones left out, keys sorted.

    Args:
        entries: a trait map.

    Returns:
        Key to value.
    """
    return {key: entries[key].value for key in sorted(entries) if not entries[key].removed}


def _offer_all(
    current: MutableMapping[str, TraitValue], offers: Mapping[str, TraitValue]
) -> TraitUpdate:
    written: list[str] = []
    changed: list[str] = []
    for key in sorted(offers):
        old, new = current.get(key), offers[key]
        if old is not None and new.stamp <= old.stamp:
            continue
        current[key] = new
        written.append(key)
        if not _same_json(old.value if old else None, new.value):
            changed.append(key)
    return TraitUpdate(tuple(written), tuple(changed))


def _same_json(a: object, b: object) -> bool:
    """Whether two trait values serialise to the same JSON, compared without serialising.

    `==` alone would call 1, 1.0 and True equal, and 0.0 and -0.0, but they are different trait
    values; NaN is the same JSON as NaN although it is not equal to itself. Values other than
    JSON's (str, int, float, bool, None, lists, dicts with string keys) are compared serialised.
    """
    kind = type(a)
    if kind is str or kind is int or kind is bool or a is None:
        return type(b) is kind and a == b
    if isinstance(a, float) and kind is float:
        return type(b) is float and repr(a) == repr(b)
    if (isinstance(a, dict) and kind is dict and isinstance(b, dict) and type(b) is dict
            and all(type(key) is str for key in a) and all(type(key) is str for key in b)):
        return len(a) == len(b) and all(key in b and _same_json(value, b[key]) for key, value in a.items())
    if isinstance(a, list | tuple) and isinstance(b, list | tuple) and type(a) in _ARRAYS and type(b) in _ARRAYS:
        return len(a) == len(b) and all(map(_same_json, a, b))
    return _canonical(a) == _canonical(b)


_ARRAYS = (list, tuple)


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, default=repr)
