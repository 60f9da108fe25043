"""The one interceptor every RPC passes through: request id, auth, errors, one log line.

It is also the single place where errors become `google.rpc.Status` with `ErrorInfo`,
`BadRequest` and `DefinitionError` details. Unknown exceptions become INTERNAL, logged with the
request id and never leaked to the caller.

The server runs on `grpc.aio`. A servicer method may be a coroutine (or an async generator),
which runs on the event loop, or a plain function (or generator), which runs on the engine's
thread pool: no RPC holds a thread while it waits for a stream message, a commit or a change,
and the threads only ever do the engine's own work.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import functools
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from concurrent.futures import Executor
from typing import Any

import grpc
import structlog
from audiences.v1 import admin_pb2
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc import aio
from grpc_status import rpc_status

from audiences_server.api.context import set_grant
from audiences_server.engine.auth import Auth
from audiences_server.errors import (
    AudiencesError,
    DefinitionProblem,
    FieldViolation,
    InvalidArgument,
    PermissionDenied,
    Unauthenticated,
    Unimplemented,
    disk_full,
)
from audiences_server.logs import request_id_of, rpc_line

log = structlog.get_logger("audiences_server.rpc")

ERROR_DOMAIN = "audiences.v1"

# gRPC refuses trailing metadata over 16 KiB by default, and the status details travel there: a
# long invalid definition must not turn its own error into RESOURCE_EXHAUSTED. Every text of an
# error is cut to this many characters, and at most this many field violations are listed.
MAX_ERROR_TEXT = 1000
MAX_VIOLATIONS = 20

# What an RPC observer is told once a call ends: transport, method, code and seconds.
CallObserver = Callable[[str, str, str, float], None]


def _bounded(text: str, limit: int = MAX_ERROR_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _pack(message: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def _definition_detail(problem: DefinitionProblem) -> admin_pb2.DefinitionError:
    return admin_pb2.DefinitionError(
        reason=problem.reason, message=_bounded(problem.message), line=problem.line, column=problem.column,
        offending_text=_bounded(problem.offending_text, 200),
        expected=[_bounded(e, 200) for e in problem.expected[:20]],
        caret_display=_bounded(problem.caret_display), cycle_keys=problem.cycle_keys[:100],
    )


def to_status(error: AudiencesError, metadata: tuple[tuple[str, str], ...] = ()) -> grpc.Status:
    """Encodes an error as a gRPC status with rich details, plus any other trailing metadata."""
    info = error_details_pb2.ErrorInfo(
        reason=error.reason, domain=ERROR_DOMAIN,
        metadata={key: _bounded(value) for key, value in error.metadata.items()},
    )
    details = [_pack(info)]
    if error.violations:
        details.append(_pack(error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(
                field=_bounded(v.field, 200), description=_bounded(v.description))
            for v in error.violations[:MAX_VIOLATIONS]
        ])))
    if error.definition is not None:
        details.append(_pack(_definition_detail(error.definition)))
    code = grpc.StatusCode[error.code]
    status = rpc_status.to_status(status_pb2.Status(code=code.value[0], message=_bounded(error.message, 2000),
                                                    details=details))
    return _Status(status.code, status.details, (*status.trailing_metadata, *metadata))


class _Status(grpc.Status):  # type: ignore[misc]
    """grpc.Status is an interface; this is the plain value the error path builds."""

    def __init__(self, code: grpc.StatusCode, details: str, trailing_metadata: tuple[Any, ...]) -> None:
        self.code = code
        self.details = details
        self.trailing_metadata = trailing_metadata


class _Undecodable:
    """What the deserializer hands on for bytes it cannot read: the call fails as INVALID_ARGUMENT."""

    def __init__(self, problem: Exception) -> None:
        self.problem = problem

    def error(self) -> InvalidArgument:
        said = _bounded(str(self.problem) or type(self.problem).__name__, 300)
        return InvalidArgument(
            f"the request message could not be decoded: {said}",
            reason="MESSAGE_UNDECODABLE", violations=[FieldViolation("request", "not a valid message of this RPC")],
        )


def _safe(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def decode(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as problem:  # invalid UTF-8, garbage bytes, nesting past protobuf's limit
            return _Undecodable(problem)

    return decode


class RequestInterceptor(aio.ServerInterceptor):  # type: ignore[misc]
    """Authenticates, authorises, maps errors and logs every RPC of the project's services."""

    def __init__(self, auth: Auth, scopes: dict[str, str], pool: Executor,
                 observe: CallObserver | None = None, gate: Callable[[str], None] | None = None) -> None:
        """Args:
            auth: resolves tokens.
            scopes: maps a full service name to the scope it needs; every other service is open
                (health, reflection).
            pool: where plain (blocking) servicer methods run.
            observe: told of every finished call of the project's services (metrics).
            gate: given each authorised call's full method name; raises to refuse it (a
                cluster's front refuses what it does not serve).
        """
        self._auth = auth
        self._scopes = scopes
        self._pool = pool
        self._observe = observe
        self.gate = gate
        # Wrapped handlers by method: a service's handlers never change once the server runs,
        # so each method is wrapped once instead of on every call.
        self._wrapped: dict[str, Any] = {}

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Any]], details: Any) -> Any:
        method = details.method
        wrapped = self._wrapped.get(method)
        if wrapped is not None:
            return wrapped
        handler = await continuation(details)
        service = method.split("/")[1] if method.count("/") == 2 else ""
        scope = self._scopes.get(service)
        if handler is None or scope is None:
            return handler  # health, reflection, unknown methods: open to all, not logged per call
        wrapped = self._wrapped[method] = _Call(self, method, scope).wrap(handler)
        return wrapped

    def authorize(self, metadata: Sequence[tuple[str, Any]], scope: str) -> Any:
        """The grant of the call's single `authorization: Bearer <token>` header, for a scope.

        Raises:
            Unauthenticated: no header, more than one, or not exactly `Bearer <token>`.
            PermissionDenied: a known token of another scope.
        """
        headers = [value for key, value in metadata if key == "authorization"]
        if not headers:
            raise Unauthenticated("missing `authorization: Bearer <token>` metadata", reason="TOKEN_MISSING")
        if len(headers) > 1:
            raise Unauthenticated("send exactly one `authorization` header", reason="TOKEN_MALFORMED")
        grant = self._auth.grant(_bearer(headers[0]))
        if grant.scope != scope:
            raise PermissionDenied(
                f"this call needs a `{scope}` token; the token given has scope `{grant.scope}`",
                reason="SCOPE_MISSING", metadata={"required_scope": scope, "token_scope": grant.scope},
            )
        return grant


@functools.lru_cache(maxsize=1024)
def _bearer(header: str) -> str:
    """The token of an `authorization` header value; the same few values come on every call.

    Raises:
        Unauthenticated: the value is not exactly `Bearer <token>`.
    """
    kind, _, token = header.partition(" ")
    if kind != "Bearer" or not token or token != token.strip() or " " in token:
        raise Unauthenticated("authorization must be `Bearer <token>`", reason="TOKEN_MALFORMED")
    return token


class _Call:
    """The wrapping of one method: its handler runs inside `run`, which does the rest."""

    def __init__(self, owner: RequestInterceptor, method: str, scope: str) -> None:
        self._owner = owner
        self._method = method
        self._scope = scope

    def wrap(self, handler: Any) -> Any:
        streams_out = bool(handler.unary_stream or handler.stream_stream)
        streams_in = bool(handler.stream_unary or handler.stream_stream)
        behavior = handler.unary_unary or handler.unary_stream or handler.stream_unary or handler.stream_stream
        build = {
            (False, False): grpc.unary_unary_rpc_method_handler,
            (False, True): grpc.unary_stream_rpc_method_handler,
            (True, False): grpc.stream_unary_rpc_method_handler,
            (True, True): grpc.stream_stream_rpc_method_handler,
        }[(streams_in, streams_out)]
        wrapped = self._streaming(behavior, streams_in) if streams_out else self._unary(behavior, streams_in)
        return build(wrapped, request_deserializer=_safe(handler.request_deserializer),
                     response_serializer=handler.response_serializer)

    def _unary(self, behavior: Callable[..., Any], streams_in: bool) -> Callable[..., Any]:
        pool = self._owner._pool
        if inspect.iscoroutinefunction(behavior):  # decided once per method, not per call

            async def call(request: Any, context: aio.ServicerContext) -> Any:
                async with _Handling(self, context, streams_out=False, request=request) as handling:
                    del request  # held by `handling` alone (see `_Handling.take`)
                    handling.authorize()
                    return await behavior(handling.take(streams_in), context)
                return None  # the error path aborted; grpc never reads this

            return call

        async def call_in_pool(request: Any, context: aio.ServicerContext) -> Any:
            async with _Handling(self, context, streams_out=False, request=request) as handling:
                del request  # held by `handling` alone (see `_Handling.take`)
                handling.authorize()
                copied = contextvars.copy_context()
                return await asyncio.get_running_loop().run_in_executor(pool, copied.run, behavior,
                                                                        handling.take(streams_in), context)
            return None  # the error path aborted; grpc never reads this

        return call_in_pool

    def _streaming(self, behavior: Callable[..., Any], streams_in: bool) -> Callable[..., Any]:
        pool = self._owner._pool
        asynchronous = inspect.isasyncgenfunction(behavior)

        async def call(request: Any, context: aio.ServicerContext) -> AsyncIterator[Any]:
            async with _Handling(self, context, streams_out=True, request=request) as handling:
                del request  # held by `handling` alone (see `_Handling.take`)
                await handling.started()
                handling.authorize()
                if asynchronous:
                    async for item in behavior(handling.take(streams_in), context):
                        yield item
                else:
                    async for item in _in_pool(pool, behavior(handling.take(streams_in), context)):
                        yield item

        return call


async def _in_pool(pool: Executor, items: Iterator[Any]) -> AsyncIterator[Any]:
    """A blocking generator's items, each produced on the pool. A caller that goes away (a client
    that stops reading an export) cancels the wait for the next item, not its making: the
    generator is closed once that is done, since a generator cannot be closed while it runs."""
    loop = asyncio.get_running_loop()
    done = object()
    copied = contextvars.copy_context()
    making: concurrent.futures.Future[Any] | None = None
    try:
        while True:
            making = pool.submit(copied.run, _next, items, done)
            item = await asyncio.wrap_future(making, loop=loop)
            making = None
            if item is done:
                return
            yield item
    finally:
        if making is not None and not making.done():
            with contextlib.suppress(BaseException):
                await asyncio.wrap_future(making, loop=loop)
        close = getattr(items, "close", None)
        if close is not None:
            await loop.run_in_executor(pool, close)


def _next(items: Iterator[Any], done: object) -> Any:
    return next(items, done)


async def _checked_stream(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for request in requests:
        if isinstance(request, _Undecodable):
            raise request.error()
        yield request


class _Handling:
    """One call's request id, authorisation, error mapping and log line."""

    def __init__(self, call: _Call, context: aio.ServicerContext, *, streams_out: bool, request: Any = None) -> None:
        self._call = call
        self._context = context
        # A unary call's request until the method takes it (`take`); dropped on the error path.
        self._request = request
        self._streams_out = streams_out
        # As received: a text key's value is text; only `-bin` keys carry bytes.
        metadata = context.invocation_metadata() or ()
        self._metadata = metadata
        given = None
        for key, value in metadata:
            if key == "x-request-id" and isinstance(value, str):
                given = value
                break
        self.request_id = request_id_of(given)
        # The id goes back in the trailing metadata of every call, sent with the status at no
        # extra cost. A response stream also gets it in the initial metadata, before its first
        # message; a single response does not, because sending initial metadata on its own is a
        # separate batch on the wire (about a tenth of a unary call's server CPU).
        self._tagged = (("x-request-id", self.request_id),)
        self._started = 0.0
        self._space: str | None = None

    def take(self, streams_in: bool) -> Any:
        """The request given to the constructor, checked (`checked`), and no longer held here.

        A refused call's request is otherwise kept until the collector's next full pass: gRPC's
        abort exception, kept by the call's state, holds through its traceback the frames the
        refusal went through, and those held the request (up to 8 MiB each: a client without a
        token grew the server by gigabytes)."""
        request, self._request = self._request, None
        return self.checked(request, streams_in)

    def checked(self, request: Any, streams_in: bool) -> Any:
        if streams_in:
            return _checked_stream(request)
        if isinstance(request, _Undecodable):
            raise request.error()
        return request

    async def started(self) -> None:
        if self._streams_out:
            await self._context.send_initial_metadata(self._tagged)

    async def __aenter__(self) -> _Handling:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=self.request_id)
        self._context.set_trailing_metadata(self._tagged)
        self._started = time.perf_counter()
        return self

    def authorize(self) -> None:
        """Checks the caller's token; inside the `async with`, so that a refusal is mapped too."""
        grant = self._call._owner.authorize(self._metadata, self._call._scope)
        self._space = grant.space_name
        set_grant(grant)
        gate = self._call._owner.gate
        if gate is not None:
            gate(self._call._method)

    async def __aexit__(self, kind: Any, error: BaseException | None, _traceback: Any) -> bool:
        if error is None:
            self._finish("OK")
            return False
        if isinstance(error, asyncio.CancelledError | GeneratorExit):
            self._finish("CANCELLED")
            return False
        if isinstance(error, aio.AbortError):
            self._finish(self._context.code().name if self._context.code() else "UNKNOWN")
            return False
        failure = self._as_error(error)
        # Logged before aborting: the caller may see the status before code after `abort` runs.
        self._finish(failure.code)
        status = _abort_args(to_status(failure, self._tagged))
        # What abort's exception would keep (see `take`): the request, and the error's traceback,
        # whose frames hold what the method was given (the body, its decoded calls). `failure` is
        # the error itself or one made for it, never raised.
        self._request = None
        _forget_tracebacks(error)
        del error, failure, _traceback
        try:
            await self._context.abort(*status)
        except BaseException as aborted:
            # Raised while the error is handled, abort's exception would hold it as its context,
            # and its message with it (one quoting a key of megabytes, say).
            aborted.__context__ = None
            raise
        return False  # not reached: abort raises

    def _as_error(self, error: BaseException) -> AudiencesError:
        if isinstance(error, AudiencesError):
            return error
        if isinstance(error, NotImplementedError):
            return Unimplemented(f"{self._call._method} is not implemented yet", reason="NOT_IMPLEMENTED")
        full = disk_full(error)
        if full is not None:
            log.error("disk_full", method=self._call._method, error=str(error))
            return full
        log.error("rpc_failed", method=self._call._method, exc_info=error)
        return AudiencesError(f"internal error; request id {self.request_id}")

    def _finish(self, code: str) -> None:
        seconds = time.perf_counter() - self._started
        rpc_line({"method": self._call._method, "code": code, "space": self._space,
                  "duration_ms": round(seconds * 1000, 3), "event": "rpc"}, log)
        observe = self._call._owner._observe
        if observe is not None:
            observe("grpc", self._call._method, code, seconds)


def _forget_tracebacks(error: BaseException) -> None:
    """Drops the tracebacks of an error and of those it was raised from or while handling (a
    decoding error's frames hold what was decoded, and its own `except … as` variable, a cycle)."""
    seen: set[int] = set()
    waiting: list[BaseException | None] = [error]
    while waiting:
        current = waiting.pop()
        if current is not None and id(current) not in seen:
            seen.add(id(current))
            current.__traceback__ = None
            waiting += [current.__cause__, current.__context__]


def _abort_args(status: grpc.Status) -> tuple[grpc.StatusCode, str, tuple[Any, ...]]:
    return status.code, status.details, status.trailing_metadata
