"""The registry: the kind stored with each destination, to the `Destination` that implements it.

Adding a kind is a module of this package and a line here (plus its config message in
sync.proto, whose field in `Destination.config` is named after the kind).
"""

from __future__ import annotations

from audiences_server.engine.destinations.base import Destination
from audiences_server.engine.destinations.csv import Csv
from audiences_server.engine.destinations.feed import Feed
from audiences_server.engine.destinations.postgres import Postgres
from audiences_server.engine.destinations.segment import Segment
from audiences_server.engine.destinations.webhook import Webhook
from audiences_server.errors import InvalidArgument

KINDS: dict[str, Destination] = {kind.kind: kind for kind in (Webhook(), Segment(), Feed(), Csv(), Postgres())}


def kinds() -> list[str]:
    """Every kind, in the order they were registered."""
    return list(KINDS)


def get(kind: str) -> Destination:
    """The implementation of a kind.

    Raises:
        InvalidArgument: no such kind (`DESTINATION_KIND_UNKNOWN`).
    """
    found = KINDS.get(kind)
    if found is None:
        raise InvalidArgument(f"{kind!r} is not a kind of destination; the kinds are {', '.join(KINDS)}",
                              reason="DESTINATION_KIND_UNKNOWN")
    return found
