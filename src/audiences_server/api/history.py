"""AudienceAdminService: membership history, size series, definition versions and the audit log."""

from __future__ import annotations

from typing import Any

import grpc
from audiences.v1 import admin_pb2
from google.protobuf import struct_pb2

from audiences_server.api.computations import (
    collection_of,
    fill_struct,
    options_message,
    profile_summaries,
    time_ms,
    timestamp,
    value_json,
)
from audiences_server.api.context import space_id
from audiences_server.api.explain import computation_ref
from audiences_server.engine.engine import Engine
from audiences_server.engine.history import DAY_MS, HOUR_MS, HistoryQuery, Record
from audiences_server.errors import FieldViolation, InvalidArgument
from audiences_server.store.evaluation import ComputationRow
from audiences_server.store.versions import AuditRow, VersionRow

CHANGE_TYPES = {
    "entered": admin_pb2.MEMBERSHIP_CHANGE_TYPE_ENTERED,
    "exited": admin_pb2.MEMBERSHIP_CHANGE_TYPE_EXITED,
    "changed": admin_pb2.MEMBERSHIP_CHANGE_TYPE_CHANGED,
}
INTERVALS = {admin_pb2.SIZE_INTERVAL_HOURLY: HOUR_MS, admin_pb2.SIZE_INTERVAL_DAILY: DAY_MS}


def _change(record: Record, profile: Any) -> admin_pb2.MembershipChange:
    return admin_pb2.MembershipChange(
        change_id=record.history_id, computation=computation_ref(record.kind, record.collection, record.key),
        profile=profile, change_type=CHANGE_TYPES[record.change], old_value_json=value_json(record.old),
        new_value_json=value_json(record.new), change_time=timestamp(record.at_ms),
    )


def _version(row: ComputationRow, version: VersionRow) -> admin_pb2.DefinitionVersion:
    out = admin_pb2.DefinitionVersion(
        computation=computation_ref(row.kind, row.collection, row.key), version=version.version,
        definition=version.definition, options=options_message(version.options),
        create_time=timestamp(version.created_ms), actor=version.actor,
        backfill_end_time=timestamp(version.backfilled_ms), current=version.version == row.version,
    )
    if version.size_after_backfill is not None:
        out.size_after_backfill = version.size_after_backfill
    return out


def _entry(row: AuditRow) -> admin_pb2.AuditEntry:
    details = struct_pb2.Struct()
    fill_struct(details, row.detail)
    return admin_pb2.AuditEntry(entry_id=row.audit_id, action_time=timestamp(row.at_ms), actor=row.actor,
                                action=row.action, target_type=row.target_type, target=row.target, details=details)


class HistoryAdmin:
    """History, size series, versions and audit RPCs; mixed into the AudienceAdminService servicer."""

    engine: Engine

    def ListMembershipHistory(self, request: admin_pb2.ListMembershipHistoryRequest,
                              context: grpc.ServicerContext) -> admin_pb2.ListMembershipHistoryResponse:
        query = HistoryQuery(collection_of(request.collection), request.profile_id, request.key,
                             time_ms(request, "start_time"), time_ms(request, "end_time"), request.page_size,
                             request.page_token)
        records, token = self.engine.history.records(space_id(), query)
        summaries = profile_summaries(self.engine, sorted({r.profile_id for r in records}))
        return admin_pb2.ListMembershipHistoryResponse(
            changes=[_change(r, summaries.get(r.profile_id)) for r in records], next_page_token=token)

    def GetSizeHistory(self, request: admin_pb2.GetSizeHistoryRequest,
                       context: grpc.ServicerContext) -> admin_pb2.GetSizeHistoryResponse:
        if request.interval not in INTERVALS:
            raise InvalidArgument("`interval` must be SIZE_INTERVAL_HOURLY or SIZE_INTERVAL_DAILY",
                                  reason="INTERVAL_INVALID", violations=[FieldViolation("interval", "required")])
        row, points = self.engine.history.sizes(space_id(), collection_of(request.collection), request.key,
                                                INTERVALS[request.interval], time_ms(request, "start_time"),
                                                time_ms(request, "end_time"))
        return admin_pb2.GetSizeHistoryResponse(
            computation=computation_ref(row.kind, row.collection, row.key), current_size=row.size,
            points=[admin_pb2.SizePoint(start_time=timestamp(p.start_ms), size=p.size, entered_count=p.entered,
                                        exited_count=p.exited, changed_count=p.changed) for p in points],
        )

    def ListDefinitionVersions(self, request: admin_pb2.ListDefinitionVersionsRequest,
                               context: grpc.ServicerContext) -> admin_pb2.ListDefinitionVersionsResponse:
        row, versions, token = self.engine.versions.versions(space_id(), collection_of(request.collection),
                                                             request.key, request.page_size, request.page_token)
        return admin_pb2.ListDefinitionVersionsResponse(versions=[_version(row, v) for v in versions],
                                                        next_page_token=token)

    def GetDefinitionVersion(self, request: admin_pb2.GetDefinitionVersionRequest,
                             context: grpc.ServicerContext) -> admin_pb2.GetDefinitionVersionResponse:
        if request.version < 0:
            raise InvalidArgument("`version` must be 0 (the current one) or more", reason="VERSION_INVALID",
                                  violations=[FieldViolation("version", "negative")])
        row, version = self.engine.versions.version(space_id(), collection_of(request.collection), request.key,
                                                    request.version)
        return admin_pb2.GetDefinitionVersionResponse(version=_version(row, version))

    def ListAuditEntries(self, request: admin_pb2.ListAuditEntriesRequest,
                         context: grpc.ServicerContext) -> admin_pb2.ListAuditEntriesResponse:
        entries, token = self.engine.versions.audit(space_id(), request.page_size, request.page_token,
                                                    request.action, request.target_type, request.target)
        return admin_pb2.ListAuditEntriesResponse(entries=[_entry(e) for e in entries], next_page_token=token)
