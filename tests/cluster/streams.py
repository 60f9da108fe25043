"""Random streams of tracking calls, definitions and clock moves, drawn from a seed."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

from audiences_server.engine.computations import Spec

T0 = 1_800_000_000_000  # 2027-01-15T08:00:00Z
MINUTE, HOUR = 60_000, 3_600_000

DEFINITIONS = [
    Spec("audience", "users", "buyers", definition="event('Order Completed').within(1 days).count() >= 2"),
    Spec("audience", "users", "pro", definition="trait('plan') = 'pro'"),
    Spec("computed_trait", "users", "spent_week", definition="event('Order Completed').within(7 days).sum('total')"),
    Spec("audience", "users", "pro_buyers", definition="trait('pro') = true AND trait('buyers') = true"),
]
# Account audiences: each shard counts its users' results per account, the account's shard combines them.
ACCOUNTS = [
    Spec("audience", "accounts", "pro_accounts", definition="ANY trait('plan') = 'pro'"),
    Spec("audience", "accounts", "gold_buying", definition="trait('tier') = 'gold' AND ANY trait('buyers') = true"),
    Spec("audience", "accounts", "all_pro", definition="ALL trait('pro') = true"),
    Spec("audience", "accounts", "quiet", definition="ALL NOT event('Order Completed').within(1 days).count() >= 1"),
    # An account audience reading another one's value (an account trait, on the account's shard).
    Spec("audience", "accounts", "quiet_pro", definition="trait('pro_accounts') = true AND trait('quiet') = true"),
]
# Created mid-stream, so that every shard backfills its own profiles.
LATE = Spec("audience", "users", "readers", definition="event('Page Viewed').within(6 hours).count() >= 1")
LATE_ACCOUNTS = Spec("audience", "accounts", "reading",
                     definition="ANY event('Page Viewed').within(6 hours).count() >= 1 OR trait('tier') = 'iron'")

Step = tuple[str, Any]


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


class Stream:
    """Calls from a few people who browse anonymously, sign in (merging profiles), buy, join and
    leave accounts; the clock moves between batches."""

    def __init__(self, seed: int, people: int = 14, accounts: bool = True) -> None:
        self._rng = random.Random(seed)
        self._people = people
        self._messages = 0
        self._accounts = accounts

    def steps(self, ticks: int, calls_per_tick: int) -> list[Step]:
        now = T0
        steps: list[Step] = [("define", spec) for spec in DEFINITIONS + (ACCOUNTS if self._accounts else [])]
        for tick in range(ticks):
            if tick == ticks // 2:
                steps.append(("define", LATE))
                if self._accounts:
                    steps.append(("define", LATE_ACCOUNTS))
            calls = [self._call(now) for _ in range(calls_per_tick)]
            for start in range(0, len(calls), 5):
                steps.append(("calls", calls[start:start + 5]))
            now += self._rng.randrange(10 * MINUTE, 5 * HOUR)
            steps.append(("tick", now))
            if tick == ticks // 2:
                # A tick repeated at the same time, with calls in between: a tick is not its time.
                steps.append(("calls", [self._call(now) for _ in range(5)]))
                steps.append(("tick", now))
        return steps

    def calls(self, now: int, count: int) -> list[dict[str, Any]]:
        """`count` calls received at `now` (their timestamps up to three hours before it)."""
        return [self._call(now) for _ in range(count)]

    def _call(self, now: int) -> dict[str, Any]:
        rng = self._rng
        self._messages += 1
        person = rng.randrange(self._people)
        call: dict[str, Any] = {"messageId": f"m{self._messages}", "timestamp": _iso(now - rng.randrange(0, 3 * HOUR))}
        kind = rng.choices(["track", "page", "identify", "group"], [5, 2, 3, 2])[0]
        who = self._who(person, signed_in=kind in ("identify", "group") or rng.random() < 0.5)
        if kind == "track":
            event = rng.choice(["Order Completed", "Order Completed", "Cart Viewed"])
            return call | who | {"type": "track", "event": event, "properties": {"total": rng.randrange(1, 100)}}
        if kind == "page":
            return call | who | {"type": "page", "name": rng.choice(["home", "pricing"])}
        if kind == "identify":
            # Both ids at once: an anonymous profile met again signed in is merged into the user's.
            both = who | {"anonymousId": f"a{person}-{rng.randrange(3)}"}
            return call | both | {"type": "identify", "traits": {"plan": rng.choice(["free", "pro", "pro", None])}}
        group = {"type": "group", "groupId": f"g{rng.randrange(4)}", "traits": {"tier": rng.choice(["gold", "iron"])}}
        if rng.random() < 0.3:
            group["context"] = {"unlink": True}
        return call | who | group

    def _who(self, person: int, signed_in: bool) -> dict[str, Any]:
        if signed_in:
            return {"userId": f"u{person}"}
        return {"anonymousId": f"a{person}-{self._rng.randrange(3)}"}
