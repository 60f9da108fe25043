"""AudienceAdminService: explain, diff, history, size series, versions, rollback and the audit log."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from audiences._base import Base, CollectionArg, KindArg, choose, collection_value, kind_value, timestamp
from audiences.errors import InvalidArgument
from audiences.v1 import admin_pb2, common_pb2

_INTERVALS = {"hourly": admin_pb2.SIZE_INTERVAL_HOURLY, "daily": admin_pb2.SIZE_INTERVAL_DAILY}
# Version numbers are int32s; a rollback names a saved one, from 1 (0 is "the current one" to a read).
MAX_VERSION = 2**31 - 1


class InsightMethods(Base):
    """Why a profile has its value, what an edit would change, what happened, and who did what."""

    def explain_membership(
        self,
        key: str,
        profile_id: str,
        *,
        collection: CollectionArg = "users",
        at: dt.datetime | None = None,
        max_evidence: int = 0,
    ) -> admin_pb2.ExplainMembershipResponse:
        """Why the profile (`type:value` or `prf_…`) has its value for audience or computed trait
        `key`, now or at an earlier time `at`: the tree with each part's value, the events behind
        each part, and when the value next changes (`next_change.summary`)."""
        request = admin_pb2.ExplainMembershipRequest(
            collection=collection_value(collection), key=key, profile_id=profile_id, explain_time=timestamp(at),
            max_evidence=max_evidence,
        )
        return self._call("admin", admin_pb2.ExplainMembershipResponse, self.admin_stub.ExplainMembership, request)

    def diff_definition(
        self,
        key: str,
        definition: str,
        *,
        kind: KindArg = "audience",
        collection: CollectionArg = "users",
        sample_size: int = 0,
        include_anonymous_users: bool | None = None,
        include_historical_data: bool | None = None,
        backfill_days: int | None = None,
    ) -> admin_pb2.DefinitionDiff:
        """What saving `definition` as the new definition of `key` would change now: how many
        profiles would enter, exit and stay, with samples of each. Changes nothing.

        The options given are those the edit would change (the others keep their saved values,
        read first): the diff is evaluated with them, as the update would save them."""
        edited = edited_options(include_anonymous_users, include_historical_data, backfill_days)
        saved = self._saved(key, kind_value(kind), collection).options if edited else None
        request = diff_request(key, definition, kind, collection, sample_size, edited, saved)
        return self._call("admin", admin_pb2.PreviewDefinitionResponse, self.admin_stub.PreviewDefinition,
                          request).diff

    def _saved(self, key: str, kind: common_pb2.ComputationKind, collection: CollectionArg
               ) -> admin_pb2.Audience | admin_pb2.ComputedTrait:
        """The saved definition of a kind; on AsyncClient, an awaitable of it (its `get_…` are
        coroutines), which the methods it writes out await."""
        audience = kind == common_pb2.COMPUTATION_KIND_AUDIENCE
        get = self.get_audience if audience else self.get_computed_trait  # type: ignore[attr-defined]
        found: admin_pb2.Audience | admin_pb2.ComputedTrait = get(key, collection=collection)
        return found

    def list_membership_history(
        self,
        *,
        key: str = "",
        profile_id: str = "",
        collection: CollectionArg = "users",
        start_time: dt.datetime | None = None,
        end_time: dt.datetime | None = None,
        page_size: int = 0,
        page_token: str = "",
    ) -> admin_pb2.ListMembershipHistoryResponse:
        """One page of entries, exits and computed value changes, oldest first: of a definition
        (`key`), of a profile (`profile_id`), or of a profile in one definition."""
        request = admin_pb2.ListMembershipHistoryRequest(
            collection=collection_value(collection), key=key, profile_id=profile_id, start_time=timestamp(start_time),
            end_time=timestamp(end_time), page_size=page_size, page_token=page_token,
        )
        return self._call("admin", admin_pb2.ListMembershipHistoryResponse, self.admin_stub.ListMembershipHistory,
                          request)

    def iter_membership_history(
        self, *, key: str = "", profile_id: str = "", collection: CollectionArg = "users",
        start_time: dt.datetime | None = None, end_time: dt.datetime | None = None,
    ) -> Iterator[admin_pb2.MembershipChange]:
        """Every history record asked for, following the pages."""
        return self._pages(
            lambda token: self.list_membership_history(
                key=key, profile_id=profile_id, collection=collection, start_time=start_time, end_time=end_time,
                page_size=1000, page_token=token,
            ),
            "changes",
        )

    def get_size_history(
        self,
        key: str,
        *,
        interval: str = "hourly",
        collection: CollectionArg = "users",
        start_time: dt.datetime | None = None,
        end_time: dt.datetime | None = None,
    ) -> admin_pb2.GetSizeHistoryResponse:
        """A definition's size per hour or day (`interval`: "hourly", the default, or "daily"), with the
        entries and exits of each.

        Raises:
            InvalidArgument: `INTERVAL_INVALID` for another word (metadata `option`, `value`).
        """
        request = admin_pb2.GetSizeHistoryRequest(
            collection=collection_value(collection), key=key,
            interval=choose(_INTERVALS, interval, "interval", "INTERVAL_INVALID"),
            start_time=timestamp(start_time), end_time=timestamp(end_time),
        )
        return self._call("admin", admin_pb2.GetSizeHistoryResponse, self.admin_stub.GetSizeHistory, request)

    def list_definition_versions(
        self, key: str, *, collection: CollectionArg = "users", page_size: int = 0, page_token: str = ""
    ) -> admin_pb2.ListDefinitionVersionsResponse:
        """One page of a definition's versions, newest first."""
        request = admin_pb2.ListDefinitionVersionsRequest(
            collection=collection_value(collection), key=key, page_size=page_size, page_token=page_token
        )
        return self._call("admin", admin_pb2.ListDefinitionVersionsResponse, self.admin_stub.ListDefinitionVersions,
                          request)

    def iter_definition_versions(self, key: str, *, collection: CollectionArg = "users"
                                 ) -> Iterator[admin_pb2.DefinitionVersion]:
        """Every version of a definition, newest first."""
        return self._pages(
            lambda token: self.list_definition_versions(key, collection=collection, page_size=1000, page_token=token),
            "versions",
        )

    def get_definition_version(self, key: str, version: int = 0, *, collection: CollectionArg = "users"
                               ) -> admin_pb2.DefinitionVersion:
        """One version of a definition (0: the current one)."""
        request = admin_pb2.GetDefinitionVersionRequest(collection=collection_value(collection), key=key,
                                                        version=version)
        return self._call("admin", admin_pb2.GetDefinitionVersionResponse, self.admin_stub.GetDefinitionVersion,
                          request).version

    def rollback_definition(self, key: str, version: int, *, collection: CollectionArg = "users"
                            ) -> admin_pb2.Audience | admin_pb2.ComputedTrait:
        """Updates the definition to an older version's text and options (a new version); its
        backfill then restores that version's members. A version with the current text and
        options changes nothing: no update is sent (no new version, no backfill, no audit entry)
        and the definition is returned as it stands.

        Raises:
            InvalidArgument: VERSION_INVALID, a version below 1 or beyond an int32 (0, "the
                current one" to `get_definition_version`, is nothing to roll back to).
        """
        if not 1 <= version <= MAX_VERSION:
            raise InvalidArgument(f"`version` must be from 1 to {MAX_VERSION:,}", "VERSION_INVALID")
        old = self.get_definition_version(key, version, collection=collection)
        audience = old.computation.kind == common_pb2.COMPUTATION_KIND_AUDIENCE
        if same_definition(old, self.get_definition_version(key, 0, collection=collection)):
            return self._saved(key, old.computation.kind, collection)
        update = self.update_audience if audience else self.update_computed_trait  # type: ignore[attr-defined]
        result: admin_pb2.Audience | admin_pb2.ComputedTrait = update(
            key, collection=collection, definition=old.definition, options=old.options)
        return result

    def list_audit_entries(
        self, *, action: str = "", target_type: str = "", target: str = "", page_size: int = 0, page_token: str = ""
    ) -> admin_pb2.ListAuditEntriesResponse:
        """One page of the space's admin actions, newest first (who: the token's label)."""
        request = admin_pb2.ListAuditEntriesRequest(
            action=action, target_type=target_type, target=target, page_size=page_size, page_token=page_token
        )
        return self._call("admin", admin_pb2.ListAuditEntriesResponse, self.admin_stub.ListAuditEntries, request)

    def iter_audit_entries(self, *, action: str = "", target_type: str = "", target: str = ""
                           ) -> Iterator[admin_pb2.AuditEntry]:
        """Every audit entry asked for, newest first."""
        return self._pages(
            lambda token: self.list_audit_entries(action=action, target_type=target_type, target=target,
                                                  page_size=1000, page_token=token),
            "entries",
        )


def same_definition(one: admin_pb2.DefinitionVersion, other: admin_pb2.DefinitionVersion) -> bool:
    """Whether two versions have the same text and options (rolling back from one to the other
    would change nothing)."""
    return one.definition == other.definition and one.options == other.options


def edited_options(include_anonymous_users: bool | None, include_historical_data: bool | None,
                   backfill_days: int | None) -> dict[str, bool | int]:
    """The options an edit changes (those given)."""
    given = {"include_anonymous_users": include_anonymous_users,
             "include_historical_data": include_historical_data, "backfill_days": backfill_days}
    return {name: value for name, value in given.items() if value is not None}


def diff_request(key: str, definition: str, kind: KindArg, collection: CollectionArg, sample_size: int,
                 edited: dict[str, bool | int], saved: admin_pb2.ComputationOptions | None
                 ) -> admin_pb2.PreviewDefinitionRequest:
    """A preview of `definition` compared with the saved `key`; with `edited` options, sent over
    the `saved` ones as `compare_options` (the options the update would save)."""
    request = admin_pb2.PreviewDefinitionRequest(
        definition=definition, kind=kind_value(kind), collection=collection_value(collection),
        sample_size=sample_size, compare_key=key,
    )
    if saved is not None:
        request.compare_options.CopyFrom(saved)
        for name, value in edited.items():
            setattr(request.compare_options, name, value)
    return request
