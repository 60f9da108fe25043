"""The `webhook` kind: tracking-spec calls POSTed as JSON to a URL, signed per Standard Webhooks.

EVENT style sends each call in its own request, with up to `max_in_flight` requests in flight on
a pool of kept-alive connections (one delivery, all its calls in order, per request slot); LIST
style sends `{"batch": [...]}` (engine.destinations.batching).

Signing (https://www.standardwebhooks.com): with `signing_secret` (`whsec_…`) each request carries
`webhook-id`, `webhook-timestamp` and `webhook-signature`, as the specification defines them, so
a receiver verifies with the `standardwebhooks` library (or any implementation of the
specification) in a few lines. The id is the call's `messageId`, or for a batch an id derived from its calls' ids, so
it is the same on every retry and a receiver can refuse a replay by remembering the ids it
processed in the last five minutes (older timestamps are refused by verification itself). The
deprecated `hmac_secret` still adds `X-Audiences-Signature: sha256=<hex>` over the body.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from audiences_server.engine.destinations.base import (
    Context,
    Destination,
    Done,
    Outcome,
    Sink,
    check_range,
    check_url,
    invalid,
    request_url,
    single,
)
from audiences_server.engine.destinations.batching import BatchSink, calls_of, timeout_s
from audiences_server.engine.destinations.http import Poster, json_body
from audiences_server.engine.destinations.http1 import LoopPoster, header_lines
from audiences_server.engine.destinations.loop import IoLoop
from audiences_server.store.sync import ConnectionRow, Delivery, DestinationRow

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
RESERVED_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}
# Limits of `headers` (docs/operations.md#limits): together at most 64 x 8.3 KB per destination.
MAX_HEADERS = 64
MAX_HEADER_NAME_CHARS = 256
MAX_HEADER_VALUE_CHARS = 8_192


class Signer:
    """The headers that sign one body: Standard Webhooks, and the deprecated HMAC header.

    The signature is the specification's (`v1,` and the base64 of the HMAC-SHA256, keyed by the
    secret's bytes, of `<id>.<timestamp>.<body>`), computed over the body's bytes as sent, from
    an HMAC keyed once per destination; tests verify it with the `standardwebhooks` library.
    """

    def __init__(self, config: Mapping[str, Any]) -> None:
        secret = config.get("signing_secret", "")
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX)) if secret else b""
        self._standard = hmac.new(key, digestmod=hashlib.sha256) if key else None
        legacy = config.get("hmac_secret", "")
        self._legacy = hmac.new(legacy.encode(), digestmod=hashlib.sha256) if legacy else None
        self.fixed: dict[str, str] = dict(config.get("headers", {}))

    def signatures(self, webhook_id: str, body: bytes, now_s: int) -> list[tuple[str, str]]:
        """The signature headers of this body, timestamped `now_s` (seconds since the epoch)."""
        signed: list[tuple[str, str]] = []
        if self._standard is not None:
            mac = self._standard.copy()
            mac.update(b"%s.%d.%s" % (webhook_id.encode(), now_s, body))
            signed += [("webhook-id", webhook_id), ("webhook-timestamp", str(now_s)),
                       ("webhook-signature", "v1," + base64.b64encode(mac.digest()).decode())]
        if self._legacy is not None:
            mac = self._legacy.copy()
            mac.update(body)
            signed.append(("X-Audiences-Signature", "sha256=" + mac.hexdigest()))
        return signed

    def headers(self, webhook_id: str, body: bytes) -> dict[str, str]:
        """The configured headers plus the signatures of this body, timestamped now."""
        return {**self.fixed, **dict(self.signatures(webhook_id, body, int(time.time())))}


def batch_id(calls: Sequence[Mapping[str, Any]]) -> str:
    """A batch's webhook id: derived from its calls' message ids, so a retried batch keeps it."""
    digest = hashlib.sha256("\n".join(str(c["messageId"]) for c in calls).encode()).hexdigest()
    return "bat_" + digest[:32]


class EventSink:
    """EVENT style: a request per call, up to `max_in_flight` deliveries side by side on the
    sync service's event loop (engine.destinations.http1), sharing kept-alive connections.

    `write_batch` builds and signs each request where it is called (the worker's thread, or the
    loop itself when it refills after a commit); the loop sends them, a delivery's calls one
    after the other, and tells `done` from its thread. Deliveries handed over together cross to
    the loop in one hand-off.
    """

    max_batch = 1
    # Its writes only hand requests to the loop, so the worker may refill it from the loop.
    sends_from_loop = True

    def __init__(self, row: DestinationRow, io: IoLoop) -> None:
        self.max_in_flight = int(row.config["max_in_flight"])
        self._signer = Signer(row.config)
        self._io = io
        self._poster = LoopPoster(io.loop, str(row.config["url"]), timeout_s(row), self.max_in_flight,
                                  self._signer.fixed)
        self._lock = threading.Lock()
        self._handed: list[tuple[Delivery, list[bytes], Done]] = []

    def take(self, heads: Sequence[Delivery], now_ms: int, writes: int) -> tuple[list[list[Delivery]], int | None]:
        """Each due delivery on its own, as many as there are free slots."""
        return single(heads, writes), None

    def write_batch(self, batch: Sequence[Delivery], connections: Mapping[int, ConnectionRow], done: Done) -> None:
        """Builds each delivery's requests and hands them to the loop; `done` is told from there."""
        now_s = int(time.time())
        built = [(d, [self._request(call, now_s) for call in calls_of(d, connections)], done) for d in batch]
        with self._lock:
            first = not self._handed
            self._handed += built
        if first:
            self._io.call_soon(self._send_handed)

    def _request(self, call: Mapping[str, Any], now_s: int) -> bytes:
        body = json_body(call)
        return self._poster.request(body, header_lines(self._signer.signatures(call["messageId"], body, now_s)))

    def _send_handed(self) -> None:
        with self._lock:
            handed, self._handed = self._handed, []
        for delivery, requests, done in handed:
            self._send(delivery, requests, 0, done)

    def _send(self, delivery: Delivery, requests: list[bytes], index: int, done: Done) -> None:
        """On the loop: the delivery's call at `index`, then the next once it is answered 2xx."""
        if index == len(requests):
            done([delivery], Outcome(ok=True))
            return

        def answered(outcome: Outcome) -> None:
            if outcome.ok:
                self._send(delivery, requests, index + 1, done)
            else:
                done([delivery], outcome)

        self._poster.post(requests[index], answered)

    def close(self) -> None:
        """Closes the connections; requests in flight are abandoned (sent again after a restart)."""
        self._io.call_soon(self._poster.close)


class Webhook(Destination):
    """An HTTP endpoint receiving JSON calls."""

    kind = "webhook"
    defaults: ClassVar[Mapping[str, Any]] = {
        "url": "", "headers": {}, "signing_secret": "", "hmac_secret": "", "payload_style": "event",
        "batch_size": 100, "batch_interval_ms": 1000, "max_in_flight": 16,
    }
    secrets = ("signing_secret", "hmac_secret")
    sends_calls = True
    sends_link_changes = True

    def check(self, settings: Mapping[str, Any]) -> None:
        """A URL, a batch size and a number of requests in flight in range, a well-formed secret."""
        check_url(settings["url"], "webhook.url", "set them in `webhook.headers`, as an `Authorization` header")
        check_range(settings, "webhook", "batch_size", 1, 1000)
        check_range(settings, "webhook", "max_in_flight", 1, 64)
        if settings["payload_style"] not in ("event", "list"):
            raise invalid("webhook.payload_style", "`webhook.payload_style` must be EVENT or LIST")
        if settings["signing_secret"]:
            check_secret(settings["signing_secret"])
        check_headers(settings["headers"])

    def build(self, row: DestinationRow, context: Context) -> Sink:
        """EVENT style: a request per call; LIST style: a request per batch."""
        # Raises, as for a URL, for headers stored before `check_headers` refused them (a value
        # outside ASCII): httpx cannot send them, and the EVENT style should not send them otherwise.
        check_headers(row.config["headers"])
        if row.config["payload_style"] == "event":
            return EventSink(row, context.io)
        signer = Signer(row.config)
        # Raises, as the EVENT style's client does, for a URL stored before `check_url` refused it.
        url = str(request_url(row.config["url"]))

        def request(calls: list[dict[str, Any]], now_ms: int) -> tuple[str, bytes, Mapping[str, str]]:
            body = json_body({"batch": calls})
            return url, body, signer.headers(batch_id(calls), body)

        return BatchSink(row, request, Poster(timeout_s(row), 1))


def check_headers(headers: Mapping[str, Any]) -> None:
    """Refuses a header that is not a token with a value of printable ASCII (spaces and tabs
    included), one the request itself sets (its length, framing and host), and headers past
    their limits (every destination is in ListDestinations' replies, and in every request).

    ASCII only: httpx (LIST style, Segment) cannot encode anything else and the EVENT style
    would write it as UTF-8, which HTTP leaves undefined; a value that needs more is
    percent-encoded or base64-encoded by whoever sets it, as for any HTTP header."""
    if len(headers) > MAX_HEADERS:
        raise invalid("webhook.headers", f"`webhook.headers` has {len(headers):,} headers; at most {MAX_HEADERS}",
                      "FIELD_TOO_LONG")
    for name, value in headers.items():
        if not HEADER_NAME.fullmatch(str(name)) or not isinstance(value, str):
            raise invalid("webhook.headers", f"`webhook.headers` {name!r}: a header name is a token")
        bad = next((i for i, c in enumerate(value) if not (" " <= c <= "~" or c == "\t")), None)
        if bad is not None:
            raise invalid("webhook.headers", f"`webhook.headers` {name!r}: {value[bad]!r} at position {bad} of its "
                          "value (a value is printable ASCII, spaces and tabs included, on one line)")
        if str(name).lower() in RESERVED_HEADERS:
            raise invalid("webhook.headers", f"`webhook.headers` {name!r} is set by the request itself")
        if len(name) > MAX_HEADER_NAME_CHARS or len(value) > MAX_HEADER_VALUE_CHARS:
            raise invalid("webhook.headers", f"`webhook.headers` {name[:40]!r}: a header name is at most "
                          f"{MAX_HEADER_NAME_CHARS} characters and its value at most {MAX_HEADER_VALUE_CHARS:,}",
                          "FIELD_TOO_LONG")


def check_secret(secret: str) -> None:
    """Refuses a signing secret that is not `whsec_` and the base64 of 24 to 64 bytes."""
    message = "`webhook.signing_secret` must be `whsec_` followed by the base64 of 24 to 64 random bytes"
    if not secret.startswith(SECRET_PREFIX):
        raise invalid("webhook.signing_secret", message)
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError) as failure:
        raise invalid("webhook.signing_secret", message) from failure
    if not 24 <= len(key) <= 64:
        raise invalid("webhook.signing_secret", message)
