"""A deleted profile leaves no membership history behind; the size series counts its exit."""

from __future__ import annotations

from audiences.v1 import admin_pb2, common_pb2, operator_pb2
from google.protobuf import duration_pb2

from tests.lifecycle.conftest import Site
from tests.sync.conftest import wait_for

USERS = common_pb2.COLLECTION_USERS


def test_a_deleted_profile_s_history_goes_with_it(site: Site) -> None:
    """ada's entry is listed before her deletion and gone after it; bob's stays; the size series
    counts both entries and her exit, and ends at the size now."""
    site.send({"type": "identify", "userId": "ada", "traits": {"plan": "pro"}},
              {"type": "identify", "userId": "bob", "traits": {"plan": "pro"}})
    site.define("pro", "trait('plan') = 'pro'")
    site.tick()

    def listed() -> list[str]:
        page = site.running.admin.ListMembershipHistory(admin_pb2.ListMembershipHistoryRequest(
            collection=USERS, key="pro"), metadata=site.as_("admin"))
        return [c.profile.external_ids[0].value if c.profile.external_ids else "?" for c in page.changes]

    assert sorted(listed()) == ["ada", "bob"]
    ada = site.running.query("SELECT profile_id FROM identifiers WHERE space_id = ? AND id_value = 'ada'",
                             (site.space_id,))[0][0]
    deletion = site.operator.DeleteProfile(operator_pb2.DeleteProfileRequest(
        profile=common_pb2.ProfileRef(collection=USERS, id="user_id:ada"),
        delivery_timeout=duration_pb2.Duration(seconds=0)), metadata=site.as_("operator")).deletion

    def complete() -> bool:
        found = site.operator.GetProfileDeletion(operator_pb2.GetProfileDeletionRequest(
            deletion_id=deletion.deletion_id), metadata=site.as_("operator")).deletion
        return found.state == operator_pb2.DELETION_STATE_COMPLETE

    wait_for(complete, timeout=20, what="the deletion to complete")
    assert listed() == ["bob"]
    assert site.running.query("SELECT count(*) FROM changes WHERE profile_id = ?", (ada,)) == [(0,)]
    series = site.running.admin.GetSizeHistory(admin_pb2.GetSizeHistoryRequest(
        collection=USERS, key="pro", interval=admin_pb2.SIZE_INTERVAL_DAILY), metadata=site.as_("admin"))
    assert (sum(p.entered_count for p in series.points), sum(p.exited_count for p in series.points)) == (2, 1)
    assert series.points[-1].size == series.current_size == 1
