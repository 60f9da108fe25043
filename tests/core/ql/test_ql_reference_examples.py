"""Every example of Segment's query-language reference parses and type-checks.

Sources (segmentio/segment-docs):
* PUBLIC_API: ``src/api/public-api/query-language.md`` (the reference docs/query-language.md names);
* ENGAGE: ``src/engage/audiences/query-language.md`` (an older copy: typographic quotes,
  ``eq``/``gte``/``is_set``/``contains_one`` spellings, ``sources({exclude: [...]})``).

Examples in the function tables are fragments (``count()``, ``> 500``); each is placed into the
smallest whole definition that uses it, shown beside it.
"""

from __future__ import annotations

import pytest

from audiences_server.core.ql import Collection, Kind, check, parse, to_text

# (source, fragment, whole definition, kind); all checked for collection users
AUD, TRAIT = "audience", "computed_trait"
PUB, ENG = "PUBLIC_API", "ENGAGE"
E = "event('Shoes Bought')"
S = "trait('total_spend')"

FRAGMENTS = [
    # Extractors
    (PUB, "event('Shoes Bought')", f"{E}.count() >= 1", AUD),
    (PUB, "trait('total_spend')", S, TRAIT),
    (PUB, "trait('total_spend')", f"{S} > 100", AUD),
    (PUB, "property('total')", f"{E}.where(property('total') > 0).count() >= 1", AUD),
    (PUB, "context('page.url')", f"{E}.where(context('page.url').exists()).count() >= 1", AUD),
    (PUB, "literal(100)", f"{S} > literal(100)", AUD),
    # Filters
    (PUB, "where({property('price_usd') > 100})",
     f"{E}.where({{property('price_usd') > 100}}).count() >= 1", AUD),
    (PUB, "sources({exclude: 'QgRHeujRJBM9j18yChyC', '/;hSBZDqGDPvXCKHbikPm'})",
     f"{E}.sources({{exclude: 'QgRHeujRJBM9j18yChyC', '/;hSBZDqGDPvXCKHbikPm'}}).count() >= 1",
     AUD),
    (ENG, "sources({exclude: ['QgRHeujRJBM9j18yChyC', '/;hSBZDqGDPvXCKHbikPm']})",
     f"{E}.sources({{exclude: ['QgRHeujRJBM9j18yChyC', '/;hSBZDqGDPvXCKHbikPm']}}).count() >= 1",
     AUD),
    (PUB, "within(7 days)", f"{E}.within(7 days).count() >= 1", AUD),
    (PUB, "between(7 days, 10 days)", f"{E}.between(7 days, 10 days).count() >= 1", AUD),
    (PUB, "within(parent: {d} {u})",
     f"{E}.where(event('Shoes Returned').within(parent: 5 days).count() >= 1).count() >= 1",
     AUD),
    (PUB, "property(parent: {s})",
     f"{E}.where(event('Shoes Returned').where(property('sku') = property(parent: 'sku'))"
     ".count() >= 1).count() >= 1", AUD),
    # Reducers
    (PUB, "count()", f"{E}.count()", TRAIT),
    (PUB, "sum(property('spend'))", f"{E}.sum(property('spend'))", TRAIT),
    (PUB, "avg(property('spend'))", f"{E}.avg(property('spend'))", TRAIT),
    (PUB, "max(property('spend'))", f"{E}.max(property('spend'))", TRAIT),
    (PUB, "max(property('spend') as string)", f"{E}.max(property('spend') as string)", TRAIT),
    (PUB, "min(property('spend'))", f"{E}.min(property('spend'))", TRAIT),
    (PUB, "min(property('spend') as string)", f"{E}.min(property('spend') as string)", TRAIT),
    (PUB, "mode(property('spend'), 2)", f"{E}.mode(property('spend'), 2)", TRAIT),
    (PUB, "mode(property('spend') as array, 2)", f"{E}.mode(property('spend') as array, 2)",
     TRAIT),
    (PUB, "first(property('spend'))", f"{E}.first(property('spend'))", TRAIT),
    (PUB, "last(property('spend'))", f"{E}.last(property('spend'))", TRAIT),
    (PUB, "unique(property('spend'))", f"{E}.unique(property('spend'))", TRAIT),
    (PUB, "unique(…) with count()", f"{E}.unique(property('spend')).count() > 2", AUD),
    # Comparisons, with and without sugar
    (PUB, "equals(500)", f"{S}.equals(500)", AUD),
    (PUB, "== 500", f"{S} == 500", AUD),
    (PUB, "differs(500)", f"{S}.differs(500)", AUD),
    (PUB, "!= 500", f"{S} != 500", AUD),
    (PUB, "absent()", f"{S}.absent()", AUD),
    (PUB, "exists()", f"{S}.exists()", AUD),
    (PUB, "greater_than(500)", f"{S}.greater_than(500)", AUD),
    (PUB, "> 500", f"{S} > 500", AUD),
    (PUB, "at_least(500)", f"{S}.at_least(500)", AUD),
    (PUB, ">= 500", f"{S} >= 500", AUD),
    (PUB, "less_than(500)", f"{S}.less_than(500)", AUD),
    (PUB, "< 500", f"{S} < 500", AUD),
    (PUB, "at_most(500)", f"{S}.at_most(500)", AUD),
    (PUB, "<= 500", f"{S} <= 500", AUD),
    (PUB, "contains('shoes','shirts')", "trait('category').contains('shoes','shirts')", AUD),
    (PUB, "omits('shoes')", "trait('category').omits('shoes')", AUD),
    (PUB, "starts_with('total')", "trait('key').starts_with('total')", AUD),
    (PUB, "ends_with('total')", "trait('key').ends_with('total')", AUD),
    (PUB, "one_of('shoes','shirts')", "trait('category').one_of('shoes','shirts')", AUD),
    (PUB, "before_date('2023-12-07T18:50:00Z')",
     "trait('signup').before_date('2023-12-07T18:50:00Z')", AUD),
    (PUB, "after_date('2023-12-07T18:50:00Z')",
     "trait('signup').after_date('2023-12-07T18:50:00Z')", AUD),
    (PUB, "within_last(7 days)", "trait('signup').within_last(7 days)", AUD),
    (PUB, "within_next(7 days)", "trait('renewal').within_next(7 days)", AUD),
    (PUB, "before_last(7 days)", "trait('signup').before_last(7 days)", AUD),
    (PUB, "after_next(7 days)", "trait('renewal').after_next(7 days)", AUD),
    # The older spellings
    (ENG, "eq(500)", f"{S}.eq(500)", AUD),
    (ENG, "neq(500)", f"{S}.neq(500)", AUD),
    (ENG, "is_null()", f"{S}.is_null()", AUD),
    (ENG, "is_set()", f"{S}.is_set()", AUD),
    (ENG, "gt(500)", f"{S}.gt(500)", AUD),
    (ENG, "gte(500)", f"{S}.gte(500)", AUD),
    (ENG, "lt(500)", f"{S}.lt(500)", AUD),
    (ENG, "lte(500)", f"{S}.lte(500)", AUD),
    (ENG, "contains('shoes')", "trait('category').contains('shoes')", AUD),
    (ENG, "contains_one(['shoes','shirts'])",
     "trait('category').contains_one(['shoes','shirts'])", AUD),
    (ENG, "one_of(['shoes','shirts'])", "trait('category').one_of(['shoes','shirts'])", AUD),
]

# (source, example title, definition exactly as printed, kind, collection)
EXAMPLES = [
    (PUB, "Audiences",
     "event('Shoes Bought').where( property('price') >= 100 ).within(7 days).count() >= 1",
     AUD, "users"),
    (PUB, "Bought and returned",
     "event('Shoes Bought').where( \nproperty('price') >= trait('avg_spend')\nAND \n"
     "event('Shoes Returned').within(parent: 5 days).count() >= 1 \n"
     ").within(30 days).count() >= 1", AUD, "users"),
    (PUB, "Did not perform Shoes Bought",
     "NOT ( event('Shoes Bought').count() >= 1 AND trait('total_spend') > 200 )", AUD, "users"),
    (PUB, "Bought with minimum total spend",
     "ALL ( event('Shoes Bought').count() >= 1 AND trait('total_spend') > 200 )",
     AUD, "accounts"),
    (PUB, "No users bought at least once", "ALL NOT event('Shoes Bought').count() >= 1",
     AUD, "accounts"),
    (PUB, "Any users bought at least once", "ANY event('Shoes Bought').count() >= 1",
     AUD, "accounts"),
    (PUB, "Computed Traits", "event('Shoes Bought').within(30 days).avg(property('spend'))",
     TRAIT, "users"),
    (PUB, "Calculate minimum spend",
     "event('Shoes Bought').where( property('price') > 100 AND property('brand') = 'My Brand' )"
     ".min(property('spend'))", TRAIT, "users"),
    (PUB, "Calculate first seen spend",
     "event('Shoes Bought').within(30 days).first(property('spend'))", TRAIT, "users"),
    (PUB, "Most frequent spend value",
     "event('Shoes Bought').within(30 days).mode(property('spend'), 2)", TRAIT, "users"),
    (ENG, "Audiences",
     "event(\u2018Shoes Bought\u2019).where( property(\u2018price\u2019) >= 100 )"
     ".within(7 days).count() >= 1", AUD, "users"),
    (ENG, "Bought and returned",
     "event(\u2018Shoes Bought\u2019).where( \nproperty(\u2018price\u2019) >= "
     "trait(\u2018avg_spend\u2019)\nAND \nevent(\u2018Shoes Returned\u2019)"
     ".within(parent: 5 days).count() >= 1 \n).within(30 days).count() >= 1", AUD, "users"),
    (ENG, "Did not perform Shoes Bought",
     "NOT ( event(\u2018Shoes Bought\u2019).count() >= 1 AND trait(\u2018total_spend\u2019) > 200 )",
     AUD, "users"),
    (ENG, "Bought with minimum total spend",
     "ALL ( event(\u2018Shoes Bought\u2019).count() >= 1 AND trait(\u2018total_spend\u2019) > 200 )",
     AUD, "accounts"),
    (ENG, "No users bought at least once",
     "ALL NOT event(\u2018Shoes Bought\u2019).count() >= 1", AUD, "accounts"),
    (ENG, "Any users bought at least once",
     "ANY event(\u2018Shoes Bought\u2019).count() >= 1", AUD, "accounts"),
    (ENG, "Computed Traits",
     "event(\u2018Shoes Bought\u2019).within(30 days).avg(property(\u2018spend\u2019))",
     TRAIT, "users"),
    (ENG, "Calculate minimum spend",
     "event(\u2018Shoes Bought\u2019).where( property(\u2018price\u2019) > 100 AND "
     "property(\u201cbrand\u201d) = \u2018My Brand\u2019 ).min(property(\u2018spend\u2019))",
     TRAIT, "users"),
    (ENG, "Calculate first seen spend",
     "event(\u201cShoes Bought\u201d).within(30 days).first(property(\u201cspend\u201d))",
     TRAIT, "users"),
    (ENG, "Most frequent spend value",
     "event(\u201cShoes Bought\u201d).within(30 days).mode(property(\u201cspend\u201d), 2)",
     TRAIT, "users"),
]


@pytest.mark.parametrize(
    ("source", "fragment", "text", "kind"),
    [pytest.param(*row, id=f"{row[0]}:{row[1]}") for row in FRAGMENTS],
)
def test_reference_function_examples(source: str, fragment: str, text: str, kind: Kind) -> None:
    """Each function-table example of the reference, in a whole definition, parses, checks
    and prints to text that reads back as the same tree."""
    definition = parse(text)
    check(definition, kind=kind, collection="users")
    assert parse(to_text(definition)) == definition


@pytest.mark.parametrize(
    ("source", "title", "text", "kind", "collection"),
    [pytest.param(*row, id=f"{row[0]}:{row[1]}") for row in EXAMPLES],
)
def test_reference_examples(source: str, title: str, text: str, kind: Kind,
                            collection: Collection) -> None:
    """Each worked example of the reference parses, checks for its kind and collection, and
    round-trips through the canonical printer."""
    definition = parse(text)
    check(definition, kind=kind, collection=collection)
    assert parse(to_text(definition)) == definition


def test_typographic_quotes_read_like_straight_ones() -> None:
    """The Engage copy's typographic quotes give the same tree as the straight-quoted text."""
    public = [r for r in EXAMPLES if r[0] == PUB]
    engage = [r for r in EXAMPLES if r[0] == ENG]
    assert len(public) == len(engage) == 10
    for straight, curly in zip(public, engage, strict=True):
        assert parse(straight[2]) == parse(curly[2]), straight[1]
