"""Reads across shards (docs/scaling.md, "Reads across shards").

Each shard may serve a gRPC endpoint (`cluster shard --listen`): the ordinary ProfilesService on
its own file, the definitions' Get/List RPCs of AudienceAdminService, which report the shard's own
status and size of each definition, and SyncService's connections, change feeds and dead letters
(a redrive is the one RPC there that writes, to the shard's own delivery queue). A front given
the shards' addresses (`cluster front --shard`) answers from them:

- a profile read goes to every shard at once, and the one that owns the profile answers (the
  others find no such profile: a shard's reference rows of other shards' profiles never answer);
  the HTTP Profile API reads the same way (`ShardProfileReads`, the front's `ProfileSource`);
- an account's links are held by its users' shards: every shard lists its own part
  (`ShardService.ListAccountLinks`) and the front merges them in one node's order;
- a definition's status and size are those of every shard combined: the size summed, the status
  LIVE only when every shard has it LIVE;
- a connection's delivery status is summed over the shards, and their change feeds and dead letters
  are merged (cluster/feeds.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import heapq
import json
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from typing import Any

import grpc
from audiences.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    cluster_pb2,
    cluster_pb2_grpc,
    common_pb2,
    profiles_pb2,
    profiles_pb2_grpc,
    sync_pb2,
    sync_pb2_grpc,
)
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc import aio
from grpc_status import rpc_status

from audiences_server import errors
from audiences_server.api.computations import COLLECTION_ENUM, COLLECTIONS, STATUS, timestamp
from audiences_server.api.context import space_id
from audiences_server.api.dispatch import generic_only
from audiences_server.api.interceptor import RequestInterceptor
from audiences_server.api.profiles import (
    DESCENDING,
    EVENT_TYPES,
    TRAIT_CLASS_ENUM,
    TRAIT_CLASSES,
    ProfilesServicer,
    link_message,
)
from audiences_server.api.sync import PHASE_ENUM, SyncServicer, computation_ref
from audiences_server.core.identity import ExternalId
from audiences_server.engine.engine import DEFAULT_SPACE, Engine
from audiences_server.engine.page_tokens import PageTokens, page_size
from audiences_server.engine.profile_reads import DEFAULT_PAGE, MAX_PAGE, EventFilter, Page, TraitItem
from audiences_server.engine.sync.service import ConnectionView
from audiences_server.store import profile_reads as store
from audiences_server.store.evaluation import ComputationRow
from audiences_server.store.spaces import Grant

_PROFILES = "/audiences.v1.ProfilesService/"
_ADMIN = "/audiences.v1.AudienceAdminService/"
_SHARD_SERVICE = cluster_pb2.DESCRIPTOR.services_by_name["ShardService"].full_name
# A shard's endpoint: profile reads (a user's links included: a shard holds a link on the user's
# side, with the account as a reference row without identifiers), an account's links that its
# users on this shard hold, and its definitions' own status.
SHARD_SERVED = frozenset({
    *(_PROFILES + name for name in ("ListTraits", "ListEvents", "ListExternalIds", "ListLinks", "GetMetadata",
                                    "ListAudienceMemberships")),
    f"/{_SHARD_SERVICE}/ListAccountLinks",
    *(_ADMIN + name for name in ("GetAudience", "ListAudiences", "GetComputedTrait", "ListComputedTraits")),
    # Each shard delivers its own profiles' changes: its connections' phase and delivery status,
    # its feeds' records and its dead letters (cluster/feeds.py); a redrive writes the shard's queue.
    *("/audiences.v1.SyncService/" + name for name in (
        "ListConnections", "ListChanges", "WatchChanges", "AckChanges", "ListDeadLetters", "RedriveDeadLetters")),
})
# The profile reads a front routes to the shards as they came (ListLinks goes through ShardProfileReads).
ROUTED = frozenset(name.rsplit("/", 1)[1] for name in SHARD_SERVED if name.startswith(_PROFILES))
_STATUS_NAME = {number: name for name, number in STATUS.items()}
_PHASE_NAME = {number: name for name, number in PHASE_ENUM.items()}
_EVENT_TYPE_NAME = {number: name for name, number in EVENT_TYPES.items()}
_ORDER: dict[bool, Any] = {descending: number for number, descending in DESCENDING.items() if number}
_CODES = {cls.code: cls for cls in (errors.InvalidArgument, errors.NotFound, errors.AlreadyExists, errors.Aborted,
                                    errors.FailedPrecondition, errors.Unauthenticated, errors.OutOfRange,
                                    errors.PermissionDenied, errors.ResourceExhausted, errors.Unavailable,
                                    errors.Unimplemented)}
# A shard that does not answer within this is unavailable; a call waits for a shard's endpoint
# to accept connections (it may be starting, or reconnecting) until then.
TIMEOUT_S = 10
# How soon a front tries a shard's endpoint again after failing to reach it: every second at
# most. gRPC's default backoff grows to two minutes, so after a shard was down a while, reads
# kept waiting their whole TIMEOUT_S (and failed) for up to half a minute after it was back.
RECONNECT = (("grpc.initial_reconnect_backoff_ms", 250), ("grpc.min_reconnect_backoff_ms", 250),
             ("grpc.max_reconnect_backoff_ms", 1_000))


def _shard_gate(method: str) -> None:
    if method not in SHARD_SERVED:
        raise errors.Unimplemented(f"{method.rsplit('/', 1)[-1]} is not served by a shard's read endpoint",
                                   reason="SHARD_READ_UNIMPLEMENTED")


class _Internal(RequestInterceptor):
    """One node's error mapping and call logging, without tokens: a shard's read endpoint listens
    on the cluster's private network, as the log does, and only fronts call it."""

    def authorize(self, metadata: Sequence[tuple[str, Any]], scope: str) -> Any:
        return Grant(1, DEFAULT_SPACE, scope, label="front")


class ShardServicer(cluster_pb2_grpc.ShardServiceServicer):
    """A shard's own reads for the fronts."""

    def __init__(self, engine: Engine) -> None:
        self._readers = engine.readers

    def ListAccountLinks(self, request: cluster_pb2.ListAccountLinksRequest,
                         context: grpc.ServicerContext) -> cluster_pb2.ListAccountLinksResponse:
        """The account's links held here, by (link time, user's profile number), after the cursor:
        the account's row here may be a reference row (its shard is another), which ordinary
        reads never answer from."""
        if request.limit < 1:
            raise errors.InvalidArgument("`limit` must be at least 1", reason="LIMIT_INVALID")
        after = [request.after.linked_ms, request.after.profile] if request.HasField("after") else None
        with self._readers.snapshot() as conn:
            row = conn.execute("SELECT profile_id FROM profiles WHERE space_id = ? AND collection = 'accounts'"
                               " AND public_id = ?", (space_id(), request.account_id)).fetchone()
            if row is None:
                return cluster_pb2.ListAccountLinksResponse()
            found = store.links_page(conn, int(row[0]), "accounts", after, request.limit)
            summaries = store.summaries(conn, [r["profile_id"] for r in found])
        return cluster_pb2.ListAccountLinksResponse(links=[
            cluster_pb2.AccountLink(cursor=cluster_pb2.LinkCursor(linked_ms=r["linked_ms"], profile=r["profile_id"]),
                                    link=link_message({**r, "summary": summaries[r["profile_id"]]}))
            for r in found])


async def serve_shard_reads(engine: Engine, listen: str) -> tuple[aio.Server, futures.ThreadPoolExecutor, int]:
    """Starts a shard's read endpoint on `listen` (host:port, port 0 for any); returns the server,
    its thread pool (shut down after the server stops) and the bound port."""
    from audiences_server.server import SERVICES, AdminServicer

    pool = futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="shard-read")
    scopes = {**SERVICES, _SHARD_SERVICE: "read"}
    server = aio.server(interceptors=[_Internal(engine.auth, scopes, pool, gate=_shard_gate)])
    generic_only(profiles_pb2_grpc.add_ProfilesServiceServicer_to_server, ProfilesServicer(engine), server)
    generic_only(cluster_pb2_grpc.add_ShardServiceServicer_to_server, ShardServicer(engine), server)
    generic_only(admin_pb2_grpc.add_AudienceAdminServiceServicer_to_server, AdminServicer(engine), server)
    generic_only(sync_pb2_grpc.add_SyncServiceServicer_to_server, SyncServicer(engine, pool), server)
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
        self._channels = [grpc.insecure_channel(address, options=RECONNECT) for address in addresses]
        self._profiles = [profiles_pb2_grpc.ProfilesServiceStub(c) for c in self._channels]
        self._admin = [admin_pb2_grpc.AudienceAdminServiceStub(c) for c in self._channels]
        self.sync = [sync_pb2_grpc.SyncServiceStub(c) for c in self._channels]
        self._shard = [cluster_pb2_grpc.ShardServiceStub(c) for c in self._channels]

    def profile(self, method: str, request: Message) -> Message:
        """A profile read answered by the shard that owns the profile: asked of every shard at
        once (one call per shard); the first answer wins, else a refusal other than
        PROFILE_NOT_FOUND, else NOT_FOUND. (ListLinks too, for a user: the user's shard holds
        its links; ShardProfileReads completes the accounts' summaries.)"""
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

    def account_links(self, account_id: str, after: Sequence[int] | None, limit: int) -> list[cluster_pb2.AccountLink]:
        """An account's first `limit` links after a (link time, user's profile number) cursor over
        every shard: each shard's own (its users' side), merged in one node's order.

        Raises:
            Unavailable: SHARD_UNAVAILABLE, a shard did not answer (a part of the links would be missing).
        """
        request = cluster_pb2.ListAccountLinksRequest(account_id=account_id, limit=limit)
        if after is not None:
            request.after.linked_ms, request.after.profile = after
        calls = [stub.ListAccountLinks.future(request, timeout=TIMEOUT_S, wait_for_ready=True) for stub in self._shard]
        parts = []
        for call in calls:
            try:
                parts.append(list(call.result().links))
            except grpc.RpcError as failure:
                raise errors.Unavailable(f"a shard did not list its links: {_as_error(failure).message}",
                                         reason="SHARD_UNAVAILABLE") from None
        merged = heapq.merge(*parts, key=lambda link: (link.cursor.linked_ms, link.cursor.profile))
        return list(merged)[:limit]

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



def _ref(collection: str, address: str) -> common_pb2.ProfileRef:
    return common_pb2.ProfileRef(collection=COLLECTION_ENUM[collection], id=address)


def _identifier(item: common_pb2.ExternalId) -> dict[str, Any]:
    """An identifier as ProfileReads' rows give it."""
    return {"id_type": item.type, "id_value": item.value, "added_ms": item.create_time.ToMilliseconds(),
            "message_id": item.first_message_id, "source_id": item.source_id}


def _link_row(link: profiles_pb2.ProfileLink) -> dict[str, Any]:
    """A link as ProfileReads' rows give it (the linked profile's summary, the link's time)."""
    summary = link.profile
    collection = "users" if summary.collection == COLLECTION_ENUM["users"] else "accounts"
    return {"linked_ms": link.create_time.ToMilliseconds(), "summary": {
        "public_id": summary.profile_id, "collection": collection,
        "identifiers": [_identifier(i) for i in summary.external_ids]}}


class ShardProfileReads:
    """A front's ProfileSource: ProfileReads' reads answered by the shards' read endpoints (the
    same ProfilesService calls a front forwards), their answers turned back into ProfileReads'
    rows, so that the HTTP Profile API and the gRPC ListLinks format them with one node's code.

    A page's token is the owning shard's token; an account's links, which every shard holds a
    part of, are paged with this front's own tokens (a cursor of link time and user's profile
    number, as one node's)."""

    def __init__(self, shards: ShardReads, tokens: PageTokens) -> None:
        self._shards = shards
        self._tokens = tokens

    def traits(self, space_id: int, collection: str, address: str, *, include: Sequence[str],
               trait_class: str | None, size: int, token: str) -> Page:
        answer: Any = self._shards.profile("ListTraits", profiles_pb2.ListTraitsRequest(
            profile=_ref(collection, address), include=include, trait_class=TRAIT_CLASS_ENUM.get(trait_class or "", 0),
            verbose=True, page_size=size, page_token=token))
        items = [TraitItem(t.key, json.loads(t.value_json), TRAIT_CLASSES[t.trait_class] or "", t.source_id,
                           t.update_time.ToMilliseconds()) for t in answer.traits]
        return Page(answer.profile_id, items, answer.next_page_token)

    def events(self, space_id: int, collection: str, address: str, wanted: EventFilter, size: int,
               token: str) -> Page:
        answer: Any = self._shards.profile("ListEvents", profiles_pb2.ListEventsRequest(
            profile=_ref(collection, address), start_time=timestamp(wanted.start), end_time=timestamp(wanted.end),
            include=wanted.include, exclude=wanted.exclude, sort_order=_ORDER[wanted.descending], page_size=size,
            page_token=token))
        rows = [{"message_id": e.message_id, "type": _EVENT_TYPE_NAME.get(e.type, ""), "event": e.event,
                 "user_id": e.user_id or None, "anonymous_id": e.anonymous_id or None,
                 "ts": e.event_time.ToMilliseconds(), "received_ms": e.receive_time.ToMilliseconds(),
                 "body": e.properties_json, "context": e.context_json, "source_id": e.source_id,
                 "external_ids": [(COLLECTIONS[i.collection], ExternalId(i.type, i.value))
                                  for i in e.external_ids]}
                for e in answer.events]
        return Page(answer.profile_id, rows, answer.next_page_token)

    def external_ids(self, space_id: int, collection: str, address: str, size: int, token: str,
                     types: Sequence[str] = ()) -> Page:
        answer: Any = self._shards.profile("ListExternalIds", profiles_pb2.ListExternalIdsRequest(
            profile=_ref(collection, address), page_size=size, page_token=token, include=types))
        return Page(answer.profile_id, [_identifier(i) for i in answer.external_ids], answer.next_page_token)

    def memberships(self, space_id: int, collection: str, address: str, size: int, token: str) -> Page:
        answer: Any = self._shards.profile("ListAudienceMemberships", profiles_pb2.ListAudienceMembershipsRequest(
            profile=_ref(collection, address), page_size=size, page_token=token))
        rows = [{"key": m.audience_key, "public_id": m.audience_id, "name": m.audience_name,
                 "updated_ms": m.enter_time.ToMilliseconds()} for m in answer.memberships]
        return Page(answer.profile_id, rows, answer.next_page_token)

    def metadata(self, space_id: int, collection: str, address: str) -> tuple[dict[str, Any], list[str]]:
        answer: Any = self._shards.profile("GetMetadata", profiles_pb2.GetMetadataRequest(
            profile=_ref(collection, address)))
        meta = answer.metadata

        def ms(name: str) -> int | None:
            return getattr(meta, name).ToMilliseconds() if meta.HasField(name) else None

        row = {"public_id": meta.profile_id, "collection": collection, "created_ms": ms("create_time"),
               "updated_ms": ms("update_time"), "first_message_ms": ms("first_message_time"),
               "last_message_ms": ms("last_message_time"), "first_message_id": meta.first_message_id,
               "first_source_id": meta.first_source_id, "last_message_id": meta.last_message_id,
               "last_source_id": meta.last_source_id}
        return row, list(meta.merged_profile_ids)

    def links(self, space_id: int, collection: str, address: str, size: int, token: str) -> Page:
        """A user's accounts (its shard's links, each account's identifiers from the account's
        shard) or an account's users (every shard's part, merged)."""
        if collection == "accounts":
            return self._account_links(space_id, address, size, token)

        def read(count: int) -> Any:
            return self._shards.profile("ListLinks", profiles_pb2.ListLinksRequest(
                profile=_ref(collection, address), page_size=count, page_token=token))

        answer = read(size)
        rows = [_link_row(link) for link in answer.links]
        for row in rows:
            # The user's shard holds the account as a reference row, without identifiers.
            summary = row["summary"]
            summary["identifiers"] = self._identifiers(space_id, "accounts", summary["public_id"],
                                                       summary["identifiers"])
        return Page(answer.profile_id, rows, answer.next_page_token, lambda count: read(count).next_page_token)

    def _identifiers(self, space_id: int, collection: str, public_id: str,
                     held: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Every identifier of a profile, from the shard that owns it (`held` if none does)."""
        found: list[dict[str, Any]] = []
        token = ""
        while True:
            try:
                page = self.external_ids(space_id, collection, public_id, MAX_PAGE, token)
            except errors.NotFound:
                return held
            found += page.items
            token = page.next_token
            if not token:
                return found

    def _account_links(self, space_id: int, address: str, size: int, token: str) -> Page:
        limit = page_size(size, DEFAULT_PAGE, MAX_PAGE)
        account, _merged = self.metadata(space_id, "accounts", address)  # the owning shard resolves the address
        scope = {"rpc": "account_links", "space": space_id, "profile": account["public_id"]}
        after = self._tokens.decode(token, scope)
        found = self._shards.account_links(account["public_id"], after, limit + 1)
        page = found[:limit]
        rows = [{**_link_row(link.link), "profile_id": link.cursor.profile} for link in page]

        def token_after(count: int) -> str:
            cursor = page[count - 1].cursor
            return self._tokens.encode([cursor.linked_ms, cursor.profile], scope)

        return Page(account["public_id"], rows, token_after(len(page)) if len(found) > limit else "", token_after)
