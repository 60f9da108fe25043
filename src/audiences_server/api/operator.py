"""OperatorService: spaces, tokens, profile deletions and suppressions, for an `operator` token.

Every RPC runs on the engine's pool (plain methods). A request names a space by name; an empty
name means the calling token's own space.
"""

from __future__ import annotations

from typing import Any

from audiences.v1 import common_pb2, operator_pb2, operator_pb2_grpc

from audiences_server.api.computations import COLLECTION_ENUM, collection_of, time_ms, timestamp
from audiences_server.api.context import caller_label, space_id
from audiences_server.api.sync import duration
from audiences_server.engine.deletion import DEFAULT_TIMEOUT_MS
from audiences_server.engine.engine import MAX_TIMESTAMP_MS, Engine
from audiences_server.engine.page_tokens import page_size
from audiences_server.engine.retention import check_event_retention
from audiences_server.errors import FieldViolation, InvalidArgument
from audiences_server.store.deletions import DeletionRow
from audiences_server.store.spaces import Space
from audiences_server.store.suppressions import SuppressionRow
from audiences_server.store.tokens import TokenRow

SCOPE_OF: dict[int, str] = {
    operator_pb2.TOKEN_SCOPE_WRITE: "write", operator_pb2.TOKEN_SCOPE_READ: "read",
    operator_pb2.TOKEN_SCOPE_ADMIN: "admin", operator_pb2.TOKEN_SCOPE_OPERATOR: "operator",
}
SCOPE_ENUM: dict[str, Any] = {v: k for k, v in SCOPE_OF.items()}
DEFAULT_PAGE, MAX_PAGE = 50, 1000


def space_message(space: Space) -> operator_pb2.Space:
    """A space as the API shows it."""
    message = operator_pb2.Space(name=space.name, create_time=timestamp(space.created_ms))
    if space.event_retention_ms is not None:
        message.event_retention.CopyFrom(duration(space.event_retention_ms))
    return message


def token_message(row: TokenRow, now_ms: int) -> operator_pb2.Token:
    """A token as the API shows it: never its secret."""
    if row.revoked_ms is not None:
        state = operator_pb2.TOKEN_STATE_REVOKED
    elif row.expires_ms is not None and now_ms >= row.expires_ms:
        state = operator_pb2.TOKEN_STATE_EXPIRED
    else:
        state = operator_pb2.TOKEN_STATE_ACTIVE
    return operator_pb2.Token(
        token_id=row.public_id, space=row.space_name, scope=SCOPE_ENUM[row.scope], label=row.label,
        create_time=timestamp(row.created_ms), expire_time=timestamp(row.expires_ms),
        last_used_time=timestamp(row.last_used_ms), revoke_time=timestamp(row.revoked_ms), state=state)


def deletion_message(row: DeletionRow, space: str) -> operator_pb2.ProfileDeletion:
    """A profile deletion as the API shows it."""
    return operator_pb2.ProfileDeletion(
        deletion_id=row.public_id, space=space,
        profile=common_pb2.ProfileRef(collection=COLLECTION_ENUM[row.collection], id=row.address),
        profile_id=row.profile_public_id, suppress=row.suppress,
        state=operator_pb2.DELETION_STATE_COMPLETE if row.state == "COMPLETE" else operator_pb2.DELETION_STATE_PENDING,
        create_time=timestamp(row.created_ms), complete_time=timestamp(row.completed_ms),
        requested_by=row.requested_by, exits_recorded=row.exits_recorded, exits_undelivered=row.exits_undelivered,
        events_deleted=row.events_deleted, identifiers_suppressed=row.identifiers_suppressed,
        delivery_timeout=duration(row.timeout_ms))


def suppression_message(row: SuppressionRow) -> operator_pb2.Suppression:
    """A suppressed identifier as the API shows it."""
    return operator_pb2.Suppression(
        external_id=common_pb2.ExternalId(type=row.id_type, value=row.id_value,
                                          collection=COLLECTION_ENUM[row.collection]),
        create_time=timestamp(row.created_ms), deletion_id=row.deletion_public_id)


def _duration_ms(message: Any, field: str) -> int | None:
    if not message.HasField(field):
        return None
    value = getattr(message, field)
    if value.seconds < 0 or value.nanos < 0:
        raise InvalidArgument(f"`{field}` must not be negative", reason="DURATION_INVALID",
                              violations=[FieldViolation(field, "negative")])
    return int(value.ToMilliseconds())


class OperatorServicer(operator_pb2_grpc.OperatorServiceServicer):
    """OperatorService."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _space(self, name: str) -> Space:
        """The space a request names, or the caller's own."""
        if name:
            return self.engine.auth.space(name)
        return self.engine.auth.space_by_id(space_id())

    def _audit(self, space: int, action: str, target_type: str, target: str, **detail: Any) -> None:
        """Records an operator action in the audit log of the space it acted on."""
        self.engine.versions.record(space, caller_label(), action, target_type, target, detail)

    def _page(self, request: Any, scope: dict[str, Any]) -> tuple[Any, int]:
        return self.engine.page_tokens.decode(request.page_token, scope), page_size(request.page_size, DEFAULT_PAGE,
                                                                                    MAX_PAGE)

    # -- spaces --------------------------------------------------------------------------

    def CreateSpace(self, request: operator_pb2.CreateSpaceRequest, context: Any) -> operator_pb2.CreateSpaceResponse:
        retention = _duration_ms(request.space, "event_retention")
        # Checked before the space exists: a refused request creates nothing.
        check_event_retention(retention)
        space = self.engine.auth.create_space(request.space.name, self.engine.clock.now_ms())
        if retention is not None:
            space = self.engine.lifecycle.retention.set_event_retention(space.name, retention)
            self.engine.lifecycle.sweep()
        self._audit(space.space_id, "create", "space", space.name, event_retention_ms=retention)
        return operator_pb2.CreateSpaceResponse(space=space_message(space))

    def GetSpace(self, request: operator_pb2.GetSpaceRequest, context: Any) -> operator_pb2.GetSpaceResponse:
        return operator_pb2.GetSpaceResponse(space=space_message(self._space(request.name)))

    def ListSpaces(self, request: operator_pb2.ListSpacesRequest, context: Any) -> operator_pb2.ListSpacesResponse:
        scope = {"list": "spaces"}
        after, size = self._page(request, scope)
        found = self.engine.auth.list_spaces(after or 0, size + 1)
        token = self.engine.page_tokens.encode(found[size - 1].space_id, scope) if len(found) > size else ""
        return operator_pb2.ListSpacesResponse(spaces=[space_message(s) for s in found[:size]], next_page_token=token)

    def UpdateSpace(self, request: operator_pb2.UpdateSpaceRequest, context: Any) -> operator_pb2.UpdateSpaceResponse:
        paths = list(request.update_mask.paths) or [f.name for f, _ in request.space.ListFields() if f.name != "name"]
        unknown = sorted(set(paths) - {"event_retention"})
        if unknown:
            raise InvalidArgument(f"only `event_retention` can change, not {', '.join(unknown)}",
                                  reason="FIELD_NOT_UPDATABLE",
                                  violations=[FieldViolation("update_mask", f"`{p}` cannot change") for p in unknown])
        space = self._space(request.space.name)
        if paths:
            space = self.engine.lifecycle.retention.set_event_retention(
                space.name, _duration_ms(request.space, "event_retention"))
            self.engine.lifecycle.sweep()
            self._audit(space.space_id, "update", "space", space.name, event_retention_ms=space.event_retention_ms)
        return operator_pb2.UpdateSpaceResponse(space=space_message(space))

    # -- tokens --------------------------------------------------------------------------

    def CreateToken(self, request: operator_pb2.CreateTokenRequest, context: Any) -> operator_pb2.CreateTokenResponse:
        if request.scope not in SCOPE_OF:
            raise InvalidArgument("`scope` is required: TOKEN_SCOPE_WRITE, READ, ADMIN or OPERATOR",
                                  reason="SCOPE_INVALID", violations=[FieldViolation("scope", "required")])
        now = self.engine.clock.now_ms()
        expires = _expiry(request, now)
        space = self._space(request.space)
        issued = self.engine.auth.create_token(space.name, SCOPE_OF[request.scope], now, request.label, expires)
        row = self.engine.auth.token(issued.token_id)
        self._audit(space.space_id, "create", "token", row.public_id, scope=row.scope, label=row.label,
                    expires_ms=row.expires_ms)
        return operator_pb2.CreateTokenResponse(token=token_message(row, now), secret=issued.token)

    def ListTokens(self, request: operator_pb2.ListTokensRequest, context: Any) -> operator_pb2.ListTokensResponse:
        space = self._space(request.space)
        scope = {"list": "tokens", "space": space.space_id}
        after, size = self._page(request, scope)
        found = self.engine.auth.tokens(space.name, after or 0, size + 1)
        token = self.engine.page_tokens.encode(found[size - 1].token_id, scope) if len(found) > size else ""
        now = self.engine.clock.now_ms()
        return operator_pb2.ListTokensResponse(tokens=[token_message(t, now) for t in found[:size]],
                                               next_page_token=token)

    def RevokeToken(self, request: operator_pb2.RevokeTokenRequest, context: Any) -> operator_pb2.RevokeTokenResponse:
        if not request.token_id:
            raise InvalidArgument("`token_id` is required", reason="TOKEN_ID_MISSING",
                                  violations=[FieldViolation("token_id", "required")])
        row = self.engine.auth.revoke(request.token_id)
        self._audit(row.space_id, "revoke", "token", row.public_id, scope=row.scope, label=row.label)
        return operator_pb2.RevokeTokenResponse(token=token_message(row, self.engine.clock.now_ms()))

    # -- profile deletions and suppressions ----------------------------------------------

    def DeleteProfile(self, request: operator_pb2.DeleteProfileRequest,
                      context: Any) -> operator_pb2.DeleteProfileResponse:
        space = self._space(request.space)
        if not request.profile.id:
            raise InvalidArgument("`profile.id` is required", reason="PROFILE_ID_MISSING",
                                  violations=[FieldViolation("profile.id", "required")])
        collection = collection_of(request.profile.collection, "profile.collection")
        timeout = _duration_ms(request, "delivery_timeout")
        row = self.engine.lifecycle.deletions.request(space.space_id, collection, request.profile.id, request.suppress,
                                                      DEFAULT_TIMEOUT_MS if timeout is None else timeout,
                                                      caller_label())
        # The profile's id, not the address asked with: the log keeps no identifier of the person.
        self._audit(space.space_id, "delete", "profile", row.profile_public_id, deletion_id=row.public_id,
                    suppress=row.suppress)
        return operator_pb2.DeleteProfileResponse(deletion=deletion_message(row, space.name))

    def GetProfileDeletion(self, request: operator_pb2.GetProfileDeletionRequest,
                           context: Any) -> operator_pb2.GetProfileDeletionResponse:
        if not request.deletion_id:
            raise InvalidArgument("`deletion_id` is required", reason="DELETION_ID_MISSING",
                                  violations=[FieldViolation("deletion_id", "required")])
        space = self._space(request.space)
        row = self.engine.lifecycle.deletions.get(space.space_id, request.deletion_id)
        return operator_pb2.GetProfileDeletionResponse(deletion=deletion_message(row, space.name))

    def ListProfileDeletions(self, request: operator_pb2.ListProfileDeletionsRequest,
                             context: Any) -> operator_pb2.ListProfileDeletionsResponse:
        space = self._space(request.space)
        scope = {"list": "deletions", "space": space.space_id}
        before, size = self._page(request, scope)
        found = self.engine.lifecycle.deletions.page(space.space_id, before, size + 1)
        token = self.engine.page_tokens.encode(found[size - 1].deletion_id, scope) if len(found) > size else ""
        return operator_pb2.ListProfileDeletionsResponse(
            deletions=[deletion_message(r, space.name) for r in found[:size]], next_page_token=token)

    def ListSuppressions(self, request: operator_pb2.ListSuppressionsRequest,
                         context: Any) -> operator_pb2.ListSuppressionsResponse:
        space = self._space(request.space)
        scope = {"list": "suppressions", "space": space.space_id}
        after, size = self._page(request, scope)
        found = self.engine.lifecycle.deletions.suppressions(space.space_id, tuple(after) if after else None, size + 1)
        last = found[size - 1] if len(found) > size else None
        token = self.engine.page_tokens.encode([last.collection, last.id_type, last.id_value], scope) if last else ""
        return operator_pb2.ListSuppressionsResponse(suppressions=[suppression_message(r) for r in found[:size]],
                                                     next_page_token=token)

    def DeleteSuppression(self, request: operator_pb2.DeleteSuppressionRequest,
                          context: Any) -> operator_pb2.DeleteSuppressionResponse:
        space = self._space(request.space)
        wanted = request.external_id
        if not wanted.type or not wanted.value:
            raise InvalidArgument("`external_id.type` and `external_id.value` are required", reason="ID_MISSING",
                                  violations=[FieldViolation("external_id", "type and value required")])
        collection = collection_of(wanted.collection, "external_id.collection")
        self.engine.lifecycle.deletions.lift(space.space_id, (collection, wanted.type, wanted.value))
        self._audit(space.space_id, "delete", "suppression", f"{collection}/{wanted.type}")
        return operator_pb2.DeleteSuppressionResponse()


def _expiry(request: operator_pb2.CreateTokenRequest, now_ms: int) -> int | None:
    """When a new token expires (None: never); it must be in the future."""
    which = request.WhichOneof("expiration")
    if which is None:
        return None
    if which == "expire_time":
        expires = time_ms(request, "expire_time")
    else:
        expires = now_ms + (_duration_ms(request, "ttl") or 0)
    if expires is None or expires <= now_ms:
        raise InvalidArgument("a token must expire in the future", reason="EXPIRY_INVALID",
                              violations=[FieldViolation(which, "not in the future")])
    if expires > MAX_TIMESTAMP_MS:
        # Its expire_time could not be shown: a Timestamp ends with the year 9999.
        raise InvalidArgument("a token must expire by 9999-12-31T23:59:59.999Z", reason="EXPIRY_INVALID",
                              violations=[FieldViolation(which, "past the year 9999")])
    return expires
