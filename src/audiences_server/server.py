"""Building and running the gRPC server.

`create_server` builds a server and returns it with its bound port, ready to start; `serve`
runs one until SIGTERM or SIGINT, then shuts down gracefully: new calls are refused, in-flight
calls get `shutdown_grace_s` to finish, and every queued write is committed before exit.
"""

from __future__ import annotations

import faulthandler
import signal
import threading
from concurrent import futures
from dataclasses import dataclass
from types import FrameType

import grpc
import structlog
from audiences.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    ingest_pb2,
    ingest_pb2_grpc,
    profiles_pb2,
    profiles_pb2_grpc,
    sync_pb2,
    sync_pb2_grpc,
)
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from audiences_server import logs
from audiences_server.api.computations import ComputationAdmin
from audiences_server.api.identity_admin import IdentityRuleAdmin
from audiences_server.api.ingest import IngestServicer
from audiences_server.api.interceptor import RequestInterceptor
from audiences_server.api.profiles import ProfilesServicer
from audiences_server.api.sync import SyncServicer
from audiences_server.engine.engine import Engine
from audiences_server.settings import Settings

log = structlog.get_logger(__name__)

# Each service and the token scope it needs.
SERVICES = {
    ingest_pb2.DESCRIPTOR.services_by_name["IngestService"].full_name: "write",
    profiles_pb2.DESCRIPTOR.services_by_name["ProfilesService"].full_name: "read",
    admin_pb2.DESCRIPTOR.services_by_name["AudienceAdminService"].full_name: "admin",
    sync_pb2.DESCRIPTOR.services_by_name["SyncService"].full_name: "admin",
}


class AdminServicer(ComputationAdmin, IdentityRuleAdmin, admin_pb2_grpc.AudienceAdminServiceServicer):
    """AudienceAdminService."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine


@dataclass
class AudiencesServer:
    """A built server: the gRPC server, its engine and its health service."""

    grpc_server: grpc.Server
    engine: Engine
    health: health.HealthServicer

    def start(self) -> None:
        """Starts serving."""
        self.grpc_server.start()
        self.engine.start()
        for name in ("", *SERVICES):
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    def stop(self, grace: float | None = None) -> None:
        """Refuses new calls, lets in-flight ones finish, then commits queued writes and closes."""
        self.health.enter_graceful_shutdown()
        self.grpc_server.stop(grace if grace is not None else self.engine.settings.shutdown_grace_s).wait()
        self.engine.close()


def create_server(settings: Settings) -> tuple[AudiencesServer, int]:
    """Builds a server for the settings and binds its port.

    Returns:
        The server, not started yet, and the port it bound (useful with port 0).
    """
    engine = Engine(settings)
    engine.bootstrap()
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="rpc"),
        interceptors=[RequestInterceptor(engine.auth, SERVICES)],
        options=[("grpc.max_receive_message_length", 8 * 1024 * 1024)],
    )
    ingest_pb2_grpc.add_IngestServiceServicer_to_server(IngestServicer(engine), server)
    profiles_pb2_grpc.add_ProfilesServiceServicer_to_server(ProfilesServicer(engine), server)
    admin_pb2_grpc.add_AudienceAdminServiceServicer_to_server(AdminServicer(engine), server)
    sync_pb2_grpc.add_SyncServiceServicer_to_server(SyncServicer(engine), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((*SERVICES, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    port = server.add_insecure_port(settings.listen)
    if port == 0:
        engine.close()
        raise OSError(f"could not listen on {settings.listen}")
    return AudiencesServer(server, engine, health_servicer), port


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
    host = settings.listen.rsplit(":", 1)[0]
    log.info("server_started", address=f"{host}:{port}", db=str(settings.db.resolve()))
    stopping.wait()
    server.stop()
    log.info("server_stopped")
