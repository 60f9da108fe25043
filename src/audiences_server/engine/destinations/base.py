"""The Destination protocol: what one kind of destination is, and how it sends (docs/sync.md#kinds).

A kind is a module of this package with one `Destination` (its settings, their defaults and
checks, where its changes queue, what its connections choose) and, for the kinds that push, the
`Sink` it builds per destination: the object that turns a batch of queued deliveries into
requests (or SQL statements) and says how each one went. The delivery worker
(engine.sync.delivery) owns everything around it: which deliveries are due, per-profile order,
how many are in flight, retries, acknowledgements. The registry maps the kind stored with each
destination to its `Destination`; nothing outside this package knows a kind by name.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol
from urllib.parse import urlsplit

import httpx

from audiences_server.core.identity.ids import MAX_ID_TYPE_CHARS
from audiences_server.engine.destinations.loop import IoLoop
from audiences_server.errors import FieldViolation, InvalidArgument
from audiences_server.store.db import Readers
from audiences_server.store.sync import ConnectionRow, Delivery, DestinationRow
from audiences_server.store.writer import Writer

# A host name as sent (an internationalised one in its `xn--` form); `_` is not in the standard
# but found in real names, and resolvers take it.
HOST_NAME = re.compile(r"[A-Za-z0-9_.-]+")
MAX_URL_CHARS = 8_192
# Identifier types a connection or a kind's settings may choose.
MAX_ID_TYPES = 50
# Traits a CSV or PostgreSQL destination (or an export) may add as columns, and their names.
MAX_INCLUDE_TRAITS = 300
MAX_TRAIT_NAME_CHARS = 1_024
# A secret that goes into every request (Segment's write key) or connection (a libpq string).
MAX_SECRET_CHARS = 8_192


class Queue(enum.Enum):
    """Where a kind's changes are queued."""

    DELIVERIES = "deliveries"  # pushed by its sink, retried, parked as dead letters
    FEED = "feed_records"  # kept for consumers to read after a cursor
    NONE = "none"  # nothing queued: the kind reads current values itself (CSV files)


@dataclass(frozen=True)
class Outcome:
    """How one write (a request, a transaction) went."""

    ok: bool
    retry: bool = False
    error: str = ""
    retry_after_ms: int | None = None
    skipped: bool = False
    """Not written at all (no room left in the batch): the deliveries stay queued as they were."""


SKIPPED = Outcome(ok=False, skipped=True)


# Told, from any thread, how a write of some deliveries went.
Done = Callable[[Sequence[Delivery], Outcome], None]


@dataclass(frozen=True)
class Context:
    """What a kind may use besides its destination's row: the database, for the kinds that read
    current values when they write (CSV files, PostgreSQL trait columns), and the event loop
    requests are sent from (EVENT-style webhooks)."""

    writer: Writer
    readers: Readers
    io: IoLoop = field(default_factory=IoLoop)


class Sink(Protocol):
    """Sends one destination's deliveries; built from the destination as stored, and built
    again when its settings change."""

    max_in_flight: int
    """Writes that may be in flight at once; each profile's next change waits for the last one."""
    max_batch: int
    """The most deliveries one write takes."""

    def take(self, heads: Sequence[Delivery], now_ms: int, writes: int) -> tuple[list[list[Delivery]], int | None]:
        """Up to `writes` batches to write now out of the due deliveries (oldest first, at most
        one per profile); when none is ready yet, how many milliseconds until one will be."""
        ...

    def write_batch(self, batch: Sequence[Delivery], connections: Mapping[int, ConnectionRow], done: Done) -> None:
        """Writes one batch and tells `done` how it went, once or per part: before returning, or
        later from another thread (then this returns at once)."""
        ...

    def close(self) -> None:
        """Releases connections and threads; writes in flight are abandoned (they are sent again
        after a restart, with the same ids)."""
        ...


class Destination:
    """One kind of destination. A kind overrides what differs from these defaults."""

    kind: ClassVar[str]
    """The name stored with each destination and used as its config's name in the API."""
    defaults: ClassVar[Mapping[str, Any]]
    """Every setting with its default; durations are `<name>_ms`."""
    secrets: ClassVar[tuple[str, ...]] = ()
    """Settings never read back (`<name>_set` says one is there); an empty one keeps the old."""
    queue: ClassVar[Queue] = Queue.DELIVERIES
    sends_calls: ClassVar[bool] = False
    """Whether connections choose tracking-spec calls (`send_identify`, `send_track`, `send_group`)."""
    sends_link_changes: ClassVar[bool] = False
    """Whether a user joining or leaving a member account is sent (as that user's entry or exit)."""
    own_places: ClassVar[str] = ""
    """The settings that give a destination places of its own (`place`), named when one is taken."""

    def check(self, settings: Mapping[str, Any]) -> None:
        """Refuses settings the kind cannot work with, naming the field (`<kind>.<name>`)."""

    def place(self, settings: Mapping[str, Any], collection: str, key: str) -> tuple[Any, ...] | None:
        """Where a connection of a destination with these settings keeps what it writes, for a
        kind whose connections, of different destinations, must never share it (each would undo
        the other's writes); shown to users as its last part. None: nothing shared."""
        return None

    def build(self, row: DestinationRow, context: Context) -> Sink | None:
        """The sink that pushes this destination's deliveries; None for a kind that pushes nothing.
        It does no I/O, so settings it raises for fail again until they change (such as a URL
        stored before `check_url` refused it): the worker says so once and sends nothing."""
        return None

    def refresh(self, row: DestinationRow, context: Context, now_ms: int) -> None:
        """Work done on every round of the destination's worker, for kinds that queue nothing."""


def invalid(field: str, message: str, reason: str = "DESTINATION_INVALID") -> InvalidArgument:
    """An INVALID_ARGUMENT naming one field."""
    return InvalidArgument(message, reason=reason, violations=[FieldViolation(field, message)])


def check_url(value: str, field: str, credentials: str) -> None:
    """Refuses anything but an http or https URL with a host, saying what is wrong: a malformed
    host (`http://[::1/`), a port that is not 1 to 65535, a space or control character (most
    often a mistake, such as a pasted line break; encoded, as `%20`, it is taken as given), or
    credentials before the host (`user:password@`): neither HTTP client sends them, so a
    receiver that needs them would refuse every request, and the URL read back would show the
    password. `credentials` says where they go instead; the refusal never repeats them.
    What it accepts, both HTTP clients send alike (`request_url`). At most MAX_URL_CHARS: a
    request line longer than that is refused by most servers anyway."""
    if len(value) > MAX_URL_CHARS:
        raise invalid(field, f"`{field}` is {len(value):,} characters long; at most {MAX_URL_CHARS:,}",
                      "FIELD_TOO_LONG")
    blank = next((i for i, c in enumerate(value) if c <= " " or c == "\x7f"), None)
    try:
        if blank is not None:
            raise ValueError(f"{value[blank]!r} at position {blank} (a space or control character is "
                             "percent-encoded in a URL: a space is %20)")
        request_url(value)
        if "@" in urlsplit(value).netloc:
            raise ValueError("it has credentials before the host (`user:password@`), which are never sent; "
                             + credentials)
    except ValueError as failure:
        raise invalid(field, f"`{field}` must be an http or https URL: {failure}") from failure


def request_url(value: str) -> httpx.URL:
    """A URL as requests to it are sent, as httpx reads it (an internationalised host in its
    `xn--` form, the path and query percent-encoded where they must be), so the EVENT-style
    webhook's client (engine.destinations.http1) and httpx send the same request line and `Host`.

    Raises:
        ValueError: no request can go to it; the message says why.
    """
    if not value:
        raise ValueError("it is empty")
    try:
        parts = urlsplit(value)
    except ValueError as failure:  # brackets unbalanced, or around something not an IP address
        raise ValueError(f"invalid host ({failure})") from failure
    if parts.scheme not in ("http", "https"):
        raise ValueError("it starts with neither http:// nor https://")
    if not parts.hostname:
        raise ValueError("no host")
    try:
        # Read here, not by httpx, which takes `:-1`, `:+80` or `:99999` for ports.
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        given = parts.netloc.rpartition("@")[2].rpartition("]")[2].partition(":")[2]
        raise ValueError(f"invalid port {given!r} (a port is 1 to 65535)")
    try:
        url = httpx.URL(value)
        url.host  # noqa: B018 - decodes an `xn--` label, as httpx does when it sends (`xn--zz` fails)
    except (httpx.InvalidURL, UnicodeError) as failure:
        raise ValueError(f"invalid host ({failure})") from failure
    host = url.raw_host.decode("ascii")
    if ":" not in host:  # a name or an IPv4 address (an IPv6 one has colons and was checked above)
        if not HOST_NAME.fullmatch(host):
            raise ValueError(f"invalid host {host!r} (a host name is letters, digits, hyphens and dots)")
        try:
            host.encode("idna")  # what the resolver does with it: no label empty or over 63 characters
        except UnicodeError:
            raise ValueError(f"invalid host {host!r} (a label of a host name is 1 to 63 characters)") from None
    return url


def check_id_types(types: Sequence[Any], field: str, reason: str = "DESTINATION_INVALID") -> None:
    """Refuses identifier types no identifier has: an empty one, one with a control character
    (NUL included), one past the 100 characters a type is read up to (core.identity.ids), or
    more than MAX_ID_TYPES of them (FIELD_TOO_LONG). Each would only ever give empty columns."""
    _check_names(types, field, reason, most=MAX_ID_TYPES, plural="types", most_chars=MAX_ID_TYPE_CHARS,
                 one="an identifier type is ", empty="an identifier type is a name such as `email`")
    for index, id_type in enumerate(types):
        bad = next((c for c in id_type if c < " " or c == "\x7f"), None)
        if bad is not None:
            raise invalid(field, f"`{field}[{index}]` contains the control character {bad!r}", reason)


def check_trait_names(traits: Sequence[Any], field: str, reason: str = "DESTINATION_INVALID") -> None:
    """Refuses trait names no trait has (an empty one), more than MAX_INCLUDE_TRAITS of them, or one
    longer than MAX_TRAIT_NAME_CHARS (FIELD_TOO_LONG): each is a column of every file or row written."""
    _check_names(traits, field, reason, most=MAX_INCLUDE_TRAITS, plural="traits", most_chars=MAX_TRAIT_NAME_CHARS,
                 one="", empty="a trait is named by its key")


def _check_names(names: Sequence[Any], field: str, reason: str, *, most: int, plural: str, most_chars: int, one: str,
                 empty: str) -> None:
    """A list of names each a column: at most `most` of them, none empty, none past `most_chars`."""
    if len(names) > most:
        raise invalid(field, f"`{field}` has {len(names):,} {plural}; at most {most}", "FIELD_TOO_LONG")
    for index, name in enumerate(names):
        if not isinstance(name, str) or not name:
            raise invalid(field, f"`{field}[{index}]` is empty: {empty}", reason)
        if len(name) > most_chars:
            raise invalid(field, f"`{field}[{index}]` is {len(name):,} characters long; {one}at most {most_chars:,}",
                          "FIELD_TOO_LONG")


def check_secret_length(value: str, field: str) -> None:
    """Refuses a secret setting longer than MAX_SECRET_CHARS (FIELD_TOO_LONG)."""
    if len(value) > MAX_SECRET_CHARS:
        raise invalid(field, f"`{field}` is {len(value):,} characters long; at most {MAX_SECRET_CHARS:,}",
                      "FIELD_TOO_LONG")


def check_range(settings: Mapping[str, Any], kind: str, name: str, low: int, high: int) -> None:
    """Refuses a whole-number setting outside [low, high]."""
    if not low <= int(settings[name]) <= high:
        raise invalid(f"{kind}.{name}", f"`{kind}.{name}` must be {low:,} to {high:,}")


def single(heads: Sequence[Delivery], writes: int) -> list[list[Delivery]]:
    """One delivery per write, for the kinds that send each change on its own."""
    return [[delivery] for delivery in heads[:writes]]
