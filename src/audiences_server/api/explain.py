"""AudienceAdminService.ExplainMembership: an explanation as the API shows it."""

from __future__ import annotations

from typing import Any

import grpc
from audiences.v1 import admin_pb2, common_pb2

from audiences_server.api.computations import (
    COLLECTION_ENUM,
    KINDS,
    collection_of,
    json_value,
    profile_summaries,
    time_ms,
    timestamp,
    value_json,
)
from audiences_server.api.context import space_id
from audiences_server.core.ql.explain import EventRef, Node, StreamEvidence
from audiences_server.core.ql.reasons import Edge, NextChange
from audiences_server.engine.engine import Engine
from audiences_server.engine.explain import Explained

NODE_KINDS = {
    "and": admin_pb2.EXPLAIN_NODE_KIND_AND, "or": admin_pb2.EXPLAIN_NODE_KIND_OR,
    "not": admin_pb2.EXPLAIN_NODE_KIND_NOT, "any": admin_pb2.EXPLAIN_NODE_KIND_ANY,
    "all": admin_pb2.EXPLAIN_NODE_KIND_ALL, "none": admin_pb2.EXPLAIN_NODE_KIND_ALL_NOT,
    "comparison": admin_pb2.EXPLAIN_NODE_KIND_COMPARISON, "literal": admin_pb2.EXPLAIN_NODE_KIND_LITERAL,
    "trait": admin_pb2.EXPLAIN_NODE_KIND_TRAIT, "aggregate": admin_pb2.EXPLAIN_NODE_KIND_AGGREGATE,
    "field": admin_pb2.EXPLAIN_NODE_KIND_FIELD,
}
KIND_ENUM: dict[str, Any] = {v: k for k, v in KINDS.items()}


def computation_ref(kind: str, collection: str, key: str) -> common_pb2.ComputationRef:
    """An audience or computed trait named by kind, collection and key."""
    return common_pb2.ComputationRef(kind=KIND_ENUM[kind], collection=COLLECTION_ENUM[collection], key=key)


class _Convert:
    """Turns one explanation into messages; profiles are named by their summaries."""

    def __init__(self, engine: Engine, found: Explained) -> None:
        self.found = found
        pids = {found.profile_id, *found.users, *(pid for _, pid in found.messages.values())}
        self.summaries = profile_summaries(engine, sorted(pids))

    def response(self) -> admin_pb2.ExplainMembershipResponse:
        found = self.found
        row = found.row
        return admin_pb2.ExplainMembershipResponse(
            computation=computation_ref(row.kind, row.collection, row.key),
            profile=self.summaries[found.profile_id], explain_time=timestamp(found.at_ms),
            value=json_value(found.value), value_json=value_json(found.value),
            stored_value=json_value(found.stored), evaluation_pending=found.pending,
            anonymous_excluded=found.excluded, root=self.node(found.explanation.root),
            next_change=self.next_change(found.explanation.next),
        )

    def node(self, node: Node) -> admin_pb2.ExplainNode:
        out = admin_pb2.ExplainNode(
            kind=NODE_KINDS[node.kind], text=node.text, value=json_value(node.value), value_json=value_json(node.value),
            children=[self.node(child) for child in node.children],
            users=[admin_pb2.UserOutcome(profile=self.summaries[u.user], satisfied=u.value, node=self.node(u.node))
                   for u in node.users],
            users_satisfying_count=node.users_holding, users_count=node.users_total,
        )
        if node.trait is not None:
            out.trait.CopyFrom(admin_pb2.TraitRead(
                key=node.trait, trait_class=self.found.trait_classes.get(node.trait.split(".", 1)[0], "custom")))
        if node.stream is not None:
            out.stream.CopyFrom(self.stream(node.stream))
        return out

    def stream(self, stream: StreamEvidence) -> admin_pb2.StreamEvidence:
        return admin_pb2.StreamEvidence(
            event=stream.event, seen_count=stream.seen, event_count=stream.count,
            filters=[admin_pb2.FilterStep(filter=s.text, remaining_count=s.remaining) for s in stream.steps],
            events=[self.event(e, stream) for e in stream.events],
        )

    def event(self, event: EventRef, stream: StreamEvidence) -> admin_pb2.EventEvidence:
        message_id, pid = self.found.messages.get(event.seq, ("", self.found.profile_id))
        out = admin_pb2.EventEvidence(
            message_id=message_id, profile_id=self.summaries[pid].profile_id, event=event.name,
            event_time=timestamp(event.timestamp_ms), value_json=value_json(event.value),
        )
        out.read_json.update({text: value_json(value) for text, value in event.read})
        return out

    def next_change(self, found: NextChange) -> admin_pb2.NextChange:
        return admin_pb2.NextChange(
            check_time=timestamp(found.check_ms), check_reasons=[self.reason(e) for e in found.check_reasons],
            change_time=timestamp(found.change_ms),
            new_value_json=value_json(found.value) if found.change_ms is not None else "",
            reasons=[self.reason(e) for e in found.reasons], search_exhausted=found.exhausted,
            summary=self.found.summary,
        )

    def reason(self, edge: Edge) -> admin_pb2.ChangeReason:
        message_id = self.found.messages.get(edge.seq, ("", 0))[0] if edge.seq is not None else ""
        return admin_pb2.ChangeReason(reason_time=timestamp(edge.at_ms), description=edge.reason,
                                      message_id=message_id)


class ExplainAdmin:
    """ExplainMembership; mixed into the AudienceAdminService servicer."""

    engine: Engine

    def ExplainMembership(self, request: admin_pb2.ExplainMembershipRequest,
                          context: grpc.ServicerContext) -> admin_pb2.ExplainMembershipResponse:
        found = self.engine.explainer.explain(
            space_id(), collection_of(request.collection), request.key, request.profile_id,
            time_ms(request, "explain_time"), request.max_evidence,
        )
        return _Convert(self.engine, found).response()
