"""What every part of the client shares: the channel, the tokens, calling an RPC, paging."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import inspect
import json
import math
import os
import re
import ssl
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar, cast

import grpc
from google.protobuf import duration_pb2, timestamp_pb2

from audiences.errors import AudiencesError, InvalidArgument, closed_error
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
T = TypeVar("T")
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


def choose(table: Mapping[str, T], value: str, what: str, reason: str) -> T:
    """`table[value]`, or `InvalidArgument` (`reason`, metadata `option` and `value`) naming the
    values it takes, for an option given as a word (`sort="asc"`, …)."""
    try:
        return table[value]
    except (KeyError, TypeError):
        raise InvalidArgument(
            f"{what} must be one of {', '.join(table)}, not {value!r}", reason, {"option": what, "value": str(value)}
        ) from None


def collection_value(value: CollectionArg) -> common_pb2.Collection:
    """`"users"`/`"accounts"` (or the enum value) as the `Collection` enum; None is UNSPECIFIED."""
    if value is None:
        return common_pb2.COLLECTION_UNSPECIFIED
    if isinstance(value, int):
        return cast(common_pb2.Collection, value)
    try:
        return _COLLECTIONS[value.lower()]
    except KeyError:
        raise InvalidArgument(
            f"collection must be users or accounts, not {value!r}", "COLLECTION_INVALID", {"value": str(value)}
        ) from None


def kind_value(value: KindArg) -> common_pb2.ComputationKind:
    """`"audience"`/`"computed_trait"` (or the enum value) as the `ComputationKind` enum."""
    if isinstance(value, int):
        return cast(common_pb2.ComputationKind, value)
    try:
        return _KINDS[value.lower()]
    except KeyError:
        raise InvalidArgument(
            f"kind must be audience or computed_trait, not {value!r}", "KIND_INVALID", {"value": str(value)}
        ) from None


def timestamp(value: dt.datetime | None) -> timestamp_pb2.Timestamp | None:
    """A datetime (naive is UTC) as a protobuf Timestamp."""
    if value is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value if value.tzinfo else value.replace(tzinfo=dt.UTC))
    return stamp


# The most a protobuf Duration holds: 10,000 years either way.
MAX_DURATION_SECONDS = 315_576_000_000
# The longest timeout a call may have. gRPC's deadline (now plus the timeout, in nanoseconds)
# overflows some 200 years from now and then fails at once with DEADLINE_EXCEEDED.
MAX_TIMEOUT = 1e9


def duration(value: dt.timedelta | float | None) -> duration_pb2.Duration | None:
    """A timedelta (or seconds) as a protobuf Duration.

    Raises:
        InvalidArgument: `DURATION_INVALID` for NaN, an infinity, or beyond 10,000 years (what a
            Duration holds), instead of an OverflowError from `timedelta`.
    """
    if value is None:
        return None
    try:
        seconds = value.total_seconds() if isinstance(value, dt.timedelta) else float(value)
    except OverflowError:
        seconds = math.inf
    if not abs(seconds) <= MAX_DURATION_SECONDS:  # NaN too
        raise InvalidArgument(
            f"a duration must be a finite number of seconds within 10,000 years ({MAX_DURATION_SECONDS:,}), "
            f"not {value!r}",
            "DURATION_INVALID",
            {"value": str(value)},
        )
    out = duration_pb2.Duration()
    out.FromTimedelta(value if isinstance(value, dt.timedelta) else dt.timedelta(seconds=seconds))
    return out


class DefaultTimeout(float):
    """A timeout the caller did not choose: a float that says so.

    `Client`'s default `timeout` is one, so that a call which may rightly run long (`run_tick`,
    ticking until idle) can be given longer than the default, but never longer than a timeout
    the caller chose.
    """


DEFAULT_TIMEOUT = DefaultTimeout(30.0)


def check_timeout(timeout: float | None) -> float | None:
    """A call's timeout in seconds, checked: None (no limit), or above 0 and at most `MAX_TIMEOUT`.

    Raises:
        InvalidArgument: `TIMEOUT_INVALID` for zero, a negative, NaN or a timeout too long for
            gRPC, each of which would otherwise fail every call at once with DEADLINE_EXCEEDED.
    """
    if timeout is None:
        return None
    try:
        seconds = float(timeout)
    except (TypeError, ValueError, OverflowError):
        seconds = math.nan
    if not 0 < seconds <= MAX_TIMEOUT:  # NaN too
        raise InvalidArgument(
            f"a timeout must be a number of seconds above 0 and at most {MAX_TIMEOUT:,.0f} (None for no limit), "
            f"not {timeout!r}",
            "TIMEOUT_INVALID",
            {"timeout": str(timeout)},
        )
    return seconds


def check_token(scope: str, token: str) -> None:
    """Refuses a token gRPC could not send, or the server could never accept, before any call.

    A token goes in the `authorization` header, which holds printable ASCII only; a character
    outside it (`ü`, a newline from a file, a space) otherwise fails deep in gRPC with INTERNAL
    "Invalid metadata" after C-core log lines. The token itself is never put in the message.

    Raises:
        InvalidArgument: `TOKEN_MALFORMED`, with metadata `scope`, `position` and `character`.
    """
    bad = next((i for i, char in enumerate(token) if not "!" <= char <= "~"), None)
    if bad is None:
        return
    raise InvalidArgument(
        f"the `{scope}` token is malformed: a token is printable ASCII without spaces, but this one has "
        f"{token[bad]!r} at position {bad}; check {scope}_token= (or token=), AUDIENCES_{scope.upper()}_TOKEN, "
        "AUDIENCES_TOKEN or the credentials file",
        "TOKEN_MALFORMED",
        {"scope": scope, "position": str(bad), "character": repr(token[bad])},
    )


def unencodable(error: UnicodeEncodeError) -> InvalidArgument:
    """The client-side error for a string protobuf refused to encode (a lone surrogate such as
    `"\\ud800"`, which UTF-8 cannot hold), naming the string and the position."""
    text = error.object if isinstance(error.object, str) else ""
    start = max(0, error.start - 30)
    shown = ("…" if start else "") + text[start : error.start + 30] + ("…" if error.start + 30 < len(text) else "")
    return InvalidArgument(
        f"cannot send {shown!r} to the server: {text[error.start : error.end]!r} at position {error.start} "
        f"cannot be encoded as UTF-8 ({error.reason})",
        "STRING_NOT_ENCODABLE",
        {"position": str(error.start)},
    )


def _refusing_unencodable(method: Callable[..., Any]) -> Callable[..., Any]:
    """`method`, raising `InvalidArgument` where protobuf raised UnicodeEncodeError building its
    request. A generator (sync or async) is delegated to, so closing it closes the method's."""
    if inspect.isasyncgenfunction(method):

        @functools.wraps(method)
        async def iterate(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            try:
                async with contextlib.aclosing(method(*args, **kwargs)) as items:
                    async for item in items:
                        yield item
            except UnicodeEncodeError as error:
                raise unencodable(error) from None

        return iterate
    if inspect.iscoroutinefunction(method):

        @functools.wraps(method)
        async def wait(*args: Any, **kwargs: Any) -> Any:
            try:
                return await method(*args, **kwargs)
            except UnicodeEncodeError as error:
                raise unencodable(error) from None

        return wait
    if inspect.isgeneratorfunction(method):

        @functools.wraps(method)
        def generate(*args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                yield from method(*args, **kwargs)
            except UnicodeEncodeError as error:
                raise unencodable(error) from None

        return generate

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except UnicodeEncodeError as error:
            raise unencodable(error) from None

    return call


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
        raise InvalidArgument(
            "a client certificate needs both tls_cert_file and tls_key_file",
            "TLS_FILE_UNREADABLE",
            {"option": "tls_key_file" if key_file is None else "tls_cert_file"},
        )
    credentials = grpc.ssl_channel_credentials(
        root_certificates=_pem(ca_file, "TLS CA file", "tls_ca_file"),
        private_key=_pem(key_file, "TLS key file", "tls_key_file"),
        certificate_chain=_pem(cert_file, "TLS certificate file", "tls_cert_file"),
    )
    _check_usable(ca_file, cert_file, key_file)
    return credentials


def _ssl_reason(error: ssl.SSLError) -> str:
    """OpenSSL's words for a failure, without the `[LIB: CODE]` prefix and `(_ssl.c:123)` suffix."""
    text = str(error.args[1] if len(error.args) > 1 else error)
    return re.sub(r"^\[[^\]]*\]\s*|\s*\(_ssl\.c:\d+\)$", "", text) or str(error)


def _check_usable(
    ca_file: str | os.PathLike[str] | None,
    cert_file: str | os.PathLike[str] | None,
    key_file: str | os.PathLike[str] | None,
) -> None:
    """Loads the TLS files as a TLS library would, so that a PEM file holding no certificate
    (a key given as the CA), or a client certificate and key that are not a pair, is refused
    now, naming the file, instead of failing every call's handshake as if the server were
    unreachable.

    Raises:
        InvalidArgument: `TLS_FILE_UNREADABLE`, with metadata `file` and `option`.
    """

    def unusable(path: str | os.PathLike[str], option: str, message: str) -> InvalidArgument:
        return InvalidArgument(message, "TLS_FILE_UNREADABLE", {"file": os.fspath(path), "option": option})

    for path, what, option in ((ca_file, "TLS CA file", "tls_ca_file"),
                               (cert_file, "TLS certificate file", "tls_cert_file")):
        if path:
            try:
                ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=os.fspath(path))
            except ssl.SSLError as error:
                raise unusable(path, option, f"the {what} {os.fspath(path)} holds no usable certificate: "
                               f"{_ssl_reason(error)}") from None
    if cert_file and key_file:
        try:
            # An encrypted key (which gRPC cannot use either) fails here instead of prompting.
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(
                os.fspath(cert_file), os.fspath(key_file), password=lambda: b"")
        except ssl.SSLError as error:
            mismatch = "KEY_VALUES_MISMATCH" in str(error) or getattr(error, "reason", "") == "KEY_VALUES_MISMATCH"
            reason = _ssl_reason(error)
            said = (f"is not the private key of the certificate in {os.fspath(cert_file)}" if mismatch
                    else "holds no private key that can be used (none, or an encrypted one)" if reason == "PEM lib"
                    else f"holds no usable private key: {reason}")
            raise unusable(key_file, "tls_key_file", f"the TLS key file {os.fspath(key_file)} {said}") from None


def _pem(path: str | os.PathLike[str] | None, what: str, option: str) -> bytes | None:
    """A PEM file's bytes, read now so that a wrong path is said at once, naming the file.

    Raises:
        InvalidArgument: `TLS_FILE_UNREADABLE`, with metadata `file` and `option`, when the file
            cannot be read (missing, a directory, no permission) or holds no PEM block.
    """
    if not path:
        return None
    metadata = {"file": os.fspath(path), "option": option}
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise InvalidArgument(
            f"cannot read the {what} {os.fspath(path)}: {error.strerror or error}", "TLS_FILE_UNREADABLE", metadata
        ) from None
    if b"-----BEGIN " not in data:
        raise InvalidArgument(
            f"the {what} {os.fspath(path)} is not PEM (it has no -----BEGIN line)", "TLS_FILE_UNREADABLE", metadata
        )
    return data


# `host:port`, `[v6]:port`, or either after `dns:///`, `ipv4:` or `ipv6:` (gRPC's name forms).
_PORT = re.compile(r"^(?:dns:(?://[^/]*)?/|ipv4:|ipv6:)?(?:\[[^\]]*\]|[^:\[\]/]*):(\d+)$")


def check_address(address: str) -> str:
    """The address, refused when its port is not 1 to 65535 (gRPC would otherwise dial the port
    modulo 65536: `host:99999` reached port 34463).

    Raises:
        InvalidArgument: `ADDRESS_INVALID`, with metadata `address` and `port`.
    """
    found = _PORT.match(address.strip())
    if found and not 1 <= int(found[1]) <= 65535:
        raise InvalidArgument(
            f"{address!r} has port {int(found[1])}; ports are 1 to 65535",
            "ADDRESS_INVALID",
            {"address": address, "port": found[1]},
        )
    return address


class Base:
    """The channel, one stub per service, and the token of each scope.

    Every public method of the client's classes is wrapped as they are defined, so that a string
    protobuf cannot encode (a lone surrogate) raises `InvalidArgument`, not UnicodeEncodeError:
    requests are built in each method, so this is the one place that sees them all.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__module__.startswith("audiences."):
            return  # a caller's own subclass: its methods are its own
        for name, member in list(vars(cls).items()):
            if not name.startswith("_") and inspect.isfunction(member):
                setattr(cls, name, _refusing_unencodable(member))

    def __init__(
        self,
        address: str,
        tokens: dict[str, str],
        *,
        timeout: float | None,
        channel_credentials: grpc.ChannelCredentials | None,
        wait_for_ready: bool = False,
        credentials_problem: str = "",
    ) -> None:
        self._closed = False  # set by the client's close(); later calls raise CLIENT_CLOSED
        # Whether the server answered a call of this client (then a connection closed later is
        # the server going away, not a TLS mismatch).
        self.reached = False
        self.address = check_address(address)
        self.tokens = tokens
        self.credentials_problem = credentials_problem
        self.timeout = check_timeout(timeout)
        self.timeout_chosen = not isinstance(timeout, DefaultTimeout)
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
            # A credentials file that was named but gave nothing is likely why: say so.
            why = f" ({self.credentials_problem})" if self.credentials_problem else ""
            raise AudiencesError(
                grpc.StatusCode.UNAUTHENTICATED,
                f"no `{scope}` token: pass {scope}_token= (or token=), set AUDIENCES_{scope.upper()}_TOKEN, "
                f"or point AUDIENCES_CREDENTIALS_FILE at the server's credentials.json{why}",
                reason="TOKEN_MISSING",
                metadata={"required_scope": scope},
            )
        check_token(scope, token)
        return (("authorization", f"Bearer {token}"),)

    def _long_timeout(self, seconds: float) -> float | None:
        """The timeout of a call that may rightly run long (a tick until idle): the client's
        timeout when the caller chose one (None: no limit), else `seconds` or the default,
        whichever is longer."""
        if self.timeout_chosen:
            return self.timeout
        return max(self.timeout or 0, seconds)

    def _check_open(self) -> None:
        """Refuses a call on a closed client with the client's own error (gRPC would raise a bare
        ValueError, or grpc.aio a UsageError, for its closed channel).

        Raises:
            AudiencesError: FAILED_PRECONDITION `CLIENT_CLOSED`.
        """
        if self._closed:
            raise closed_error()

    def _call(
        self, scope: str, reply: type[R], method: Callable[..., Any], request: Any, *, timeout: float | None = None
    ) -> R:
        """Calls a unary RPC with the scope's token; failures become AudiencesError."""
        timeout = timeout or self.timeout
        self._check_open()
        try:
            answer = method(
                request, metadata=self._metadata(scope), timeout=timeout, wait_for_ready=self.wait_for_ready
            )
        except grpc.RpcError as error:
            raise self._closing_failure(error, timeout) from None
        except ValueError:
            if self._closed:  # closed by another thread while this call was being made
                raise closed_error() from None
            raise
        self.reached = True
        return cast(R, answer)

    @staticmethod
    def _failure(error: grpc.RpcError, timeout: float | None) -> AudiencesError:
        """The AudiencesError of a failed call. When the client's own deadline ran out, its
        metadata `timeout` says how long that was (gRPC's message, "Deadline Exceeded", does not)."""
        failed = AudiencesError.from_rpc_error(error)
        if failed.code == grpc.StatusCode.DEADLINE_EXCEEDED and not failed.reason and timeout is not None:
            failed.metadata["timeout"] = f"{timeout:g}"
        return failed

    def _stream(
        self, scope: str, method: Callable[..., Any], request: Any, timeout: float | None = None
    ) -> Iterator[Any]:
        """Calls a server-streaming RPC; failures (also midway) become AudiencesError. A stream
        that `close()` ends fails with CANCELLED `CLIENT_CLOSED`."""
        self._check_open()
        try:
            for message in method(
                request, metadata=self._metadata(scope), timeout=timeout, wait_for_ready=self.wait_for_ready
            ):
                self.reached = True
                yield message
        except grpc.RpcError as error:
            raise self._closing_failure(error, timeout) from None
        except ValueError:
            if self._closed:
                raise closed_error() from None
            raise

    def _closing_failure(self, error: grpc.RpcError, timeout: float | None) -> AudiencesError:
        """The AudiencesError of a failed call or stream: as `_failure`, and one the client's
        `close()` cancelled says so (reason `CLIENT_CLOSED`, as `AsyncClient` says)."""
        failed = self._failure(error, timeout)
        if self._closed and failed.code == grpc.StatusCode.CANCELLED and not failed.reason:
            failed.reason = "CLIENT_CLOSED"
            failed.message = f"the client was closed ({failed.message or 'cancelled'})"
        return failed

    @staticmethod
    def _pages(fetch: Callable[[str], Any], field: str) -> Iterator[Any]:
        """Every item of a paged list: calls `fetch(page_token)` until the last page."""
        token = ""
        while True:
            try:
                page = fetch(token)
            except UnicodeEncodeError as error:  # a request built in the caller's lambda
                raise unencodable(error) from None
            yield from getattr(page, field)
            token = page.next_page_token
            if not token:
                return
