"""POSTing JSON to webhook and Segment-compatible endpoints with the standard library.

Every request has a timeout, so a slow receiver costs its own destination's worker that long
and nothing else. The outcome says whether a failure is worth retrying and how long the
receiver asked us to wait (429/503 `Retry-After`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

from audiences_server import __version__

RETRIED_STATUSES = {408, 429}


@dataclass(frozen=True)
class Outcome:
    """What one request came to."""

    ok: bool
    retry: bool = False
    error: str = ""
    retry_after_ms: int | None = None


@dataclass(frozen=True)
class Request:
    """One POST: where, what, with which headers."""

    url: str
    body: bytes
    headers: Mapping[str, str]


def _retry_after(value: str | None, now_ms: int) -> int | None:
    """A Retry-After header (seconds or an HTTP date) in milliseconds from now."""
    if not value:
        return None
    try:
        return max(0, int(float(value) * 1000))
    except ValueError:
        pass
    try:
        return max(0, int(parsedate_to_datetime(value).timestamp() * 1000) - now_ms)
    except (TypeError, ValueError):
        return None


def post(request: Request, timeout_s: float, now_ms: int) -> Outcome:
    """Sends one request and classifies the answer."""
    # The scheme was checked to be http or https when the destination was saved.
    http = urllib.request.Request(request.url, data=request.body, method="POST", headers=dict(request.headers))  # noqa: S310
    try:
        with urllib.request.urlopen(http, timeout=timeout_s) as response:  # noqa: S310
            response.read()
            return Outcome(ok=True)
    except urllib.error.HTTPError as failure:
        excerpt = failure.read(200).decode("utf-8", "replace")
        retry = failure.code in RETRIED_STATUSES or failure.code >= 500
        wait = _retry_after(failure.headers.get("Retry-After"), now_ms) if failure.headers else None
        return Outcome(False, retry, f"HTTP {failure.code}: {excerpt}".strip(), wait)
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as failure:
        reason = getattr(failure, "reason", failure)
        return Outcome(False, True, f"network error: {reason}")


def backoff_ms(attempts: int, policy: Mapping[str, int], retry_after_ms: int | None) -> int:
    """The wait before the next attempt: doubling from the initial backoff, capped, with jitter
    (half to all of it, so that many failed deliveries do not come back at the same moment),
    and never shorter than the receiver asked for."""
    ceiling = min(policy["max_backoff_ms"], policy["initial_backoff_ms"] * 2 ** max(0, attempts - 1))
    wait = int(ceiling * random.uniform(0.5, 1.0))  # noqa: S311 - jitter, not security
    return max(wait, retry_after_ms or 0)


def _json(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def webhook_request(config: Mapping[str, Any], body: Any) -> Request:
    """A webhook POST, signed with the destination's HMAC secret when it has one."""
    raw = _json(body)
    headers = {"Content-Type": "application/json", "User-Agent": f"audiences/{__version__}",
               **config.get("headers", {})}
    secret = config.get("hmac_secret", "")
    if secret:
        signature = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        headers["X-Audiences-Signature"] = f"sha256={signature}"
    return Request(config["url"], raw, headers)


def segment_request(config: Mapping[str, Any], batch: list[dict[str, Any]], sent_at: str) -> Request:
    """A Segment `/batch` POST, the write key as the basic-auth user name."""
    raw = _json({"batch": batch, "sentAt": sent_at})
    auth = base64.b64encode(f"{config['write_key']}:".encode()).decode()
    headers = {"Content-Type": "application/json", "User-Agent": f"audiences/{__version__}",
               "Authorization": f"Basic {auth}"}
    return Request(config["base_url"].rstrip("/") + "/batch", raw, headers)
