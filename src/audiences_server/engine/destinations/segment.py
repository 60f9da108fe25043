"""The `segment` kind: batches POSTed to a Segment-compatible tracking API's `/batch`.

A real Segment source (`https://api.segment.io/v1`) or RudderStack receives them: HTTP Basic
auth with the write key as the user name and an empty password, `{"batch": [...], "sentAt": …}`.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, ClassVar

from audiences_server.core.tracking import format_time
from audiences_server.engine.destinations.base import (
    Context,
    Destination,
    Sink,
    check_range,
    check_secret_length,
    check_url,
    invalid,
    request_url,
)
from audiences_server.engine.destinations.batching import BatchSink, timeout_s
from audiences_server.engine.destinations.http import Poster, json_body
from audiences_server.store.sync import DestinationRow


class Segment(Destination):
    """A Segment-compatible tracking endpoint."""

    kind = "segment"
    defaults: ClassVar[Mapping[str, Any]] = {"base_url": "", "write_key": "", "batch_size": 100,
                                             "batch_interval_ms": 1000}
    secrets = ("write_key",)
    sends_calls = True
    sends_link_changes = True

    def check(self, settings: Mapping[str, Any]) -> None:
        """A base URL, a write key and a batch size in range."""
        check_url(settings["base_url"], "segment.base_url",
                  "a Segment source authenticates with `segment.write_key` (sent as HTTP Basic auth)")
        if not settings["write_key"]:
            raise invalid("segment.write_key", "`segment.write_key` is required")
        check_secret_length(settings["write_key"], "segment.write_key")
        check_range(settings, "segment", "batch_size", 1, 500)

    def build(self, row: DestinationRow, context: Context) -> Sink:
        """Batches to `<base_url>/batch`."""
        # Raises for a URL stored before `check_url` refused it.
        url = str(request_url(str(row.config["base_url"]).rstrip("/") + "/batch"))
        auth = {"Authorization": "Basic " + base64.b64encode(f"{row.config['write_key']}:".encode()).decode()}

        def request(calls: list[dict[str, Any]], now_ms: int) -> tuple[str, bytes, Mapping[str, str]]:
            return url, json_body({"batch": calls, "sentAt": format_time(now_ms)}), auth

        return BatchSink(row, request, Poster(timeout_s(row), 1))
