"""A realistic space of definitions for the evaluator benchmarks, over bench/data.py's shop.

`realistic(n)` gives `n` definitions (195 beside the five shapes of bench/evaluator.py make the
200 of `tick.k1000.d200`) in the proportions of a real space: computed traits of every reducer,
counts in windows, aggregations with property filters, funnels with parent references, audiences
of audiences, account audiences (`ANY`/`ALL`) and traits combined with counts, over 30 event names.
The six names of the data set carry most definitions; the 24 others (events a shop also tracks
but the data set does not hold) a third of the counts, so most definitions read events that
exist. Every definition compiles to the SQL path (`store/sql/plans.py`). The same `n` and seed always give the
same definitions.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from audiences.v1 import admin_pb2, admin_pb2_grpc, common_pb2
from data import EVENT_NAMES

OTHER_NAMES = (
    "Checkout Started", "Coupon Applied", "Search Performed", "Wishlist Added", "Review Submitted",
    "Cart Viewed", "Product Shared", "Newsletter Subscribed", "Support Ticket Opened", "Invoice Paid",
    "Quote Requested", "Trial Started", "Plan Upgraded", "Plan Downgraded", "Seat Added", "Seat Removed",
    "Report Exported", "Integration Connected", "Payment Failed", "Address Updated", "Return Requested",
    "Order Shipped", "Order Delivered", "Promotion Clicked",
)
NAMES = (*EVENT_NAMES, *OTHER_NAMES)  # 30
assert len(NAMES) == 30

# Which numeric and text properties each event of the data set carries (the others: none known).
_NUMBERS = {"Order Completed": ("revenue", "tax", "discount"), "Order Refunded": ("revenue",),
            "Product Viewed": ("price",), "Product Added": ("price", "quantity")}
_TEXTS = {"Order Completed": ("currency", "coupon"), "Order Refunded": ("currency",),
          "Product Viewed": ("category", "currency", "sku"), "Product Added": ("category", "currency", "sku"),
          "Page Viewed": ("path", "referrer"), "Signed In": ("method",)}
_TEXT_VALUES = {"currency": ("USD", "EUR", "GBP"), "coupon": ("SPRING10", "B2B15"),
                "category": ("Furniture", "Electronics", "Cleaning", "Breakroom"), "sku": ("SKU-00001", "SKU-00002"),
                "path": ("/pricing", "/cart", "/help"), "referrer": ("https://www.google.com/",),
                "method": ("sso", "google")}
_WINDOWS = (1, 7, 14, 30, 60, 90)
# (category, how many of the 195): the proportions of the space of 200.
MIX = (("trait", 49), ("count", 59), ("filtered", 29), ("funnel", 19), ("audiences", 14), ("account", 14),
       ("trait_count", 11))


@dataclass(frozen=True)
class Definition:
    """One definition to create: an audience or a computed trait."""

    kind: str  # audience | computed_trait
    collection: str  # users | accounts
    key: str
    text: str


class _Maker:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.others = -1

    def name(self) -> str:
        if self.rng.random() < 0.65:
            return self.rng.choice(EVENT_NAMES)
        self.others += 1  # in turn, so that every name is read by some definition
        return OTHER_NAMES[self.others % len(OTHER_NAMES)]

    def numeric_name(self) -> str:
        return self.rng.choice(tuple(_NUMBERS))

    def days(self) -> int:
        return self.rng.choice(_WINDOWS)

    def trait(self, i: int) -> str:
        reducers = ("sum", "avg", "min", "max", "mode", "first", "last", "unique", "unique_count", "count")
        reducer = reducers[i % len(reducers)]
        if reducer == "count":
            return f"event('{self.name()}').within({self.days()} days).count()"
        if reducer in {"sum", "avg", "min", "max"}:
            name = self.numeric_name()
            return f"event('{name}').within({self.days()} days).{reducer}('{self.rng.choice(_NUMBERS[name])}')"
        name = self.rng.choice(tuple(_TEXTS))
        prop = self.rng.choice(_TEXTS[name])
        stream = f"event('{name}').within({self.days()} days)"
        if reducer == "mode":
            return f"{stream}.mode('{prop}', {self.rng.choice((1, 2))})"
        if reducer == "unique_count":
            return f"{stream}.unique('{prop}').count()"
        return f"{stream}.{reducer}('{prop}')"

    def count(self) -> str:
        return f"event('{self.name()}').within({self.days()} days).count() >= {self.rng.choice((1, 2, 3, 5, 10))}"

    def filtered(self) -> str:
        name = self.numeric_name()
        prop = self.rng.choice(_NUMBERS[name])
        days = self.days()
        if self.rng.random() < 0.5:
            return (f"event('{name}').where(property('{prop}') > {self.rng.choice((5, 20, 50, 100))})"
                    f".within({days} days).sum('{prop}') >= {self.rng.choice((100, 250, 500))}")
        text = self.rng.choice(_TEXTS[name])
        value = self.rng.choice(_TEXT_VALUES[text])
        return (f"event('{name}').where(property('{text}') = '{value}')"
                f".within({days} days).count() >= {self.rng.choice((1, 2, 3))}")

    def funnel(self) -> str:
        first, then = self.rng.choice((("Product Viewed", "Product Added"), ("Product Added", "Order Completed"),
                                       ("Signed In", "Order Completed"), ("Product Viewed", "Order Completed")))
        same = "currency" if first != "Signed In" else None
        inner = f"event('{then}')"
        if same is not None:
            inner += f".where(property('{same}') = property(parent: '{same}'))"
        inner += f".within(parent: {self.rng.choice((1, 2, 3))} days).count() >= 1"
        return f"event('{first}').where({inner}).within({self.rng.choice((7, 14, 30))} days).count() >= 1"

    def audiences(self, keys: list[str]) -> str:
        a, b = self.rng.sample(keys, 2)
        joiner = self.rng.choice(("AND", "OR", "AND NOT"))
        if joiner == "AND NOT":
            return f"trait('{a}') = true AND NOT (trait('{b}') = true)"
        return f"trait('{a}') = true {joiner} trait('{b}') = true"

    def account(self) -> str:
        quantifier = self.rng.choice(("ANY", "ANY", "ALL"))
        days = self.rng.choice((30, 60, 90))
        operand = self.count() if quantifier == "ANY" else f"event('Signed In').within({days} days).count() >= 1"
        condition = f"{quantifier} ({operand})"
        if self.rng.random() < 0.4:
            industry = self.rng.choice(("Software", "Retail", "Finance"))
            condition = f"trait('industry') = '{industry}' AND {condition}"
        return condition

    def trait_count(self) -> str:
        plan = self.rng.choice(("free", "pro", "enterprise"))
        return f"trait('plan') = '{plan}' AND {self.count()}"


def realistic(n: int = 195, seed: int = 7) -> list[Definition]:
    """The first `n` definitions of the space (in creation order: what another reads comes first).

    Categories are interleaved, so any prefix keeps roughly the space's proportions; past 195 the
    mix starts again (199 beside one more audience make the 200 of `freshness.d200`).
    """
    maker = _Maker(seed)
    plan: list[str] = []
    while len(plan) < n:  # past 195, the mix again
        more = [category for category, count in MIX for _ in range(count)]
        maker.rng.shuffle(more)
        plan += more
    # Audiences of audiences read count audiences created before them.
    out: list[Definition] = []
    counts: list[str] = []
    made: dict[str, int] = {}
    for planned in plan:
        if len(out) >= n:
            break
        category = "count" if planned == "audiences" and len(counts) < 2 else planned
        index = made.get(category, 0)
        made[category] = index + 1
        key = f"d200_{category}_{index:02d}"
        if category == "trait":
            out.append(Definition("computed_trait", "users", key, maker.trait(index)))
            continue
        text = {"count": maker.count, "filtered": maker.filtered, "funnel": maker.funnel,
                "account": maker.account, "trait_count": maker.trait_count}.get(category, lambda: "")()
        if category == "audiences":
            text = maker.audiences(counts)
        out.append(Definition("audience", "accounts" if category == "account" else "users", key, text))
        if category == "count":
            counts.append(key)
    return out


_COLLECTIONS = {"users": common_pb2.COLLECTION_USERS, "accounts": common_pb2.COLLECTION_ACCOUNTS}


def create(admin: admin_pb2_grpc.AudienceAdminServiceStub, metadata: list[tuple[str, str]],
           definition: Definition) -> None:
    """Creates one definition of the space on a server, as an audience or a computed trait."""
    collection = _COLLECTIONS[definition.collection]
    if definition.kind == "audience":
        audience = admin_pb2.Audience(key=definition.key, collection=collection, definition=definition.text)
        admin.CreateAudience(admin_pb2.CreateAudienceRequest(audience=audience), metadata=metadata)
    else:
        trait = admin_pb2.ComputedTrait(key=definition.key, collection=collection, definition=definition.text)
        admin.CreateComputedTrait(admin_pb2.CreateComputedTraitRequest(computed_trait=trait), metadata=metadata)
