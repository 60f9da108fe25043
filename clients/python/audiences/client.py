"""`audiences.Client`: tracking calls through a background batching queue, and every other RPC
as a plain method returning the generated message.

    import audiences

    client = audiences.Client()  # address and tokens from the environment or var/credentials.json
    client.identify(user_id="ada", traits={"email": "ada@example.com", "plan": "pro"})
    client.track(user_id="ada", event="Order Completed", properties={"revenue": 120})
    client.flush()
    client.create_audience("buyers", "event('Order Completed').within(30 days).count() >= 1")
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import grpc

from audiences import messages
from audiences._admin import AdminMethods
from audiences._base import DEFAULT_TIMEOUT, tls_credentials
from audiences._insight import InsightMethods
from audiences._operator import OperatorMethods
from audiences._profiles import ProfileMethods
from audiences._sync import SyncMethods
from audiences.batching import Batcher, BatchStats, OverflowPolicy, Undelivered, check_options, encode, encode_batch
from audiences.config import resolve
from audiences.errors import AudiencesError
from audiences.messages import Json, Time
from audiences.v1 import ingest_pb2, tracking_pb2

__all__ = ["Client"]

# How long close() waits, after giving up, for the senders to report the batches they held.
_REPORT_GRACE = 2.0
_STARTING = threading.Lock()

_UNARY = {
    tracking_pb2.Track: ("Track", ingest_pb2.TrackRequest, "track"),
    tracking_pb2.Identify: ("Identify", ingest_pb2.IdentifyRequest, "identify"),
    tracking_pb2.Page: ("Page", ingest_pb2.PageRequest, "page"),
    tracking_pb2.Screen: ("Screen", ingest_pb2.ScreenRequest, "screen"),
    tracking_pb2.Group: ("Group", ingest_pb2.GroupRequest, "group"),
    tracking_pb2.Alias: ("Alias", ingest_pb2.AliasRequest, "alias"),
}


class Client(AdminMethods, InsightMethods, ProfileMethods, SyncMethods, OperatorMethods):
    """A connection to an Audiences server.

    Tracking calls (`track`, `identify`, `page`, `screen`, `group`, `alias`) are queued and sent
    in batches by a background thread (see `audiences.batching` for the queue's policy); call
    `flush()` to wait for them and `close()` at the end (also done at interpreter exit).
    Everything else is a blocking call that returns the generated protobuf message (from
    `audiences.v1`) or raises `AudiencesError`.
    """

    def __init__(
        self,
        address: str | None = None,
        token: str | Mapping[str, str] | None = None,
        *,
        write_token: str | None = None,
        read_token: str | None = None,
        admin_token: str | None = None,
        operator_token: str | None = None,
        credentials_file: str | os.PathLike[str] | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        channel_credentials: grpc.ChannelCredentials | None = None,
        tls_ca_file: str | os.PathLike[str] | None = None,
        tls_cert_file: str | os.PathLike[str] | None = None,
        tls_key_file: str | os.PathLike[str] | None = None,
        batch_size: int = 500,
        flush_interval: float = 0.5,
        max_queue_size: int = 10_000,
        on_overflow: OverflowPolicy = "block",
        max_retries: int = 6,
        retry_backoff: float = 0.2,
        max_retry_backoff: float = 5.0,
        send_threads: int = 1,
        on_error: Callable[[Undelivered], None] | None = None,
        wait_for_ready: bool = False,
    ) -> None:
        """Connects (lazily: nothing is sent until the first call).

        Args:
            address: `host:port`; default `AUDIENCES_ADDRESS`, else `127.0.0.1:50051`.
            token: One token for every scope, or a mapping scope → token (`write`, `read`, `admin`,
                `operator`).
            write_token: The token for tracking calls; wins over `token`.
            read_token: The token for profile reads; wins over `token`.
            admin_token: The token for audiences, traits and destinations; wins over `token`.
            operator_token: The token for spaces, tokens and profile deletions; wins over `token`.
            credentials_file: The `credentials.json` the server wrote on first start; tokens
                not given otherwise are read from it (default `AUDIENCES_CREDENTIALS_FILE`, else
                `var/credentials.json`). One that cannot be read or parsed gives no tokens; when it
                was named (here or in the environment), or is the default file and is there, the
                TOKEN_MISSING of a method that then has no token says why (`credentials_problem`).
            timeout: Seconds each blocking call may take, above 0; None for no limit. Left out, it
                is 30, and `run_tick` may take 600 (a tick until idle can be long); given, it
                applies to `run_tick` too.
            channel_credentials: TLS credentials; None for a plain-text channel (unless a `tls_*`
                file is given).
            tls_ca_file: Connect with TLS, trusting the CA certificates in this PEM file (the
                server's own CA); default `AUDIENCES_TLS_CA_FILE`.
            tls_cert_file: With `tls_key_file`, the client certificate for a server that asks for
                one (mutual TLS); default `AUDIENCES_TLS_CERT_FILE`.
            tls_key_file: The private key of `tls_cert_file`; default `AUDIENCES_TLS_KEY_FILE`.
                The TLS files are read here.
            batch_size: The most tracking calls per batch.
            flush_interval: The longest, in seconds, a tracking call waits for its batch to fill.
            max_queue_size: The most tracking calls held in memory.
            on_overflow: When the queue is full: `block` (wait for room), `drop_newest` (drop the
                call, count it, report it to `on_error`) or `raise` (`QueueFull`).
            max_retries: Retries of a batch that failed with UNAVAILABLE (or another transient code),
                after waits of `retry_backoff` doubled at each retry, at most `max_retry_backoff`,
                each shortened by a random 0 to 50 %. With the defaults a batch rides out about 6
                to 11 s of downtime (a server restart may take longer): raise `max_retries` (each
                one more adds up to `max_retry_backoff`) to wait longer before the calls go to
                `on_error`.
            retry_backoff: The first wait before a retry, in seconds.
            max_retry_backoff: The longest wait between two tries, in seconds.
            send_threads: Background threads sending batches concurrently.
            on_error: Called with each tracking call the server did not store, or that `close()`
                gave up on (reason `CLIENT_CLOSED`); default logs it. It runs in a sender thread;
                an exception it raises is logged and the queue goes on.
            wait_for_ready: Calls wait for the server to be reachable (until their timeout)
                instead of failing at once with UNAVAILABLE. Either way the idempotent reads
                (Get*, List*, Validate*, Preview*) are retried on UNAVAILABLE by the channel's
                service config, with backoff.

        Raises:
            InvalidArgument: Nothing is sent yet, but what can be checked now is: a TLS file that
                cannot be read, is not PEM, holds no certificate (or key) a TLS library can load, or
                a client key that is not the certificate's (`TLS_FILE_UNREADABLE`), an address whose
                port is not 1 to 65535 (`ADDRESS_INVALID`), a timeout that is not a positive number
                of seconds (`TIMEOUT_INVALID`), a queue option out of range (`QUEUE_OPTION_INVALID`),
                a client certificate without its key or the reverse (`TLS_FILE_UNREADABLE`). A malformed token
                (`TOKEN_MALFORMED`) is refused by the first method that needs it, before calling.
        """
        resolved = resolve(
            address,
            token,
            write_token=write_token,
            read_token=read_token,
            admin_token=admin_token,
            operator_token=operator_token,
            credentials_file=credentials_file,
        )
        tls_files = (
            tls_ca_file or os.environ.get("AUDIENCES_TLS_CA_FILE") or None,
            tls_cert_file or os.environ.get("AUDIENCES_TLS_CERT_FILE") or None,
            tls_key_file or os.environ.get("AUDIENCES_TLS_KEY_FILE") or None,
        )
        if channel_credentials is None and any(tls_files):
            channel_credentials = tls_credentials(*tls_files)
        super().__init__(
            resolved.address,
            resolved.tokens,
            timeout=timeout,
            channel_credentials=channel_credentials,
            wait_for_ready=wait_for_ready,
            credentials_problem=resolved.credentials_problem,
        )
        check_options(on_overflow, batch_size, max_queue_size, max_retries, retry_backoff, max_retry_backoff,
                      send_threads)
        self._batcher_options: dict[str, Any] = {
            "batch_size": batch_size,
            "flush_interval": flush_interval,
            "max_queue_size": max_queue_size,
            "on_overflow": on_overflow,
            "max_retries": max_retries,
            "backoff": retry_backoff,
            "max_backoff": max_retry_backoff,
            "threads": send_threads,
            "on_error": on_error,
        }
        self._batcher: Batcher | None = None
        self._closed = False

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- tracking calls, queued -------------------------------------------------------------

    def track(
        self,
        user_id: str | None = None,
        event: str | None = None,
        properties: Json | None = None,
        context: Json | None = None,
        timestamp: Time = None,
        anonymous_id: str | None = None,
        integrations: Json | None = None,
        message_id: str | None = None,
    ) -> str:
        """Queues a track call; returns its `messageId`."""
        return self.enqueue(
            messages.track(user_id, event, properties, context, timestamp, anonymous_id, integrations, message_id)
        )

    def identify(
        self,
        user_id: str | None = None,
        traits: Json | None = None,
        context: Json | None = None,
        timestamp: Time = None,
        anonymous_id: str | None = None,
        integrations: Json | None = None,
        message_id: str | None = None,
    ) -> str:
        """Queues an identify call; returns its `messageId`."""
        return self.enqueue(
            messages.identify(user_id, traits, context, timestamp, anonymous_id, integrations, message_id)
        )

    def group(
        self,
        user_id: str | None = None,
        group_id: str | None = None,
        traits: Json | None = None,
        context: Json | None = None,
        timestamp: Time = None,
        anonymous_id: str | None = None,
        integrations: Json | None = None,
        message_id: str | None = None,
    ) -> str:
        """Queues a group call (links the user to account `group_id`); returns its `messageId`."""
        return self.enqueue(
            messages.group(user_id, group_id, traits, context, timestamp, anonymous_id, integrations, message_id)
        )

    def alias(
        self,
        previous_id: str | None = None,
        user_id: str | None = None,
        context: Json | None = None,
        timestamp: Time = None,
        integrations: Json | None = None,
        message_id: str | None = None,
    ) -> str:
        """Queues an alias call; returns its `messageId`."""
        return self.enqueue(messages.alias(previous_id, user_id, context, timestamp, integrations, message_id))

    def page(
        self,
        user_id: str | None = None,
        category: str | None = None,
        name: str | None = None,
        properties: Json | None = None,
        context: Json | None = None,
        timestamp: Time = None,
        anonymous_id: str | None = None,
        integrations: Json | None = None,
        message_id: str | None = None,
    ) -> str:
        """Queues a page call (the event `Page Viewed`); returns its `messageId`."""
        return self.enqueue(
            messages.page(
                user_id, category, name, properties, context, timestamp, anonymous_id, integrations, message_id
            )
        )

    def screen(
        self,
        user_id: str | None = None,
        category: str | None = None,
        name: str | None = None,
        properties: Json | None = None,
        context: Json | None = None,
        timestamp: Time = None,
        anonymous_id: str | None = None,
        integrations: Json | None = None,
        message_id: str | None = None,
    ) -> str:
        """Queues a screen call (the event `Screen Viewed`); returns its `messageId`."""
        return self.enqueue(
            messages.screen(
                user_id, category, name, properties, context, timestamp, anonymous_id, integrations, message_id
            )
        )

    def enqueue(self, message: Mapping[str, Any]) -> str:
        """Queues a call already in the tracking API's JSON shape; returns its `messageId`
        (empty when it was dropped on overflow). A call without `messageId` (or with an empty
        one) gets one, which its retries keep."""
        call = messages.identified(message)
        return str(call["messageId"]) if self._queue().put(call) else ""

    def flush(self, timeout: float | None = None) -> bool:
        """Waits until every call queued before this one is settled (stored, rejected or given
        up); True when that happened within `timeout`. Calls other threads queue meanwhile are
        sent too, but not waited for."""
        return self._batcher.flush(timeout) if self._batcher else True

    def close(self, timeout: float | None = None) -> bool:
        """Stops accepting tracking calls (later ones raise CLIENT_CLOSED), sends what is queued,
        stops the queue's threads and closes the channel. Run at interpreter exit too.

        Returns:
            True when every queued call was settled within `timeout`. Calls still unsettled
            then are given up and passed to `on_error` with the reason `CLIENT_CLOSED` (a batch
            in flight at that moment is cancelled with the channel and reported so too).
        """
        settled = self._batcher.close(timeout) if self._batcher else True
        if not self._closed:
            self._closed = True
            atexit.unregister(self._close_at_exit)
            self.channel.close()
        if self._batcher is not None and not settled:
            self._batcher.join(_REPORT_GRACE)  # let the batches cancelled with the channel be reported
        return settled

    def _close_at_exit(self) -> None:
        """The close() run at interpreter exit (a plain function, also for AsyncClient, whose
        close() is a coroutine no one would await there)."""
        Client.close(self)

    @property
    def stats(self) -> BatchStats:
        """Counts of the queue: queued, accepted, duplicate, rejected, failed, dropped, …"""
        return self._batcher.stats if self._batcher else BatchStats()

    def _queue(self) -> Batcher:
        if self._closed:
            raise AudiencesError(grpc.StatusCode.FAILED_PRECONDITION, "the client is closed", reason="CLIENT_CLOSED")
        batcher = self._batcher
        if batcher is None:
            with _STARTING:  # threads tracking at once start one queue, not one each
                if self._batcher is None:
                    self._batcher = Batcher(self._send_body, **self._batcher_options)
                    atexit.register(self._close_at_exit)
                batcher = self._batcher
        return batcher

    def _send_body(self, body: bytes) -> ingest_pb2.BatchJsonResponse:
        return self._call(
            "write", ingest_pb2.BatchJsonResponse, self.ingest_stub.BatchJson, ingest_pb2.BatchJsonRequest(body=body)
        )

    # -- tracking calls, sent now -----------------------------------------------------------

    def send_batch(
        self, calls: Sequence[Mapping[str, Any]], *, context: Json | None = None, sent_at: str | None = None
    ) -> ingest_pb2.BatchJsonResponse:
        """Sends calls (tracking-API JSON shape) now, in one `BatchJson` call, bypassing the
        queue; returns a result per call (accepted, duplicate or rejected with its reason). A
        call without `messageId` is stored under a new id each time it is sent: give calls ids
        of their own to send them again safely after a failure."""
        body: dict[str, Any] = {"batch": [messages.identified(c) for c in calls]}
        if context:
            body["context"] = dict(context)
        if sent_at:
            body["sentAt"] = sent_at
        return self._send_body(encode_batch(body))

    def send(
        self,
        call: tracking_pb2.Track
        | tracking_pb2.Identify
        | tracking_pb2.Page
        | tracking_pb2.Screen
        | tracking_pb2.Group
        | tracking_pb2.Alias,
    ) -> Any:
        """Sends one typed call with its unary RPC (`Track`, `Identify`, …); returns the reply
        (`message_id`, `status`). An invalid call raises AudiencesError INVALID_ARGUMENT."""
        method, request_type, field = _UNARY[type(call)]
        return self._call("write", Any, getattr(self.ingest_stub, method), request_type(**{field: call}))

    def send_typed_batch(self, calls: Iterable[tracking_pb2.TrackingCall]) -> ingest_pb2.BatchResponse:
        """Sends typed calls with the `Batch` RPC; returns a result per call."""
        return self._call(
            "write", ingest_pb2.BatchResponse, self.ingest_stub.Batch, ingest_pb2.BatchRequest(batch=list(calls))
        )

    def stream_calls(self, calls: Iterable[Mapping[str, Any]]) -> ingest_pb2.StreamCallsResponse:
        """Sends any number of calls (tracking-API JSON shape) over one `StreamCalls` stream.

        The whole stream is one call: it may take the client's `timeout` when one was chosen
        (None: no limit), else an hour, as long as `calls` keeps coming. A stream that failed
        midway may have stored part of the calls: sent again, calls with ids of their own are
        stored once; a call without `messageId` is stored under a new id each time it is sent.

        Raises:
            InvalidArgument: a call the client cannot encode (`VALUE_NOT_JSON`, `MESSAGE_TOO_LARGE`,
                `STRING_NOT_ENCODABLE`, as `track()` raises), which ends the stream; an exception
                raised by `calls` itself is raised as it is. (gRPC reads the requests on a thread of
                its own and would report either as UNKNOWN "Exception iterating requests!".)
        """
        requests = StreamRequests(calls)
        try:
            return self._call("write", ingest_pb2.StreamCallsResponse, self.ingest_stub.StreamCalls, requests,
                              timeout=self._long_timeout(3600))
        except AudiencesError:
            requests.raise_failure()
            raise


class StreamRequests:
    """The `StreamCallsRequest`s of calls, each encoded as gRPC reads it, keeping the exception that
    ended them (a call that cannot be encoded, or the caller's iterator failing) so that the method
    raises that one rather than gRPC's UNKNOWN "Exception iterating requests!" (or, on `grpc.aio`,
    a cancellation)."""

    def __init__(self, calls: Iterable[Mapping[str, Any]]) -> None:
        self._calls = iter(calls)
        self.failure: BaseException | None = None

    def __iter__(self) -> StreamRequests:
        return self

    def __next__(self) -> ingest_pb2.StreamCallsRequest:
        try:
            call = messages.identified(next(self._calls))
            return ingest_pb2.StreamCallsRequest(call=tracking_pb2.TrackingCall(json=encode(call)))
        except StopIteration:
            raise
        except Exception as error:
            self.failure = error
            raise

    def raise_failure(self) -> None:
        """Raises the exception that ended the requests, if one did."""
        if self.failure is not None:
            raise self.failure from None
