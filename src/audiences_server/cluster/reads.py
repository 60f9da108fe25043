"""Reads across shards (docs/scaling.md, "Reads across shards").

Each shard may serve a gRPC endpoint (`cluster shard --listen`): the ordinary ProfilesService on
its own file, the definitions' Get/List RPCs of AudienceAdminService, which report the shard's own
status and size of each definition, and SyncService's connections, change feeds and dead letters
(a redrive is the one RPC there that writes, to the shard's own delivery queue). A front given
the shards' addresses (`cluster front --shard`) answers from them:

- a profile read goes to every shard at once, and the one that owns the profile answers (the
  others find no such profile: a shard's reference rows of other shards' profiles never answer);
- a definition's status and size are those of every shard combined: the size summed, the status
  LIVE only when every shard has it LIVE;
- a connection's delivery status is summed over the shards, and their change feeds and dead letters
  are merged (cluster/feeds.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from typing import Any

import grpc
from audiences.v1 import admin_pb2, admin_pb2_grpc, profiles_pb2_grpc, sync_pb2, sync_pb2_grpc
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc import aio
from grpc_status import rpc_status

from audiences_server import errors
from audiences_server.api.computations import STATUS
from audiences_server.api.interceptor import RequestInterceptor
from audiences_server.api.profiles import ProfilesServicer
from audiences_server.api.sync import PHASE_ENUM, SyncServicer, computation_ref
from audiences_server.engine.engine import DEFAULT_SPACE, Engine
from audiences_server.engine.sync.service import ConnectionView
from audiences_server.store.evaluation import ComputationRow
from audiences_server.store.spaces import Grant

_PROFILES = "/audiences.v1.ProfilesService/"
_ADMIN = "/audiences.v1.AudienceAdminService/"
# A shard's endpoint: profile reads (links aside: a shard holds a link on the user's side only,
# with the account as a reference row without identifiers) and its definitions' own status.
SHARD_SERVED = frozenset({
    *(_PROFILES + name for name in ("ListTraits", "ListEvents", "ListExternalIds", "GetMetadata",
                                    "ListAudienceMemberships")),
    *(_ADMIN + name for name in ("GetAudience", "ListAudiences", "GetComputedTrait", "ListComputedTraits")),
    # Each shard delivers its own profiles' changes: its connections' phase and delivery status,
    # its feeds' records and its dead letters (cluster/feeds.py); a redrive writes the shard's queue.
    *("/audiences.v1.SyncService/" + name for name in (
        "ListConnections", "ListChanges", "WatchChanges", "ListDeadLetters", "RedriveDeadLetters")),
})
# The profile reads a front routes to the shards.
ROUTED = frozenset(name.rsplit("/", 1)[1] for name in SHARD_SERVED if name.startswith(_PROFILES))
_STATUS_NAME = {number: name for name, number in STATUS.items()}
_PHASE_NAME = {number: name for name, number in PHASE_ENUM.items()}
_CODES = {cls.code: cls for cls in (errors.InvalidArgument, errors.NotFound, errors.AlreadyExists,
                                    errors.FailedPrecondition, errors.Unauthenticated, errors.OutOfRange,
                                    errors.PermissionDenied, errors.ResourceExhausted, errors.Unavailable,
                                    errors.Unimplemented)}
# A shard that does not answer within this is unavailable; a call waits for a shard's endpoint
# to accept connections (it may be starting, or reconnecting) until then.
TIMEOUT_S = 10


def _shard_gate(method: str) -> None:
    if method not in SHARD_SERVED:
        raise errors.Unimplemented(f"{method.rsplit('/', 1)[-1]} is not served by a shard's read endpoint",
                                   reason="SHARD_READ_UNIMPLEMENTED")


class _Internal(RequestInterceptor):
    """One node's error mapping and call logging, without tokens: a shard's read endpoint listens
    on the cluster's private network, as the log does, and only fronts call it."""

    def authorize(self, metadata: list[tuple[str, str]], scope: str) -> Any:
        return Grant(1, DEFAULT_SPACE, scope, label="front")


async def serve_shard_reads(engine: Engine, listen: str) -> tuple[aio.Server, futures.ThreadPoolExecutor, int]:
    """Starts a shard's read endpoint on `listen` (host:port, port 0 for any); returns the server,
    its thread pool (shut down after the server stops) and the bound port."""
    from audiences_server.server import SERVICES, AdminServicer

    pool = futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="shard-read")
    server = aio.server(interceptors=[_Internal(engine.auth, SERVICES, pool, gate=_shard_gate)])
    profiles_pb2_grpc.add_ProfilesServiceServicer_to_server(ProfilesServicer(engine), server)
    admin_pb2_grpc.add_AudienceAdminServiceServicer_to_server(AdminServicer(engine), server)
    sync_pb2_grpc.add_SyncServiceServicer_to_server(SyncServicer(engine, pool), server)
    port = server.add_insecure_port(listen)
    await server.start()
    return server, pool, port


def _as_error(failure: grpc.RpcError) -> errors.AudiencesError:
    """A shard's refusal (of a unary call, or of a stream on an event loop) as this server's error:
    its code, message and reason (field violations are not carried over)."""
    called = isinstance(failure, grpc.Call | aio.AioRpcError)
    code = failure.code().name if called else "UNAVAILABLE"
    reason = None
    status = rpc_status.from_call(failure) if called else None
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason
    kind = _CODES.get(code)
    if kind is None:
        return errors.Unavailable(f"a shard failed the read: {code}", reason="SHARD_UNAVAILABLE")
    return kind(failure.details() if called else str(failure), reason=reason)


def _pages(call: Callable[..., Any], request: Callable[..., Message], what: str) -> Iterator[Any]:
    """Every page of one shard's List call, 1,000 items a page.

    Raises:
        Unavailable: SHARD_UNAVAILABLE, the shard did not answer.
    """
    token = ""
    while True:
        try:
            page = call(request(page_size=1000, page_token=token), timeout=TIMEOUT_S, wait_for_ready=True)
        except grpc.RpcError as failure:
            raise errors.Unavailable(f"a shard did not report its {what}: {_as_error(failure).message}",
                                     reason="SHARD_UNAVAILABLE") from None
        yield page
        token = page.next_page_token
        if not token:
            return


@dataclasses.dataclass(frozen=True)
class ShardStatus:
    """One shard's view of a definition."""

    status: str
    size: int
    done: int
    total: int
    last_computed_ms: int | None
    failure: str


class ShardReads:
    """A front's clients of the shards' read endpoints (one address per shard)."""

    def __init__(self, addresses: Sequence[str]) -> None:
        self.addresses = list(addresses)  # partition p's endpoint is the p-th
        self._channels = [grpc.insecure_channel(address) for address in addresses]
        self._profiles = [profiles_pb2_grpc.ProfilesServiceStub(c) for c in self._channels]
        self._admin = [admin_pb2_grpc.AudienceAdminServiceStub(c) for c in self._channels]
        self.sync = [sync_pb2_grpc.SyncServiceStub(c) for c in self._channels]

    def profile(self, method: str, request: Message) -> Message:
        """A profile read answered by the shard that owns the profile: asked of every shard at
        once (one call per shard); the first answer wins, else a refusal other than
        PROFILE_NOT_FOUND, else NOT_FOUND.

        Raises:
            Unimplemented: CLUSTER_LINKS_UNIMPLEMENTED for ListLinks (links live on the users' shards).
        """
        if method not in ROUTED:
            raise errors.Unimplemented(f"{method} is not served by a cluster's front yet: a shard holds a link on "
                                       "the user's side only", reason="CLUSTER_LINKS_UNIMPLEMENTED")
        calls = [getattr(stub, method).future(request, timeout=TIMEOUT_S, wait_for_ready=True)
                 for stub in self._profiles]
        answers: list[Message] = []
        refusals: list[errors.AudiencesError] = []
        for call in calls:
            try:
                answers.append(call.result())
            except grpc.RpcError as failure:
                refusals.append(_as_error(failure))
        if answers:
            return answers[0]
        for refusal in refusals:
            if refusal.code != "NOT_FOUND":
                raise refusal
        raise refusals[0]

    def statuses(self, kind: str) -> list[dict[tuple[str, str], ShardStatus]]:
        """Every shard's definitions of a kind, by (collection, key): one List call (a page of up
        to 1,000) per shard.

        Raises:
            Unavailable: SHARD_UNAVAILABLE, a shard did not answer.
        """
        method, request, field = (("ListAudiences", admin_pb2.ListAudiencesRequest, "audiences") if kind == "audience"
                                  else ("ListComputedTraits", admin_pb2.ListComputedTraitsRequest, "computed_traits"))
        found: list[dict[tuple[str, str], ShardStatus]] = []
        for stub in self._admin:
            rows: dict[tuple[str, str], ShardStatus] = {}
            for page in _pages(getattr(stub, method), request, "definitions"):
                for item in getattr(page, field):
                    collection = "users" if item.collection == 1 else "accounts"
                    last = item.last_compute_time.ToMilliseconds() if item.HasField("last_compute_time") else None
                    rows[(collection, item.key)] = ShardStatus(
                        _STATUS_NAME[item.status], item.size, item.backfill.profiles_done,
                        item.backfill.profiles_total, last, item.failure.message)
            found.append(rows)
        return found

    def combine(self, rows: list[ComputationRow]) -> list[ComputationRow]:
        """The front's rows with each definition's status and size over every shard: the size
        and backfill progress summed, the status DISABLED as the front says, else FAILED if a
        shard failed it, LIVE if every shard holds it LIVE, else BACKFILLING (a shard is still
        backfilling it, or has not read it from the log yet).

        Raises:
            Unavailable: SHARD_UNAVAILABLE, a shard did not answer.
        """
        shards: dict[str, list[dict[tuple[str, str], ShardStatus]]] = {}
        out = []
        for row in rows:
            if row.kind not in shards:
                shards[row.kind] = self.statuses(row.kind)
            held = [found[(row.collection, row.key)] for found in shards[row.kind] if (row.collection, row.key)
                    in found]
            failed = [s.failure for s in held if s.status == "FAILED"]
            if not row.enabled:
                status = "DISABLED"
            elif failed:
                status = "FAILED"
            elif len(held) == len(shards[row.kind]) and all(s.status == "LIVE" for s in held):
                status = "LIVE"
            else:
                status = "BACKFILLING"
            computed = [s.last_computed_ms for s in held if s.last_computed_ms is not None]
            out.append(dataclasses.replace(
                row, status=status, error=failed[0] if failed else row.error, size=sum(s.size for s in held),
                progress_done=sum(s.done for s in held), progress_total=sum(s.total for s in held),
                last_computed_ms=max(computed) if computed else None))
        return out

    def connections(self, views: list[ConnectionView]) -> list[ConnectionView]:
        """The front's connections with each one's phase and delivery status over every shard
        (each delivers its own profiles' changes): counts summed, the lag the largest, LIVE only
        when every shard holds the connection LIVE (else INITIAL_SYNC: a shard is still in its
        first sync, or has not read the connection from the log yet), the last error and the
        last delivery the latest of any shard. One ListConnections call (pages of 1,000) per shard.

        Raises:
            Unavailable: SHARD_UNAVAILABLE, a shard did not answer.
        """
        shards: list[dict[tuple[str, int, int, str], sync_pb2.Connection]] = []
        for stub in self.sync:
            found: dict[tuple[str, int, int, str], sync_pb2.Connection] = {}
            for page in _pages(stub.ListConnections, sync_pb2.ListConnectionsRequest, "connections"):
                for item in page.connections:
                    ref = item.computation
                    found[(item.destination_key, ref.kind, ref.collection, ref.key)] = item
            shards.append(found)
        return [self._combined(view, shards) for view in views]

    @staticmethod
    def _combined(view: ConnectionView, shards: list[dict[tuple[str, int, int, str], sync_pb2.Connection]]
                  ) -> ConnectionView:
        ref = computation_ref(view.computation)
        key = (view.destination.key, ref.kind, ref.collection, ref.key)
        held = [found[key] for found in shards if key in found]
        delivery = [item.delivery for item in held]
        live = len(held) == len(shards) and all(_PHASE_NAME[item.phase] == "LIVE" for item in held)
        errors_at = sorted((d.last_error_time.ToMilliseconds(), d.last_error) for d in delivery
                           if d.HasField("last_error_time"))
        delivered_at = [d.last_delivery_time.ToMilliseconds() for d in delivery if d.HasField("last_delivery_time")]
        row = dataclasses.replace(
            view.row, phase="LIVE" if live else "INITIAL_SYNC",
            delivered_count=sum(d.delivered_count for d in delivery),
            last_error=errors_at[-1][1] if errors_at else "", last_error_ms=errors_at[-1][0] if errors_at else None,
            last_delivery_ms=max(delivered_at) if delivered_at else None)
        status = {"pending": sum(d.pending_count for d in delivery), "delivered": row.delivered_count,
                  "retrying": sum(d.retrying_count for d in delivery),
                  "dead": sum(d.dead_letter_count for d in delivery),
                  "lag_ms": max((d.lag.ToMilliseconds() for d in delivery), default=0)}
        return dataclasses.replace(view, row=row, status=status)

    def close(self) -> None:
        for channel in self._channels:
            with contextlib.suppress(Exception):
                channel.close()

