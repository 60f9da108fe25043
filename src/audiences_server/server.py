"""Building and running the server: gRPC and HTTP on one asyncio event loop.

`create_server` builds a server and returns it with its bound gRPC port, ready to start; `serve`
runs one until SIGTERM or SIGINT, then shuts down gracefully: new calls are refused, in-flight
calls get `shutdown_grace_s` to finish, and every queued write is committed before exit.

The front (the `grpc.aio` server and the HTTP listener) runs on one event loop in a thread of its
own, so that tests and embedding programs keep a plain blocking `start()` / `stop()`. The engine
behind it is unchanged: one writer thread, reader connections per thread, and a pool of threads
for the engine's blocking work (`--workers`).
"""

from __future__ import annotations

import asyncio
import faulthandler
import gc
import signal
import threading
from collections.abc import Callable, Coroutine
from concurrent import futures
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, TypeVar

import grpc
import structlog
from audiences.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    ingest_pb2,
    ingest_pb2_grpc,
    operator_pb2,
    operator_pb2_grpc,
    profiles_pb2,
    profiles_pb2_grpc,
    sync_pb2,
    sync_pb2_grpc,
)
from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

from audiences_server import logs
from audiences_server.api.computations import ComputationAdmin
from audiences_server.api.dispatch import generic_only
from audiences_server.api.explain import ExplainAdmin
from audiences_server.api.history import HistoryAdmin
from audiences_server.api.identity_admin import IdentityRuleAdmin
from audiences_server.api.ingest import IngestServicer
from audiences_server.api.interceptor import RequestInterceptor
from audiences_server.api.operator import OperatorServicer
from audiences_server.api.profiles import ProfilesServicer
from audiences_server.api.sync import SyncServicer
from audiences_server.engine.engine import Engine
from audiences_server.http.app import HttpListener
from audiences_server.http.connections import open_file_limit
from audiences_server.security import InstanceLock, check_plaintext, grpc_credentials, http_ssl_context
from audiences_server.settings import Settings

log = structlog.get_logger(__name__)

T = TypeVar("T")

# Each service and the token scope it needs. The interceptor serves only what is listed here
# with authentication; `create_server` refuses to start a project service missing from it.
SERVICES = {
    ingest_pb2.DESCRIPTOR.services_by_name["IngestService"].full_name: "write",
    profiles_pb2.DESCRIPTOR.services_by_name["ProfilesService"].full_name: "read",
    admin_pb2.DESCRIPTOR.services_by_name["AudienceAdminService"].full_name: "admin",
    sync_pb2.DESCRIPTOR.services_by_name["SyncService"].full_name: "admin",
    operator_pb2.DESCRIPTOR.services_by_name["OperatorService"].full_name: "operator",
}
REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"
MAX_RECEIVE_BYTES = 8 * 1024 * 1024
# gRPC's connections are bounded as the HTTP listener's are (http/connections.py): at most this
# many, and at most a quarter of the process's open files (the HTTP listener may hold half), so
# that a flood of connections leaves the database, the logs and the HTTP listener theirs; and a
# connection that does not finish its HTTP/2 (and TLS) handshake within 20 s is closed, as an
# HTTP request head must come within 20 s. gRPC core's default handshake timeout is 120 s.
GRPC_MAX_CONNECTIONS = 4_096
GRPC_HANDSHAKE_TIMEOUT_MS = 20_000


def grpc_connection_cap() -> int:
    """How many connections the gRPC listener accepts at once (`GRPC_MAX_CONNECTIONS`)."""
    soft = open_file_limit()
    return max(1, GRPC_MAX_CONNECTIONS if soft is None else min(GRPC_MAX_CONNECTIONS, soft // 4))


class AdminServicer(ComputationAdmin, IdentityRuleAdmin, ExplainAdmin, HistoryAdmin,
                    admin_pb2_grpc.AudienceAdminServiceServicer):
    """AudienceAdminService."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine


class LoopThread:
    """An asyncio event loop running in a thread of its own."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="front-loop", daemon=True)
        self._thread.start()

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Runs a coroutine on the loop and waits for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        """Stops the loop and its thread."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self.loop.close()


@dataclass
class AudiencesServer:
    """A built server: the front on its loop, the engine, the health service and the HTTP listener."""

    front: LoopThread
    grpc_server: aio.Server
    engine: Engine
    health: health.aio.HealthServicer
    http: HttpListener | None
    pool: futures.ThreadPoolExecutor
    lock: InstanceLock
    port: int = 0
    http_port: int = 0
    _stopped: bool = field(default=False, repr=False)

    def start(self) -> None:
        """Starts serving."""
        self.front.call(self._start())
        self.engine.start()

    async def _start(self) -> None:
        await self.grpc_server.start()
        if self.http is not None:
            await self.http.start()
        for name in ("", *SERVICES):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    def stop(self, grace: float | None = None) -> None:
        """Refuses new calls, lets in-flight ones finish, then commits queued writes and closes."""
        if self._stopped:
            return
        self._stopped = True
        seconds = grace if grace is not None else self.engine.settings.shutdown_grace_s
        try:
            self.front.call(self._stop(seconds))
        finally:
            self.engine.close()
            self.pool.shutdown(wait=True, cancel_futures=False)
            self.front.close()
            self.lock.release()

    async def _stop(self, grace: float) -> None:
        # From here on both listeners refuse new calls (HTTP answers its probes still), and their
        # calls in flight get the same grace, side by side; the HTTP listener closes after both.
        if self.http is not None:
            self.http.refuse_new()
        await self.health.enter_graceful_shutdown()
        draining = [self.grpc_server.stop(grace)]
        if self.http is not None:
            draining.append(self.http.drain(grace))
        await asyncio.gather(*draining)
        if self.http is not None:
            await self.http.stop()


def create_server(settings: Settings) -> tuple[AudiencesServer, int]:
    """Builds a server for the settings and binds its ports.

    Returns:
        The server, not started yet, and the gRPC port it bound (useful with port 0); the HTTP
        port is `server.http_port` (0 when the HTTP listener is off).

    Raises:
        ValueError: the settings ask for plaintext where it is refused, or name unreadable TLS files.
        OSError: a port could not be bound, or another server holds the database.
    """
    check_plaintext(settings)
    http_ssl_context(settings)  # unreadable TLS files are refused before the database is made
    lock = InstanceLock.take(settings.db)
    try:
        engine = Engine(settings)
    except BaseException:
        lock.release()
        raise
    engine.bootstrap()
    front = LoopThread()
    pool = futures.ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="rpc")
    try:
        server = front.call(_build(settings, engine, pool, front, lock))
    except BaseException:
        engine.close()
        pool.shutdown()
        front.close()
        lock.release()
        raise
    return server, server.port


async def _build(settings: Settings, engine: Engine, pool: futures.ThreadPoolExecutor, front: LoopThread,
                 lock: InstanceLock) -> AudiencesServer:
    grpc_server = aio.server(
        interceptors=[RequestInterceptor(engine.auth, SERVICES, pool, engine.metrics.observe_call,
                                        lambda method: _gate(engine, method))],
        options=[("grpc.max_receive_message_length", MAX_RECEIVE_BYTES), ("grpc.so_reuseport", 0),
                 ("grpc.max_allowed_incoming_connections", grpc_connection_cap()),
                 ("grpc.server_handshake_timeout_ms", GRPC_HANDSHAKE_TIMEOUT_MS)],
    )
    _add_services(grpc_server, engine, pool)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, grpc_server)
    names = (*SERVICES, health.SERVICE_NAME, reflection.SERVICE_NAME, REFLECTION_V1)
    generic_only(reflection_pb2_grpc.add_ServerReflectionServicer_to_server, reflection.aio.ReflectionServicer(names),
                 grpc_server)
    grpc_server.add_generic_rpc_handlers((_reflection_v1(names),))
    port = _bind_grpc(grpc_server, settings)
    http = None
    http_port = 0
    if settings.http_listen:
        http = HttpListener(engine, pool, http_ssl_context(settings))
        try:
            http_port = await http.bind(settings.http_listen)
        except OSError:
            await grpc_server.stop(None)
            raise
    return AudiencesServer(front, grpc_server, engine, health_servicer, http, pool, lock, port, http_port)


def _gate(engine: Engine, method: str) -> None:
    """Asks the engine's gate, if any (a cluster's front sets one after the server is built)."""
    if engine.method_gate is not None:
        engine.method_gate(method)


def _add_services(grpc_server: aio.Server, engine: Engine, pool: futures.ThreadPoolExecutor) -> None:
    servicers: tuple[tuple[Callable[[Any, aio.Server], None], Any], ...] = (
        (ingest_pb2_grpc.add_IngestServiceServicer_to_server, IngestServicer(engine, pool)),
        (profiles_pb2_grpc.add_ProfilesServiceServicer_to_server, ProfilesServicer(engine)),
        (admin_pb2_grpc.add_AudienceAdminServiceServicer_to_server, AdminServicer(engine)),
        (sync_pb2_grpc.add_SyncServiceServicer_to_server, SyncServicer(engine, pool)),
        (operator_pb2_grpc.add_OperatorServiceServicer_to_server, OperatorServicer(engine)),
    )
    for add, servicer in servicers:
        generic_only(add, servicer, grpc_server)
    for descriptor in (ingest_pb2, profiles_pb2, admin_pb2, sync_pb2, operator_pb2):
        for service in descriptor.DESCRIPTOR.services_by_name.values():
            if service.full_name not in SERVICES:
                # Served without authentication otherwise: refuse to start instead.
                raise RuntimeError(f"service {service.full_name} has no token scope in server.SERVICES")


def _reflection_v1(names: tuple[str, ...]) -> grpc.GenericRpcHandler:
    """`grpc.reflection.v1`: the same messages on the wire as v1alpha, under the newer name."""
    servicer = reflection.aio.ReflectionServicer(names)
    handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    return grpc.method_handlers_generic_handler(REFLECTION_V1, {"ServerReflectionInfo": handler})


def _bind_grpc(grpc_server: aio.Server, settings: Settings) -> int:
    credentials = grpc_credentials(settings)
    try:
        if credentials is None:
            port = grpc_server.add_insecure_port(settings.listen)
        else:
            port = grpc_server.add_secure_port(settings.listen, credentials)
    except RuntimeError as failed:  # grpc says "Failed to bind to address"
        raise OSError(f"could not listen on {settings.listen}: {failed}") from None
    if port == 0:
        raise OSError(f"could not listen on {settings.listen}")
    return int(port)


# The collector's thresholds once started (Python's default is 700, 10, 10): its first generation
# runs after this many more container objects allocated than freed.
GC_THRESHOLDS = (20_000, 10, 10)


def _settle_heap() -> None:
    """Moves what startup made (modules, the registry, gRPC's objects) out of the collector's
    sight, for good, and collects less often. A 200-definition tick job allocates about a million
    short-lived objects, and each collection walked the server's whole heap to find a job's few
    cycles: the server's CPU per 1,000-user tick fell ~10% (BENCHMARKS.md)."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def serve(settings: Settings) -> None:
    """Runs a server until SIGTERM or SIGINT, then shuts it down gracefully."""
    logs.configure(settings.log_format, settings.log_level)
    server, port = create_server(settings)
    stopping = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("shutdown_requested", signal=signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # `kill -USR1` writes every thread's stack to stderr: what a stuck server is waiting on.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    server.start()
    _settle_heap()
    host = settings.listen.rsplit(":", 1)[0]
    http = f"{settings.http_listen.rsplit(':', 1)[0]}:{server.http_port}" if server.http else ""
    log.info("server_started", address=f"{host}:{port}", http_address=http, db=str(settings.db.resolve()),
             tls=bool(settings.tls_cert))
    # A timed wait: a signal may be delivered to any thread (gRPC's, the loop's), and Python runs
    # its handler only when the main thread next executes bytecode; an untimed wait never would.
    while not stopping.wait(0.25):
        pass
    server.stop()
    log.info("server_stopped")
