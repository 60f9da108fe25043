"""What every part of the client shares: the channel, the tokens, calling an RPC, paging."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar, cast

import grpc
from google.protobuf import duration_pb2, timestamp_pb2

from audiences.errors import AudiencesError
from audiences.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    common_pb2,
    ingest_pb2,
    ingest_pb2_grpc,
    operator_pb2,
    operator_pb2_grpc,
    profiles_pb2,
    profiles_pb2_grpc,
    sync_pb2,
    sync_pb2_grpc,
)

R = TypeVar("R")
CollectionArg = str | int | None
KindArg = str | int

_COLLECTIONS = {
    "users": common_pb2.COLLECTION_USERS,
    "user": common_pb2.COLLECTION_USERS,
    "accounts": common_pb2.COLLECTION_ACCOUNTS,
    "account": common_pb2.COLLECTION_ACCOUNTS,
}
_KINDS = {
    "audience": common_pb2.COMPUTATION_KIND_AUDIENCE,
    "audiences": common_pb2.COMPUTATION_KIND_AUDIENCE,
    "computed_trait": common_pb2.COMPUTATION_KIND_COMPUTED_TRAIT,
    "trait": common_pb2.COMPUTATION_KIND_COMPUTED_TRAIT,
    "traits": common_pb2.COMPUTATION_KIND_COMPUTED_TRAIT,
}


def collection_value(value: CollectionArg) -> common_pb2.Collection:
    """`"users"`/`"accounts"` (or the enum value) as the `Collection` enum; None is UNSPECIFIED."""
    if value is None:
        return common_pb2.COLLECTION_UNSPECIFIED
    if isinstance(value, int):
        return cast(common_pb2.Collection, value)
    try:
        return _COLLECTIONS[value.lower()]
    except KeyError:
        raise ValueError(f"collection must be users or accounts, not {value!r}") from None


def kind_value(value: KindArg) -> common_pb2.ComputationKind:
    """`"audience"`/`"computed_trait"` (or the enum value) as the `ComputationKind` enum."""
    if isinstance(value, int):
        return cast(common_pb2.ComputationKind, value)
    try:
        return _KINDS[value.lower()]
    except KeyError:
        raise ValueError(f"kind must be audience or computed_trait, not {value!r}") from None


def timestamp(value: dt.datetime | None) -> timestamp_pb2.Timestamp | None:
    """A datetime (naive is UTC) as a protobuf Timestamp."""
    if value is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value if value.tzinfo else value.replace(tzinfo=dt.UTC))
    return stamp


def duration(value: dt.timedelta | float | None) -> duration_pb2.Duration | None:
    """A timedelta (or seconds) as a protobuf Duration."""
    if value is None:
        return None
    out = duration_pb2.Duration()
    out.FromTimedelta(value if isinstance(value, dt.timedelta) else dt.timedelta(seconds=value))
    return out


_SERVICES = (
    ingest_pb2.DESCRIPTOR.services_by_name["IngestService"],
    profiles_pb2.DESCRIPTOR.services_by_name["ProfilesService"],
    admin_pb2.DESCRIPTOR.services_by_name["AudienceAdminService"],
    sync_pb2.DESCRIPTOR.services_by_name["SyncService"],
    operator_pb2.DESCRIPTOR.services_by_name["OperatorService"],
)
_IDEMPOTENT = ("Get", "List", "Validate", "Preview")


def idempotent_methods() -> list[tuple[str, str]]:
    """The RPCs safe to send twice, as (service, method): every unary Get*, List*, Validate* and
    Preview* of the five services (reads; a write is never retried by the channel)."""
    return [
        (service.full_name, method.name)
        for service in _SERVICES
        for method in service.methods
        if method.name.startswith(_IDEMPOTENT) and not (method.client_streaming or method.server_streaming)
    ]


def service_config() -> dict[str, Any]:
    """The channel's service config (gRPC's JSON form): the idempotent reads are retried when
    they fail with UNAVAILABLE, with exponential backoff."""
    return {
        "methodConfig": [
            {
                "name": [{"service": service, "method": method} for service, method in idempotent_methods()],
                "retryPolicy": {
                    "maxAttempts": 5,
                    "initialBackoff": "0.1s",
                    "maxBackoff": "2s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }


def channel_options() -> list[tuple[str, Any]]:
    """Options of every channel the client opens: retries on, with the service config."""
    return [("grpc.enable_retries", 1), ("grpc.service_config", json.dumps(service_config()))]


def tls_credentials(
    ca_file: str | os.PathLike[str] | None = None,
    cert_file: str | os.PathLike[str] | None = None,
    key_file: str | os.PathLike[str] | None = None,
) -> grpc.ChannelCredentials:
    """TLS credentials for a server whose certificate the CA in `ca_file` signed (default: the
    system's roots), presenting `cert_file`/`key_file` where the server asks for a client
    certificate (mutual TLS)."""
    if (cert_file is None) != (key_file is None):
        raise ValueError("a client certificate needs both cert_file and key_file")
    return grpc.ssl_channel_credentials(
        root_certificates=Path(ca_file).read_bytes() if ca_file else None,
        private_key=Path(key_file).read_bytes() if key_file else None,
        certificate_chain=Path(cert_file).read_bytes() if cert_file else None,
    )


class Base:
    """The channel, one stub per service, and the token of each scope."""

    def __init__(
        self,
        address: str,
        tokens: dict[str, str],
        *,
        timeout: float | None,
        channel_credentials: grpc.ChannelCredentials | None,
        wait_for_ready: bool = False,
    ) -> None:
        self.address = address
        self.tokens = tokens
        self.timeout = timeout
        self.wait_for_ready = wait_for_ready
        self.channel_credentials = channel_credentials
        options = channel_options()
        self.channel = (
            grpc.secure_channel(address, channel_credentials, options)
            if channel_credentials
            else grpc.insecure_channel(address, options)
        )
        self.ingest_stub = ingest_pb2_grpc.IngestServiceStub(self.channel)
        self.admin_stub = admin_pb2_grpc.AudienceAdminServiceStub(self.channel)
        self.profiles_stub = profiles_pb2_grpc.ProfilesServiceStub(self.channel)
        self.sync_stub = sync_pb2_grpc.SyncServiceStub(self.channel)
        self.operator_stub = operator_pb2_grpc.OperatorServiceStub(self.channel)

    def _metadata(self, scope: str) -> tuple[tuple[str, str], ...]:
        token = self.tokens.get(scope)
        if not token:
            raise AudiencesError(
                grpc.StatusCode.UNAUTHENTICATED,
                f"no `{scope}` token: pass {scope}_token= (or token=), set AUDIENCES_{scope.upper()}_TOKEN, "
                "or point AUDIENCES_CREDENTIALS_FILE at the server's credentials.json",
                reason="TOKEN_MISSING",
                metadata={"required_scope": scope},
            )
        return (("authorization", f"Bearer {token}"),)

    def _call(
        self, scope: str, reply: type[R], method: Callable[..., Any], request: Any, *, timeout: float | None = None
    ) -> R:
        """Calls a unary RPC with the scope's token; failures become AudiencesError."""
        try:
            answer = method(
                request,
                metadata=self._metadata(scope),
                timeout=timeout or self.timeout,
                wait_for_ready=self.wait_for_ready,
            )
        except grpc.RpcError as error:
            raise AudiencesError.from_rpc_error(error) from None
        return cast(R, answer)

    def _stream(
        self, scope: str, method: Callable[..., Any], request: Any, timeout: float | None = None
    ) -> Iterator[Any]:
        """Calls a server-streaming RPC; failures (also midway) become AudiencesError."""
        try:
            yield from method(
                request, metadata=self._metadata(scope), timeout=timeout, wait_for_ready=self.wait_for_ready
            )
        except grpc.RpcError as error:
            raise AudiencesError.from_rpc_error(error) from None

    @staticmethod
    def _pages(fetch: Callable[[str], Any], field: str) -> Iterator[Any]:
        """Every item of a paged list: calls `fetch(page_token)` until the last page."""
        token = ""
        while True:
            page = fetch(token)
            yield from getattr(page, field)
            token = page.next_page_token
            if not token:
                return
