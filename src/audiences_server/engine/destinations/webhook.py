"""The `webhook` kind: tracking-spec calls POSTed as JSON to a URL, signed per Standard Webhooks.

EVENT style sends each call in its own request, with up to `max_in_flight` requests in flight on
a pool of kept-alive connections (one delivery, all its calls in order, per request slot); LIST
style sends `{"batch": [...]}` (engine.destinations.batching).

Signing (https://www.standardwebhooks.com): with `signing_secret` (`whsec_…`) each request carries
`webhook-id`, `webhook-timestamp` and `webhook-signature`, made by the `standardwebhooks` library,
so a receiver verifies with that library (or any implementation of the specification) in a few
lines. The id is the call's `messageId`, or for a batch an id derived from its calls' ids, so
it is the same on every retry and a receiver can refuse a replay by remembering the ids it
processed in the last five minutes (older timestamps are refused by verification itself). The
deprecated `hmac_secret` still adds `X-Audiences-Signature: sha256=<hex>` over the body.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import queue
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from standardwebhooks.webhooks import Webhook as StandardWebhook

from audiences_server.engine.destinations.base import (
    Context,
    Destination,
    Done,
    Outcome,
    Sink,
    check_range,
    check_url,
    invalid,
    single,
)
from audiences_server.engine.destinations.batching import BatchSink, calls_of, timeout_s
from audiences_server.engine.destinations.http import Poster, json_body
from audiences_server.store.sync import ConnectionRow, Delivery, DestinationRow

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret


class Signer:
    """The headers that sign one body: Standard Webhooks, and the deprecated HMAC header."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        secret = config.get("signing_secret", "")
        self._standard = StandardWebhook(secret) if secret else None
        legacy = config.get("hmac_secret", "")
        self._legacy = legacy.encode() if legacy else None
        self._fixed = dict(config.get("headers", {}))

    def headers(self, webhook_id: str, body: bytes) -> dict[str, str]:
        """The configured headers plus the signatures of this body, timestamped now."""
        headers = dict(self._fixed)
        if self._standard is not None:
            now = datetime.now(UTC)
            headers["webhook-id"] = webhook_id
            headers["webhook-timestamp"] = str(int(now.timestamp()))
            headers["webhook-signature"] = self._standard.sign(webhook_id, now, body.decode())
        if self._legacy is not None:
            headers["X-Audiences-Signature"] = "sha256=" + hmac.new(self._legacy, body, hashlib.sha256).hexdigest()
        return headers


def batch_id(calls: Sequence[Mapping[str, Any]]) -> str:
    """A batch's webhook id: derived from its calls' message ids, so a retried batch keeps it."""
    digest = hashlib.sha256("\n".join(str(c["messageId"]) for c in calls).encode()).hexdigest()
    return "bat_" + digest[:32]


class EventSink:
    """EVENT style: a request per call, `max_in_flight` deliveries sent side by side, each by one
    of as many lane threads sharing the destination's pool of connections."""

    max_batch = 1

    def __init__(self, row: DestinationRow) -> None:
        self.max_in_flight = int(row.config["max_in_flight"])
        self._url = str(row.config["url"])
        self._signer = Signer(row.config)
        self._poster = Poster(timeout_s(row), self.max_in_flight)
        self._work: queue.SimpleQueue[tuple[Delivery, list[dict[str, Any]], Done] | None] = queue.SimpleQueue()
        self._closed = threading.Event()
        for lane in range(self.max_in_flight):
            threading.Thread(target=self._lane, name=f"webhook-{row.destination_id}-{lane}", daemon=True).start()

    def take(self, heads: Sequence[Delivery], now_ms: int, writes: int) -> tuple[list[list[Delivery]], int | None]:
        """Each due delivery on its own, as many as there are free slots."""
        return single(heads, writes), None

    def write_batch(self, batch: Sequence[Delivery], connections: Mapping[int, ConnectionRow], done: Done) -> None:
        """Hands each delivery to a lane; `done` is told from there as each is answered."""
        for delivery in batch:
            self._work.put((delivery, calls_of(delivery, connections), done))

    def _lane(self) -> None:
        while (item := self._work.get()) is not None:
            self._deliver(*item)

    def _deliver(self, delivery: Delivery, calls: list[dict[str, Any]], done: Done) -> None:
        outcome = Outcome(ok=True)
        for call in calls:
            if self._closed.is_set():
                return  # abandoned: sent again after a restart
            body = json_body(call)
            outcome = self._poster.post(self._url, body, self._signer.headers(call["messageId"], body), _now_ms())
            if not outcome.ok:
                break
        done([delivery], outcome)

    def close(self) -> None:
        """Stops the lanes once their request is answered and closes the pool; requests in flight
        are abandoned."""
        self._closed.set()
        for _ in range(self.max_in_flight):
            self._work.put(None)
        self._poster.close()


def _now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


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
        check_url(settings["url"], "webhook.url")
        check_range(settings, "webhook", "batch_size", 1, 1000)
        check_range(settings, "webhook", "max_in_flight", 1, 64)
        if settings["payload_style"] not in ("event", "list"):
            raise invalid("webhook.payload_style", "`webhook.payload_style` must be EVENT or LIST")
        if settings["signing_secret"]:
            check_secret(settings["signing_secret"])

    def build(self, row: DestinationRow, context: Context) -> Sink:
        """EVENT style: a request per call; LIST style: a request per batch."""
        if row.config["payload_style"] == "event":
            return EventSink(row)
        signer = Signer(row.config)
        url = str(row.config["url"])

        def request(calls: list[dict[str, Any]], now_ms: int) -> tuple[str, bytes, Mapping[str, str]]:
            body = json_body({"batch": calls})
            return url, body, signer.headers(batch_id(calls), body)

        return BatchSink(row, request, Poster(timeout_s(row), 1))


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
