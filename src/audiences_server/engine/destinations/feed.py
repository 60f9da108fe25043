"""The `grpc_feed` kind: a change feed kept for consumers (ListChanges, WatchChanges).

Nothing is pushed: each change (and each member of a connection's first sync) is queued as a
feed record that consumers read after a cursor (engine.sync.feed). The feed carries value
changes only, so a user joining or leaving a member account is not in it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from audiences_server.engine.destinations.base import Destination, Queue


class Feed(Destination):
    """A change feed read over gRPC."""

    kind = "grpc_feed"
    defaults: ClassVar[Mapping[str, Any]] = {"retention_ms": 7 * 86_400_000}
    queue = Queue.FEED
