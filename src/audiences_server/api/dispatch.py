"""How a service's methods are added to a `grpc.aio` server: as generic handlers only.

The generated `add_*Servicer_to_server` functions add each service twice: a generic handler
(found by method name when a call arrives) and "registered methods", which `grpc.aio` serves by
keeping one pending request per method and awaiting them all with `asyncio.wait` after every call.
That wait costs Python work per registered method, on the event loop, on every call: with the ~70
methods of this server it was about a tenth of the loop's time under unary ingest. Added through
`generic_only`, every call goes through the one pending generic request instead, and its method
is found with one dictionary lookup per service.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import grpc
from grpc import aio


class _GenericOnly:
    """Stands in for the server in a generated `add_*_to_server`: keeps its generic handlers."""

    def __init__(self, server: aio.Server) -> None:
        self._server = server

    def add_generic_rpc_handlers(self, handlers: Iterable[grpc.GenericRpcHandler]) -> None:
        self._server.add_generic_rpc_handlers(tuple(handlers))

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        """Left out: the generic handler added with them serves the same methods."""


def generic_only(add: Callable[[Any, Any], None], servicer: Any, server: aio.Server) -> None:
    """Calls a generated `add_*Servicer_to_server(servicer, server)` so that it adds its service as a
    generic handler only."""
    add(servicer, _GenericOnly(server))
