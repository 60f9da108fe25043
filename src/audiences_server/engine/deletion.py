"""Deleting a profile at its owner's request, and suppressing its identifiers (docs/operations.md).

1. The request, in one writer job: the profile is found; with `suppress`, its identifiers join
   the space's suppression list (calls carrying them are refused from the next job on); every
   value it has leaves as the evaluator's own merges do (each audience it was in records an
   exit in the change outbox, each computed trait a change to no value), its links go (each
   member account records the user's own exit), and what the evaluator had waiting for it is
   dropped. The deletion is PENDING.
2. The lifecycle worker waits until every connection has taken those exits from the outbox and
   every queued delivery and unread feed record of the profile is gone (delivered, read), or
   until the delivery timeout. Should the profile have entered an audience again meanwhile
   (calls that were not suppressed), its exits are recorded again and waited for. Meanwhile it
   merges with no other profile (`Resolver`): what it holds when asked is what goes.
3. One job removes the profile and the profiles merged into it: rows, identifiers, traits,
   links, values, change records, queued deliveries and feed records. Reads no longer find it.
4. Its events go, `EVENT_BATCH` per job; then the deletion is COMPLETE.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable

import apsw

from audiences_server.engine.clock import Clock
from audiences_server.engine.evaluator import Evaluation, Evaluator
from audiences_server.engine.suppression import Suppressions
from audiences_server.errors import FieldViolation, InvalidArgument, NotFound
from audiences_server.store import deletions as store
from audiences_server.store import evaluation as evaluation_store
from audiences_server.store import history as history_store
from audiences_server.store import profile_reads, suppressions
from audiences_server.store.db import Readers
from audiences_server.store.deletions import DeletionRow
from audiences_server.store.identity import touch
from audiences_server.store.suppressions import SuppressedId, SuppressionRow
from audiences_server.store.sync import latest_change
from audiences_server.store.writer import Writer

DEFAULT_TIMEOUT_MS = 3_600_000
MAX_TIMEOUT_MS = 30 * 86_400_000
EVENT_BATCH = 5000


def profile_of(conn: apsw.Connection, space_id: int, collection: str, address: str) -> tuple[int, str]:
    """The surviving profile an address (`type:value` or `prf_…`) names, as (id, public id).

    Raises:
        InvalidArgument: the address is neither.
        NotFound: no profile of the collection has it.
    """
    id_type, colon, value = address.partition(":")
    if not colon and address.startswith("prf_"):
        found = profile_reads.by_public_id(conn, space_id, collection, address)
    elif colon and id_type.strip() and value:
        found = profile_reads.by_identifier(conn, space_id, collection, id_type.strip().lower(), value)
    else:
        raise InvalidArgument(f"profile id {address!r} must be `type:value` or a profile id `prf_…`",
                              reason="PROFILE_ID_INVALID", violations=[FieldViolation("profile.id", "malformed")])
    if found is None:
        raise NotFound("profile not found", reason="PROFILE_NOT_FOUND")
    return found


class Deletions:
    """Profile deletions: asked for through the API, carried out by the lifecycle worker."""

    def __init__(self, writer: Writer, readers: Readers, clock: Clock, evaluator: Evaluator,
                 suppressed: Suppressions) -> None:
        self._writer = writer
        self._readers = readers
        self._clock = clock
        self._evaluator = evaluator
        self._suppressed = suppressed
        # Told when exits were recorded (sync queues them) and when work is waiting (the worker).
        self.on_exits: list[Callable[[], None]] = []

    def request(self, space_id: int, collection: str, address: str, suppress: bool, timeout_ms: int | None,
                requested_by: str) -> DeletionRow:
        """Starts deleting a profile (or returns the deletion already under way for it)."""
        timeout = DEFAULT_TIMEOUT_MS if timeout_ms is None else timeout_ms
        if not 0 <= timeout <= MAX_TIMEOUT_MS:
            raise InvalidArgument("`delivery_timeout` must be 0 to 30 days", reason="TIMEOUT_INVALID",
                                  violations=[FieldViolation("delivery_timeout", "out of range")])

        def job(conn: apsw.Connection) -> DeletionRow:
            profile_id, public_id = profile_of(conn, space_id, collection, address)
            under_way = store.pending_of_profile(conn, profile_id)
            if under_way is not None:
                return under_way
            now = self._clock.now_ms()
            deletion_id = store.insert(conn, "del_" + secrets.token_hex(10), space_id, collection, address,
                                       profile_id, public_id, suppress, timeout, requested_by, now)
            if suppress:
                family = store.family(conn, profile_id)
                added = suppressions.add(conn, space_id, store.identifiers(conn, family), deletion_id, now)
                store.note_suppressed(conn, deletion_id, added)
                self._suppressed.changed(space_id)
            row = store.by_id(conn, deletion_id)
            assert row is not None
            self._exit(conn, row, now)
            return store.by_id(conn, deletion_id) or row

        future = self._writer.submit(job)
        # Read again once committed (or rolled back): the ingest check must match the database.
        future.add_done_callback(lambda _: self._suppressed.changed(space_id))
        row = future.result()
        self._notify()
        return row

    def _exit(self, conn: apsw.Connection, row: DeletionRow, now: int) -> None:
        """Ends the profile's memberships and links through the change outbox."""
        mark = latest_change(conn)
        Evaluation(conn, self._evaluator.registry(conn), now).retire(row.profile_id)
        linked = store.linked(conn, row.profile_id, row.collection)
        touch(conn, [(other, "link", "") for other in linked])
        if row.collection == "users":
            # Each member account sends the user's own exit; the accounts are evaluated without it.
            for account in linked:
                evaluation_store.record_link_change(conn, account, row.profile_id, "user_unlinked", now)
            # Before the links go: an account the user no longer counts for (not a member) has no
            # change naming the user, and nothing would lead the purge to its queued changes.
            store.unname(conn, store.family(conn, row.profile_id))
            store.unlink_all(conn, row.profile_id)
        # An account keeps its links until it is removed: its exits are sent to its users too.
        for member in store.family(conn, row.profile_id):
            store.forget_evaluation(conn, member)
        written = store.changes_since(conn, mark)
        history_store.capture(conn, mark)  # the exits count in the size series as the evaluator's do
        store.record_exits(conn, row.deletion_id, {**row.exits, **written}, store.count_changes_since(conn, mark))

    def _notify(self) -> None:
        self._evaluator.wake()
        for listener in self.on_exits:
            listener()

    def get(self, space_id: int, public_id: str) -> DeletionRow:
        """One deletion of a space."""
        row = store.by_public_id(self._readers.get(), space_id, public_id)
        if row is None:
            raise NotFound(f"deletion {public_id!r} not found", reason="DELETION_NOT_FOUND",
                           violations=[FieldViolation("deletion_id", "no such deletion in the space")])
        return row

    def page(self, space_id: int, before: int | None, limit: int) -> list[DeletionRow]:
        """A space's deletions below an id, newest first."""
        return store.page(self._readers.get(), space_id, before, limit)

    def pending(self) -> bool:
        """Whether a deletion is under way."""
        return bool(store.pending(self._readers.get()))

    def step(self) -> bool:
        """Moves each deletion under way on by at most one job; returns whether one moved."""
        moved = False
        for row in store.pending(self._readers.get()):
            if row.stage == "exits":
                moved |= self._after_exits(row)
            else:
                self._writer.run(functools.partial(self._delete_events, row=row))
                moved = True
        return moved

    def _after_exits(self, row: DeletionRow) -> bool:
        """Removes the profile once its exits are delivered or its time is up."""
        conn = self._readers.get()
        waiting = store.unqueued(conn, row.exits) + store.undelivered(conn, row.space_id,
                                                                      store.family(conn, row.profile_id))
        now = self._clock.now_ms()
        if waiting and now < row.deadline_ms:
            return False
        removed = self._writer.run(lambda c: self._remove(c, row, now))
        if not removed:
            self._notify()
        return removed

    def _remove(self, conn: apsw.Connection, row: DeletionRow, now: int) -> bool:
        """Removes the profile; or, should the evaluator have given it a value again, records
        those exits instead (values of disabled or failed definitions, which the evaluator does
        not maintain and no exit was sent for, simply go with it)."""
        live = self._evaluator.registry(conn).by_id
        again = [cid for cid in evaluation_store.values_of_profile(conn, row.profile_id) if cid in live]
        if again:
            # It entered again meanwhile (a backfill reached it before it was forgotten): that exit
            # is recorded, so the sizes and the history count it, and delivered first while there
            # is time; past the deadline the profile goes now, the exit counted as undelivered.
            self._exit(conn, row, now)
            if now < row.deadline_ms:
                return False
            row = store.by_id(conn, row.deletion_id) or row
        family = store.family(conn, row.profile_id)
        left = store.unqueued(conn, row.exits) + store.undelivered(conn, row.space_id, family)
        store.purge(conn, row.space_id, family)
        store.advance(conn, row.deletion_id, "events", undelivered=left)
        return True

    def _delete_events(self, conn: apsw.Connection, row: DeletionRow) -> None:
        # Merges move events to the survivor, so the profile's own id finds all of them.
        count = store.delete_events(conn, [row.profile_id], EVENT_BATCH)
        done = count < EVENT_BATCH
        store.advance(conn, row.deletion_id, "done" if done else "events", events=count,
                      now_ms=self._clock.now_ms() if done else None)

    # -- the suppression list ------------------------------------------------------------

    def suppressions(self, space_id: int, after: SuppressedId | None, limit: int) -> list[SuppressionRow]:
        """A space's suppressed identifiers after one, by collection, type and value."""
        return suppressions.page(self._readers.get(), space_id, after, limit)

    def lift(self, space_id: int, suppressed: SuppressedId) -> None:
        """Stops suppressing an identifier: calls carrying it are stored again.

        Raises:
            NotFound: it is not suppressed.
        """
        future = self._writer.submit(lambda conn: suppressions.remove(conn, space_id, suppressed))
        future.add_done_callback(lambda _: self._suppressed.changed(space_id))
        if not future.result():
            raise NotFound(f"{suppressed[1]}:{suppressed[2]} is not suppressed in {suppressed[0]}",
                           reason="SUPPRESSION_NOT_FOUND",
                           violations=[FieldViolation("external_id", "not suppressed")])
