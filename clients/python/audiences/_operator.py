"""OperatorService: spaces, tokens, profile deletions and suppressions (an `operator` token).

Every method takes `space`, the space's name; empty means the operator token's own space.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from google.protobuf import field_mask_pb2

from audiences._base import Base, CollectionArg, collection_value, duration, timestamp
from audiences.errors import InvalidArgument
from audiences.v1 import common_pb2, operator_pb2

_SCOPES = {
    "write": operator_pb2.TOKEN_SCOPE_WRITE,
    "read": operator_pb2.TOKEN_SCOPE_READ,
    "admin": operator_pb2.TOKEN_SCOPE_ADMIN,
    "operator": operator_pb2.TOKEN_SCOPE_OPERATOR,
}
Span = dt.timedelta | float | None


def scope_value(scope: str | int) -> operator_pb2.TokenScope:
    """`"write"`, `"read"`, `"admin"`, `"operator"` (or the enum value) as the `TokenScope` enum."""
    if isinstance(scope, int):
        return scope  # type: ignore[return-value]
    try:
        return _SCOPES[scope.lower()]
    except KeyError:
        raise InvalidArgument(
            f"scope must be one of {', '.join(_SCOPES)}, not {scope!r}", "SCOPE_INVALID", {"value": str(scope)}
        ) from None


class OperatorMethods(Base):
    """Spaces, tokens and the data lifecycle."""

    # -- spaces -------------------------------------------------------------------------------

    def create_space(self, name: str, *, event_retention: Span = None) -> operator_pb2.Space:
        """Creates a space, keeping events for `event_retention` (a timedelta or seconds; None: for ever)."""
        space = operator_pb2.Space(name=name, event_retention=duration(event_retention))
        return self._call("operator", operator_pb2.CreateSpaceResponse, self.operator_stub.CreateSpace,
                          operator_pb2.CreateSpaceRequest(space=space)).space

    def get_space(self, name: str = "") -> operator_pb2.Space:
        """One space with its settings (default: the token's own)."""
        return self._call("operator", operator_pb2.GetSpaceResponse, self.operator_stub.GetSpace,
                          operator_pb2.GetSpaceRequest(name=name)).space

    def iter_spaces(self, *, page_size: int = 0) -> Iterator[operator_pb2.Space]:
        """Every space of the server, oldest first."""
        return self._pages(lambda token: self._call(
            "operator", operator_pb2.ListSpacesResponse, self.operator_stub.ListSpaces,
            operator_pb2.ListSpacesRequest(page_size=page_size, page_token=token)), "spaces")

    def set_event_retention(self, name: str, event_retention: Span) -> operator_pb2.Space:
        """Sets how long a space keeps events (None: for ever). Refused (`RETENTION_CONFLICT`) while
        an enabled definition of the space reads further back."""
        space = operator_pb2.Space(name=name, event_retention=duration(event_retention))
        request = operator_pb2.UpdateSpaceRequest(space=space,
                                                  update_mask=field_mask_pb2.FieldMask(paths=["event_retention"]))
        return self._call("operator", operator_pb2.UpdateSpaceResponse, self.operator_stub.UpdateSpace, request).space

    # -- tokens -------------------------------------------------------------------------------

    def create_token(self, scope: str | int, *, space: str = "", label: str = "", ttl: Span = None,
                     expire_time: dt.datetime | None = None) -> operator_pb2.CreateTokenResponse:
        """Issues a token; the reply's `secret` is shown this once. It expires after `ttl` (a
        timedelta or seconds) or at `expire_time`, or never."""
        request = operator_pb2.CreateTokenRequest(space=space, scope=scope_value(scope), label=label,
                                                  ttl=duration(ttl), expire_time=timestamp(expire_time))
        return self._call("operator", operator_pb2.CreateTokenResponse, self.operator_stub.CreateToken, request)

    def iter_tokens(self, *, space: str = "", page_size: int = 0) -> Iterator[operator_pb2.Token]:
        """A space's tokens, oldest first, revoked and expired ones included; never a secret."""
        return self._pages(lambda token: self._call(
            "operator", operator_pb2.ListTokensResponse, self.operator_stub.ListTokens,
            operator_pb2.ListTokensRequest(space=space, page_size=page_size, page_token=token)), "tokens")

    def revoke_token(self, token_id: str) -> operator_pb2.Token:
        """Revokes a token by its id (`tok_…`): its next call is refused."""
        return self._call("operator", operator_pb2.RevokeTokenResponse, self.operator_stub.RevokeToken,
                          operator_pb2.RevokeTokenRequest(token_id=token_id)).token

    # -- profile deletions and suppressions ---------------------------------------------------

    def delete_profile(self, profile_id: str, *, collection: CollectionArg = "users", space: str = "",
                       suppress: bool = False, delivery_timeout: Span = None) -> operator_pb2.ProfileDeletion:
        """Starts deleting a profile (`type:value` or `prf_…`); with `suppress`, later calls
        carrying its identifiers are refused. Returns the deletion, PENDING; `get_profile_deletion`
        says when it is COMPLETE."""
        request = operator_pb2.DeleteProfileRequest(
            space=space, profile=common_pb2.ProfileRef(collection=collection_value(collection), id=profile_id),
            suppress=suppress, delivery_timeout=duration(delivery_timeout))
        return self._call("operator", operator_pb2.DeleteProfileResponse, self.operator_stub.DeleteProfile,
                          request).deletion

    def get_profile_deletion(self, deletion_id: str, *, space: str = "") -> operator_pb2.ProfileDeletion:
        """One profile deletion and how far it got."""
        return self._call("operator", operator_pb2.GetProfileDeletionResponse, self.operator_stub.GetProfileDeletion,
                          operator_pb2.GetProfileDeletionRequest(space=space, deletion_id=deletion_id)).deletion

    def iter_profile_deletions(self, *, space: str = "", page_size: int = 0) -> Iterator[operator_pb2.ProfileDeletion]:
        """A space's profile deletions, newest first."""
        return self._pages(lambda token: self._call(
            "operator", operator_pb2.ListProfileDeletionsResponse, self.operator_stub.ListProfileDeletions,
            operator_pb2.ListProfileDeletionsRequest(space=space, page_size=page_size, page_token=token)), "deletions")

    def iter_suppressions(self, *, space: str = "", page_size: int = 0) -> Iterator[operator_pb2.Suppression]:
        """A space's suppressed identifiers, by collection, type and value."""
        return self._pages(lambda token: self._call(
            "operator", operator_pb2.ListSuppressionsResponse, self.operator_stub.ListSuppressions,
            operator_pb2.ListSuppressionsRequest(space=space, page_size=page_size, page_token=token)), "suppressions")

    def delete_suppression(self, external_id: str, *, collection: CollectionArg = "users",
                           space: str = "") -> operator_pb2.DeleteSuppressionResponse:
        """Stops suppressing an identifier (`type:value`): calls carrying it are stored again."""
        id_type, colon, value = external_id.partition(":")
        if not colon:
            raise ValueError(f"an identifier is `type:value`, not {external_id!r}")
        request = operator_pb2.DeleteSuppressionRequest(space=space, external_id=common_pb2.ExternalId(
            type=id_type, value=value, collection=collection_value(collection)))
        return self._call("operator", operator_pb2.DeleteSuppressionResponse, self.operator_stub.DeleteSuppression,
                          request)
