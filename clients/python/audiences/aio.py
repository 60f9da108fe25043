"""`audiences.AsyncClient`: the same methods as `audiences.Client`, on `grpc.aio`.

    import audiences

    async with audiences.AsyncClient() as client:
        client.track(user_id="ada", event="Signed In")  # queued, as with Client
        await client.flush()
        audience = await client.get_audience("buyers")
        async for member in client.iter_audience_members("buyers"):
            ...

Every RPC method of `Client` is a coroutine here (`await client.get_audience(...)`), every
`iter_*`, `watch_changes` and `export_audience` an async iterator. Tracking calls (`track`,
`identify`, …) are queued at once, as with `Client`, and sent by the queue's background thread
over a blocking channel of its own, so sending never waits on the event loop; `flush()` and
`close()` are coroutines (`await client.close()`; a client not closed is closed at interpreter
exit, as `Client` is, so calls still queued then are sent or reported). With
`on_overflow="block"` a full queue blocks the caller, here the event loop: prefer `drop_newest` or
`raise` in asyncio code.

How the methods are shared: each method of `Client` builds its request and calls `self._call`.
Here `_call` returns a `PendingCall`, an awaitable that makes the call on the `grpc.aio` channel
when awaited, and that records attribute reads (`.audience`) to apply to the reply; `_pages`
is an async generator. So a method like `get_audience` is written once for both clients. The
few methods that make several calls or read a reply before returning are written out here.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Mapping, Sequence
from typing import IO, Any

import grpc
import grpc.aio

from audiences import messages
from audiences._base import channel_options, collection_value, kind_value, unencodable
from audiences._insight import MAX_VERSION, diff_request, edited_options, same_definition
from audiences._profiles import trait_value
from audiences._sync import EXPORT_TIMEOUT, selection_value
from audiences.batching import encode_batch
from audiences.client import Client, StreamRequests
from audiences.errors import AudiencesError, InvalidArgument, closed_error
from audiences.messages import Json
from audiences.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    common_pb2,
    ingest_pb2,
    ingest_pb2_grpc,
    operator_pb2_grpc,
    profiles_pb2_grpc,
    sync_pb2,
    sync_pb2_grpc,
)

__all__ = ["AsyncClient", "PendingCall"]


class PendingCall:
    """A unary call not made yet: awaiting it makes the call and returns the reply, or the field
    of it that was read from this object before awaiting (`pending.audience`)."""

    __slots__ = ("_client", "_method", "_path", "_request", "_scope", "_timeout")

    def __init__(
        self, client: AsyncClient, scope: str, method: Any, request: Any, timeout: float | None, path: tuple[str, ...]
    ) -> None:
        self._client, self._scope, self._method = client, scope, method
        self._request, self._timeout, self._path = request, timeout, path

    def __getattr__(self, name: str) -> PendingCall:
        if name.startswith("__"):
            raise AttributeError(name)
        return PendingCall(self._client, self._scope, self._method, self._request, self._timeout, (*self._path, name))

    def __bool__(self) -> bool:
        # A method that inspects a reply before returning it must be written out in AsyncClient.
        raise TypeError("a pending call has no value yet: await it")

    def __await__(self) -> Generator[Any, None, Any]:
        return self._run().__await__()

    async def _run(self) -> Any:
        answer = await self._client._unary(self._scope, self._method, self._request, self._timeout)
        return functools.reduce(getattr, self._path, answer)


class AsyncClient(Client):
    """A connection to an Audiences server for asyncio code; see the module's docstring.

    Takes the same arguments as `Client`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The blocking channel Client opened stays for the send queue's thread; RPC methods use this one.
        self._queue_ingest = self.ingest_stub
        options = channel_options()
        self.aio_channel = (
            grpc.aio.secure_channel(self.address, self.channel_credentials, options)
            if self.channel_credentials
            else grpc.aio.insecure_channel(self.address, options)
        )
        self.ingest_stub = ingest_pb2_grpc.IngestServiceStub(self.aio_channel)
        self.admin_stub = admin_pb2_grpc.AudienceAdminServiceStub(self.aio_channel)
        self.profiles_stub = profiles_pb2_grpc.ProfilesServiceStub(self.aio_channel)
        self.sync_stub = sync_pb2_grpc.SyncServiceStub(self.aio_channel)
        self.operator_stub = operator_pb2_grpc.OperatorServiceStub(self.aio_channel)
        self._last: PendingCall | None = None

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- calling ------------------------------------------------------------------------------

    def _call(
        self, scope: str, reply: type[Any], method: Callable[..., Any], request: Any, *, timeout: float | None = None
    ) -> Any:
        self._last = PendingCall(self, scope, method, request, timeout, ())
        return self._last

    async def _unary(self, scope: str, method: Any, request: Any, timeout: float | None) -> Any:
        self._check_open()
        metadata = self._metadata(scope)
        timeout = timeout or self.timeout
        try:
            return await method(request, metadata=metadata, timeout=timeout, wait_for_ready=self.wait_for_ready)
        except grpc.RpcError as error:
            raise self._failure(error, timeout) from None
        except grpc.aio.UsageError:
            if self._closed:  # closed while this call was being made
                raise closed_error() from None
            raise
        except asyncio.CancelledError:
            if self._cancelled_by_close():
                raise _ended_by_close() from None
            raise

    async def _stream(  # type: ignore[override]
        self, scope: str, method: Callable[..., Any], request: Any, timeout: float | None = None
    ) -> AsyncIterator[Any]:
        self._check_open()
        try:
            call = method(request, metadata=self._metadata(scope), timeout=timeout,
                          wait_for_ready=self.wait_for_ready)
        except grpc.aio.UsageError:
            if self._closed:
                raise closed_error() from None
            raise
        try:
            async for message in call:
                yield message
        except grpc.RpcError as error:
            raise self._closing_failure(error, timeout) from None
        except asyncio.CancelledError:
            if self._cancelled_by_close():
                raise _ended_by_close() from None
            raise
        finally:
            call.cancel()  # the caller stopped early: end the stream on the server too

    def _cancelled_by_close(self) -> bool:
        """Whether a call's CancelledError is close() closing the channel under it (grpc.aio
        cancels the calls in flight), not the caller's task being cancelled."""
        task = asyncio.current_task()
        return self._closed and task is not None and not task.cancelling()

    @staticmethod
    async def _pages(fetch: Callable[[str], Any], field: str) -> AsyncIterator[Any]:  # type: ignore[override]
        token = ""
        while True:
            try:
                page = await fetch(token)
            except UnicodeEncodeError as error:  # a request built in the caller's lambda
                raise unencodable(error) from None
            for item in getattr(page, field):
                yield item
            token = page.next_page_token
            if not token:
                return

    # -- the tracking queue: its thread sends over the blocking channel ------------------------

    def _send_body(self, body: bytes) -> ingest_pb2.BatchJsonResponse:
        try:
            answer: ingest_pb2.BatchJsonResponse = self._queue_ingest.BatchJson(
                ingest_pb2.BatchJsonRequest(body=body),
                metadata=self._metadata("write"),
                timeout=self.timeout,
                wait_for_ready=self.wait_for_ready,
            )
        except grpc.RpcError as error:
            raise self._failure(error, self.timeout) from None
        return answer

    async def send_batch(  # type: ignore[override]
        self, calls: Sequence[Mapping[str, Any]], *, context: Json | None = None, sent_at: str | None = None
    ) -> ingest_pb2.BatchJsonResponse:
        """Sends calls (tracking-API JSON shape) now, in one `BatchJson` call, bypassing the
        queue; returns a result per call (accepted, duplicate or rejected with its reason)."""
        body: dict[str, Any] = {"batch": [messages.identified(c) for c in calls]}
        if context:
            body["context"] = dict(context)
        if sent_at:
            body["sentAt"] = sent_at
        encoded = encode_batch(body)
        reply: ingest_pb2.BatchJsonResponse = await self._unary(
            "write", self.ingest_stub.BatchJson, ingest_pb2.BatchJsonRequest(body=encoded), None
        )
        return reply

    async def stream_calls(  # type: ignore[override]
        self, calls: Iterable[Mapping[str, Any]]
    ) -> ingest_pb2.StreamCallsResponse:
        """As `Client.stream_calls`: a call that cannot be encoded raises its `InvalidArgument`
        (grpc.aio would cancel the call, raising `asyncio.CancelledError` here)."""
        requests = StreamRequests(calls)
        try:
            reply: ingest_pb2.StreamCallsResponse = await self._unary(
                "write", self.ingest_stub.StreamCalls, requests, self._long_timeout(3600))
        except (AudiencesError, asyncio.CancelledError):
            requests.raise_failure()  # what ended the requests, else the error as it was
            raise
        return reply

    async def flush(self, timeout: float | None = None) -> bool:  # type: ignore[override]
        """Waits until every queued call is settled; True when that happened within `timeout`."""
        return await asyncio.to_thread(super().flush, timeout)

    async def close(self, timeout: float | None = None) -> bool:  # type: ignore[override]
        """Flushes the queue, stops its thread and closes both channels."""
        settled = await asyncio.to_thread(super().close, timeout)
        await self.aio_channel.close()
        return settled

    # -- methods that make several calls or read a reply before returning ----------------------

    async def get_traits(  # type: ignore[override]
        self, profile: str, *, collection: Any = "users", trait_class: str | None = None
    ) -> dict[str, Any]:
        """Every trait of a profile as a plain dict: custom, computed and audience traits."""
        pages = self._pages(
            lambda token: self.list_traits(
                profile, collection=collection, trait_class=trait_class, page_size=200, page_token=token
            ),
            "traits",
        )
        return {t.key: trait_value(t) async for t in pages}

    async def wait_until_live(  # type: ignore[override]
        self, *, timeout: float = 300, tick: bool = True
    ) -> list[admin_pb2.Audience | admin_pb2.ComputedTrait]:
        """Waits until no audience or computed trait is BACKFILLING; returns them all."""
        me: Any = self  # Client's methods, typed as Client's, are coroutines and async iterators here
        deadline = time.monotonic() + timeout
        while True:
            if tick:
                await me.run_tick(until_idle=True)
            found = [c async for c in me.iter_audiences()] + [c async for c in me.iter_computed_traits()]
            waiting = [c.key for c in found if c.status == admin_pb2.COMPUTATION_STATUS_BACKFILLING]
            if not waiting:
                return found
            if time.monotonic() > deadline:
                raise AudiencesError(
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    f"still backfilling after {timeout:g}s: {', '.join(waiting)}",
                    reason="BACKFILL_TIMEOUT",
                    metadata={"keys": ",".join(waiting)},
                )
            await asyncio.sleep(0.2)

    async def rollback_definition(  # type: ignore[override]
        self, key: str, version: int, *, collection: Any = "users"
    ) -> admin_pb2.Audience | admin_pb2.ComputedTrait:
        """Updates the definition to an older version's text and options (a new version); a
        version with the current text and options changes nothing and returns the definition as it
        stands (as `Client.rollback_definition`)."""
        if not 1 <= version <= MAX_VERSION:
            raise InvalidArgument(f"`version` must be from 1 to {MAX_VERSION:,}", "VERSION_INVALID")
        me: Any = self
        old = await me.get_definition_version(key, version, collection=collection)
        audience = old.computation.kind == common_pb2.COMPUTATION_KIND_AUDIENCE
        if same_definition(old, await me.get_definition_version(key, 0, collection=collection)):
            current: admin_pb2.Audience | admin_pb2.ComputedTrait = await me._saved(key, old.computation.kind,
                                                                                      collection)
            return current
        update = me.update_audience if audience else me.update_computed_trait
        result: admin_pb2.Audience | admin_pb2.ComputedTrait = await update(
            key, collection=collection, definition=old.definition, options=old.options)
        return result

    async def diff_definition(  # type: ignore[override]
        self, key: str, definition: str, *, kind: Any = "audience", collection: Any = "users", sample_size: int = 0,
        include_anonymous_users: bool | None = None, include_historical_data: bool | None = None,
        backfill_days: int | None = None,
    ) -> admin_pb2.DefinitionDiff:
        """As `Client.diff_definition`: with edited options, the saved definition is read first."""
        me: Any = self
        edited = edited_options(include_anonymous_users, include_historical_data, backfill_days)
        saved = (await me._saved(key, kind_value(kind), collection)).options if edited else None
        request = diff_request(key, definition, kind, collection, sample_size, edited, saved)
        found: admin_pb2.DefinitionDiff = await me._call(
            "admin", admin_pb2.PreviewDefinitionResponse, me.admin_stub.PreviewDefinition, request).diff
        return found

    async def export_audience(  # type: ignore[override]
        self,
        key: str,
        *,
        collection: Any = "users",
        external_id_types: Sequence[str] = (),
        include_traits: Sequence[str] = (),
        identifier_selection: str = "all",
    ) -> AsyncIterator[bytes]:
        """An audience's members as CSV chunks (the header row first), from one snapshot, within
        the client's timeout as `Client.export_audience`."""
        request = sync_pb2.ExportAudienceRequest(
            key=key,
            collection=collection_value(collection),
            external_id_types=list(external_id_types),
            include_traits=list(include_traits),
            identifier_selection=selection_value(identifier_selection),
        )
        async for chunk in self._stream("admin", self.sync_stub.ExportAudience, request,
                                        self._long_timeout(EXPORT_TIMEOUT)):
            yield chunk.csv_data

    async def export_audience_to(self, key: str, out: IO[bytes], **options: Any) -> int:  # type: ignore[override]
        """Writes an audience's CSV export to a binary file; returns the bytes written."""
        written = 0
        async for chunk in self.export_audience(key, **options):
            written += out.write(chunk)
        return written


def _ended_by_close() -> AudiencesError:
    """What a call in flight when `close()` closed the channel raises, as in `Client`."""
    return AudiencesError(grpc.StatusCode.CANCELLED, "the client was closed (Channel closed)", reason="CLIENT_CLOSED")


def _as_coroutine(method: Callable[..., Any]) -> Callable[..., Any]:
    """`Client`'s method as AsyncClient's: the same arguments, its pending call awaited (or,
    for a method that returns nothing, the call it made), iterators returned as they are."""

    @functools.wraps(method)
    def run(self: AsyncClient, *args: Any, **kwargs: Any) -> Any:
        self._last = None
        result = method(self, *args, **kwargs)
        if hasattr(result, "__aiter__"):
            return result
        made = result if isinstance(result, PendingCall) else self._last
        return _settle(made, result)

    return run


async def _settle(made: PendingCall | None, result: Any) -> Any:
    if made is None:
        return result
    answer = await made
    return answer if result is made else None


# Client's own methods that call an RPC; the rest of Client's own (track, enqueue, …) queue.
_CLIENT_RPC_METHODS = ("send", "send_typed_batch")


def _wrap_client_methods() -> None:
    """Makes every public RPC method AsyncClient inherits from Client a coroutine."""
    own = set(vars(AsyncClient))
    for klass in Client.__mro__:
        if klass is object or not klass.__module__.startswith("audiences."):
            continue
        for name, member in vars(klass).items():
            if name.startswith("_") or name in own or not inspect.isfunction(member):
                continue
            if klass is Client and name not in _CLIENT_RPC_METHODS:
                continue
            setattr(AsyncClient, name, _as_coroutine(member))
            own.add(name)


_wrap_client_methods()
