"""A deterministic synthetic data set: an e-commerce shop selling to businesses.

`generate(users, events, now_ms, seed)` yields tracking-spec calls as JSON-like dicts, in the
shape `BatchJson` accepts, each with an explicit `messageId` and `timestamp`:

- one `identify` per user (traits `email`, `plan`, `currency`, `created_at`) stamped before the
  event window, and a later one with a new `plan` for about 8% of users;
- one `group` per link of a user to its account (`users // 10` accounts, about 15% of users in
  a second one), with the account traits `name`, `industry` and `employees`;
- exactly `events` events over the `days` (120) days before `now_ms`, in sessions: `Signed In`,
  `Page Viewed` (page calls), `Product Viewed`, `Product Added` and `Order Completed`
  (`order_id`, `revenue`, `currency`, `products`, `coupon`, …), some orders completed up to 30
  hours after the cart, and a few `Order Refunded`.

Activity per user is skewed (log-normal), accounts have skewed sizes, traffic grows over the
window with a weekly rhythm, and about 4% of orders are paid in another currency than the cart's.
Every event is stamped at or before `now_ms`; events come roughly in time order (a session's
delayed order or refund comes with its session). The same arguments always give the same calls.

User ids are `user_id(i)` for `i` in `range(users)` and account ids `account_id(j)`, so a
benchmark can address existing profiles without keeping the calls.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MINUTE_MS = 60_000
EVENT_NAMES = ("Page Viewed", "Product Viewed", "Product Added", "Order Completed", "Order Refunded", "Signed In")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CURRENCIES = (("USD", 0.7), ("EUR", 0.2), ("GBP", 0.1))
_PLANS = (("free", 0.6), ("pro", 0.3), ("enterprise", 0.1))
_INDUSTRIES = (
    ("Software", 0.25), ("Retail", 0.15), ("Manufacturing", 0.12), ("Healthcare", 0.1), ("Finance", 0.1),
    ("Education", 0.08), ("Logistics", 0.08), ("Media", 0.07), ("Hospitality", 0.05),
)
_CATEGORIES = ("Office Supplies", "Furniture", "Electronics", "Cleaning", "Breakroom", "Safety")
_PAGES = (
    ("Home", "/"), ("Pricing", "/pricing"), ("Catalog", "/catalog"), ("Search", "/search"), ("Cart", "/cart"),
    ("Account", "/account"), ("Help", "/help"), ("Blog", "/blog"),
)
_REFERRERS = ("", "", "https://www.google.com/", "https://www.bing.com/", "https://news.example.org/")
_COUPONS = ("SPRING10", "B2B15", "FREESHIP", "WELCOME5")
_SIGN_IN_METHODS = ("password", "password", "sso", "google")
_DOMAINS = ("example.com", "example.org", "example.net", "mail.example")
_LIBRARY = {"name": "analytics-python", "version": "2.3.2"}
_PRODUCTS = 5000


def user_id(i: int) -> str:
    """The `userId` of the i-th user."""
    return f"u{i:07d}"


def account_id(j: int) -> str:
    """The `groupId` of the j-th account."""
    return f"acct{j:06d}"


def iso(ms: int) -> str:
    """Milliseconds since the epoch as ISO-8601 UTC with milliseconds."""
    moment = _EPOCH + timedelta(milliseconds=ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _pick(rng: random.Random, table: tuple[tuple[str, float], ...]) -> str:
    roll, acc = rng.random(), 0.0
    for value, weight in table:
        acc += weight
        if roll < acc:
            return value
    return table[-1][0]


@dataclass(frozen=True)
class _User:
    index: int
    currency: str
    plan: str
    accounts: tuple[int, ...]


class _Generator:
    def __init__(self, users: int, events: int, now_ms: int, seed: int, days: int) -> None:
        if users < 1 or events < 0 or days < 1:
            raise ValueError("need at least one user and one day, and no negative event count")
        self.users_n, self.events_n, self.now, self.days = users, events, now_ms, days
        self.rng = random.Random(seed)
        self.ids = itertools.count()
        self.prefix = f"bench-{seed}-"
        self.accounts_n = max(1, users // 10)

    def message_id(self) -> str:
        return f"{self.prefix}{next(self.ids):010d}"

    def call(self, kind: str, ts: int, **fields: Any) -> dict[str, Any]:
        return {"type": kind, "messageId": self.message_id(), "timestamp": iso(ts), **fields,
                "context": {"library": _LIBRARY}}

    # -- people and companies -------------------------------------------------------------

    def population(self) -> tuple[list[_User], list[float]]:
        rng = self.rng
        # Account sizes are skewed too: a few big customers, many small ones.
        account_cum = list(itertools.accumulate(rng.lognormvariate(0, 1.0) for _ in range(self.accounts_n)))
        people, weights = [], []
        for i in range(self.users_n):
            first = bisect.bisect(account_cum, rng.random() * account_cum[-1])
            accounts = [min(first, self.accounts_n - 1)]
            if self.accounts_n > 1 and rng.random() < 0.15:
                second = rng.randrange(self.accounts_n)
                if second != accounts[0]:
                    accounts.append(second)
            people.append(_User(i, _pick(rng, _CURRENCIES), _pick(rng, _PLANS), tuple(accounts)))
            weights.append(min(rng.lognormvariate(0, 1.1), 60.0))
        return people, list(itertools.accumulate(weights))

    def accounts(self) -> list[dict[str, Any]]:
        rng = self.rng
        out = []
        for j in range(self.accounts_n):
            employees = int(min(50_000, max(1, round(rng.lognormvariate(3.5, 1.6)))))
            out.append({"name": f"Company {j}", "industry": _pick(rng, _INDUSTRIES), "employees": employees})
        return out

    def profiles(self, people: list[_User], companies: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        rng, start = self.rng, self.now - self.days * DAY_MS
        for person in people:
            signup = start - rng.randrange(DAY_MS, 365 * DAY_MS)
            uid = user_id(person.index)
            yield self.call("identify", signup, userId=uid, traits={
                "email": f"{uid}@{rng.choice(_DOMAINS)}", "plan": person.plan, "currency": person.currency,
                "created_at": iso(signup),
            })
            for k, j in enumerate(person.accounts):
                yield self.call("group", signup + (k + 1) * MINUTE_MS, userId=uid, groupId=account_id(j),
                                traits=companies[j])

    # -- activity -------------------------------------------------------------------------

    def activity(self, people: list[_User], cum: list[float]) -> Iterator[dict[str, Any]]:
        rng = self.rng
        start = self.now - self.days * DAY_MS
        # Traffic grows by half over the window, and weekends are quieter.
        day_weights = [(1 + 0.5 * d / self.days) * (0.75 if d % 7 in (5, 6) else 1.0) for d in range(self.days)]
        day_cum = list(itertools.accumulate(day_weights))
        upgrades = {p.index for p in people if rng.random() < 0.08}
        emitted = 0
        for day in range(self.days):
            target = round(self.events_n * day_cum[day] / day_cum[-1])
            day_start = start + day * DAY_MS
            day_end = min(day_start + DAY_MS, self.now + 1)
            sessions = []
            while emitted < target:
                person = people[bisect.bisect(cum, rng.random() * cum[-1])]
                calls = self.session(person, rng.randrange(day_start, day_end), target - emitted)
                emitted += len(calls)
                sessions.append(calls)
            sessions.sort(key=lambda s: s[0]["timestamp"])
            for calls in sessions:
                yield from calls
            for index in sorted(i for i in upgrades if i % self.days == day):
                person = people[index]
                ts = rng.randrange(day_start, day_end)
                plan = "enterprise" if person.plan == "pro" else "pro"
                yield self.call("identify", ts, userId=user_id(index), traits={"plan": plan})

    def session(self, person: _User, at: int, budget: int) -> list[dict[str, Any]]:
        """One visit's events, at most `budget` of them."""
        rng, uid = self.rng, user_id(person.index)
        out: list[dict[str, Any]] = []
        clock = at

        def step(low_s: int = 5, high_s: int = 180) -> int:
            nonlocal clock
            clock = min(clock + rng.randrange(low_s * 1000, high_s * 1000), self.now)
            return clock

        def track(name: str, ts: int, properties: dict[str, Any]) -> None:
            if len(out) < budget:
                out.append(self.call("track", ts, userId=uid, event=name, properties=properties))

        if rng.random() < 0.3:
            track("Signed In", clock, {"method": rng.choice(_SIGN_IN_METHODS)})
        for _ in range(1 + min(int(rng.expovariate(0.9)), 6)):
            name, path = rng.choice(_PAGES)
            if len(out) < budget:
                out.append(self.call("page", step(), userId=uid, name=name, properties={
                    "path": path, "url": f"https://shop.example.com{path}", "title": f"{name} | Shop",
                    "referrer": rng.choice(_REFERRERS),
                }))
        viewed = [self.product(rng) for _ in range(min(int(rng.expovariate(0.5)), 8))]
        for product in viewed:
            track("Product Viewed", step(), {**product, "currency": person.currency})
        cart = [p for p in viewed if rng.random() < 0.35]
        cart_id = f"cart-{rng.getrandbits(48):012x}"
        for product in cart:
            track("Product Added", step(), {**product, "quantity": rng.randrange(1, 4), "currency": person.currency,
                                            "cart_id": cart_id})
        if cart and rng.random() < 0.5:
            # Most orders complete in the session; some come back up to 30 hours later.
            paid_at = step(20, 600) if rng.random() < 0.8 else min(clock + rng.randrange(HOUR_MS, 30 * HOUR_MS),
                                                                   self.now)
            currency = person.currency if rng.random() < 0.96 else rng.choice([c for c, _ in _CURRENCIES])
            items = [{"product_id": p["product_id"], "price": p["price"], "quantity": rng.randrange(1, 4)}
                     for p in cart]
            subtotal = sum(i["price"] * i["quantity"] for i in items)
            coupon = rng.choice(_COUPONS) if rng.random() < 0.2 else None
            discount = round(subtotal * 0.1, 2) if coupon else 0.0
            order_id = f"ord-{rng.getrandbits(48):012x}"
            revenue = round(subtotal - discount, 2)
            track("Order Completed", paid_at, {
                "order_id": order_id, "revenue": revenue, "currency": currency, "products": items,
                "coupon": coupon, "discount": discount, "tax": round(revenue * 0.08, 2),
            })
            if rng.random() < 0.06:
                refund_at = paid_at + rng.randrange(DAY_MS, 14 * DAY_MS)
                if refund_at <= self.now:
                    track("Order Refunded", refund_at, {"order_id": order_id, "revenue": revenue,
                                                        "currency": currency})
        return out

    @staticmethod
    def product(rng: random.Random) -> dict[str, Any]:
        # A skewed catalogue: popular products come up far more often.
        index = int(_PRODUCTS * rng.random() ** 3)
        price = round(math.exp(rng.gauss(3.4, 0.8)), 2)
        return {"product_id": f"p{index:05d}", "sku": f"SKU-{index:05d}", "category": _CATEGORIES[index % 6],
                "price": max(price, 0.5)}


def generate(users: int, events: int, now_ms: int, seed: int = 1, days: int = 120) -> Iterator[dict[str, Any]]:
    """The data set's tracking calls: first each user's identify and group calls, then the events.

    Args:
        users: How many users (accounts are a tenth of that, at least one).
        events: How many events (track and page calls) over the window, exactly.
        now_ms: The end of the window, milliseconds since the epoch; no call is stamped later.
        seed: Same seed, same calls.
        days: The length of the window in days.
    """
    gen = _Generator(users, events, now_ms, seed, days)
    people, cum = gen.population()
    companies = gen.accounts()
    yield from gen.profiles(people, companies)
    yield from gen.activity(people, cum)


if __name__ == "__main__":
    import collections
    import json
    import sys

    n_users, n_events = (int(a) for a in (sys.argv[1:3] if len(sys.argv) > 2 else ("1000", "10000")))
    counts: collections.Counter[str] = collections.Counter()
    size = 0
    for item in generate(n_users, n_events, 1_800_000_000_000, 1):
        counts[item.get("event") or item["type"]] += 1
        size += len(json.dumps(item))
    print(json.dumps(dict(counts), indent=2), f"\n{size / sum(counts.values()):.0f} bytes per call on average")
