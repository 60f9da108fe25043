"""Versioned schema migrations, applied in order at start.

Each migration is a named function of a connection; it runs in the same transaction as the row
that records it, so a crash never leaves a half-applied migration behind.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

import apsw
import structlog

from audiences_server.store.db import connect

log = structlog.get_logger(__name__)

Migration = Callable[[apsw.Connection], None]
MIGRATIONS: list[tuple[str, Migration]] = []


def migration(name: str) -> Callable[[Migration], Migration]:
    """Registers a migration; they run in the order they are declared.

    Raises:
        ValueError: a migration of that name is already declared. A database records migrations
            by name, so the second of two would never run where the first had.
    """
    if any(declared == name for declared, _ in MIGRATIONS):
        raise ValueError(f"two migrations are named {name!r}")

    def register(fn: Migration) -> Migration:
        MIGRATIONS.append((name, fn))
        return fn

    return register


@migration("0001_spaces_and_tokens")
def _spaces_and_tokens(conn: apsw.Connection) -> None:
    conn.execute("""
        CREATE TABLE spaces (
            space_id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            created_ms INTEGER NOT NULL
        );
        CREATE TABLE tokens (
            token_id INTEGER PRIMARY KEY,
            space_id INTEGER NOT NULL REFERENCES spaces(space_id),
            scope TEXT NOT NULL CHECK (scope IN ('write', 'read', 'admin')),
            token_hash TEXT NOT NULL UNIQUE,
            label TEXT NOT NULL DEFAULT '',
            created_ms INTEGER NOT NULL
        );
    """)


@migration("0002_events")
def _events(conn: apsw.Connection) -> None:
    # `seq` is the arrival order. `profile_id` is filled in by identity resolution. The event
    # time `ts` and receive time are milliseconds since the epoch, UTC. `body` holds properties
    # (track, page, screen) or traits (identify, group) as JSON; `extra` the rest of the call.
    conn.execute("""
        CREATE TABLE events (
            seq INTEGER PRIMARY KEY,
            space_id INTEGER NOT NULL,
            message_id TEXT NOT NULL,
            type TEXT NOT NULL,
            event TEXT,
            user_id TEXT,
            anonymous_id TEXT,
            group_id TEXT,
            profile_id INTEGER,
            ts INTEGER NOT NULL,
            received_ms INTEGER NOT NULL,
            body TEXT NOT NULL,
            context TEXT NOT NULL,
            extra TEXT NOT NULL
        );
        CREATE UNIQUE INDEX events_by_message ON events(space_id, message_id);
        CREATE INDEX events_by_profile ON events(profile_id, event, ts);
    """)



@migration("0003_profiles")
def _profiles(conn: apsw.Connection) -> None:
    # A merged-away profile keeps its row, with `merged_into` naming the survivor, so that its
    # public id still resolves. Identifiers, events, traits and links always point at the
    # survivor. `touches` is what changed since the evaluator last looked, by kind and name
    # (an event name, a trait key), so it can skip definitions a change cannot affect.
    conn.execute("""
        CREATE TABLE profiles (
            profile_id INTEGER PRIMARY KEY,
            space_id INTEGER NOT NULL,
            collection TEXT NOT NULL CHECK (collection IN ('users', 'accounts')),
            public_id TEXT NOT NULL UNIQUE,
            merged_into INTEGER REFERENCES profiles(profile_id),
            merge_count INTEGER NOT NULL DEFAULT 0,
            created_ms INTEGER NOT NULL,
            updated_ms INTEGER NOT NULL,
            first_message_ms INTEGER,
            last_message_ms INTEGER
        );
        CREATE TABLE identifiers (
            space_id INTEGER NOT NULL,
            collection TEXT NOT NULL,
            id_type TEXT NOT NULL,
            id_value TEXT NOT NULL,
            profile_id INTEGER NOT NULL,
            added_ms INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            PRIMARY KEY (space_id, collection, id_type, id_value)
        ) WITHOUT ROWID;
        CREATE INDEX identifiers_by_profile ON identifiers(profile_id);
        CREATE TABLE traits (
            profile_id INTEGER NOT NULL,
            key TEXT NOT NULL,
            value TEXT,
            ts_ms INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            PRIMARY KEY (profile_id, key)
        ) WITHOUT ROWID;
        CREATE TABLE links (
            user_id INTEGER NOT NULL,
            account_id INTEGER NOT NULL,
            linked_ms INTEGER NOT NULL,
            PRIMARY KEY (user_id, account_id)
        ) WITHOUT ROWID;
        CREATE INDEX links_by_account ON links(account_id, user_id);
        CREATE TABLE merges (
            merge_id INTEGER PRIMARY KEY,
            space_id INTEGER NOT NULL,
            survivor_id INTEGER NOT NULL,
            merged_id INTEGER NOT NULL,
            message_id TEXT NOT NULL,
            merged_ms INTEGER NOT NULL
        );
        CREATE INDEX merges_by_survivor ON merges(survivor_id);
        CREATE TABLE identity_rules (
            space_id INTEGER PRIMARY KEY,
            rules TEXT NOT NULL,
            updated_ms INTEGER NOT NULL
        );
        CREATE TABLE identity_violations (
            space_id INTEGER NOT NULL,
            kind TEXT NOT NULL,
            id_type TEXT NOT NULL,
            count INTEGER NOT NULL,
            last_ms INTEGER NOT NULL,
            PRIMARY KEY (space_id, kind, id_type)
        ) WITHOUT ROWID;
        CREATE TABLE identity_violation_samples (
            sample_id INTEGER PRIMARY KEY,
            space_id INTEGER NOT NULL,
            kind TEXT NOT NULL,
            id_type TEXT NOT NULL,
            message_id TEXT NOT NULL,
            dropped TEXT NOT NULL,
            detail TEXT NOT NULL,
            at_ms INTEGER NOT NULL
        );
        CREATE INDEX identity_violation_samples_by_kind ON identity_violation_samples(space_id, kind, id_type);
        CREATE TABLE touches (
            profile_id INTEGER NOT NULL,
            kind TEXT NOT NULL,
            name TEXT NOT NULL,
            PRIMARY KEY (profile_id, kind, name)
        ) WITHOUT ROWID;
    """)


@migration("0004_server_keys")
def _server_keys(conn: apsw.Connection) -> None:
    # Secrets the server makes for itself, e.g. the key that signs page tokens. Made once, at
    # the migration, so they survive restarts and stay with the database file.
    conn.execute("CREATE TABLE server_keys (name TEXT PRIMARY KEY, value BLOB NOT NULL)")
    conn.execute("INSERT INTO server_keys (name, value) VALUES ('page_token', ?)", (secrets.token_bytes(32),))


@migration("0005_computations")
def _computations(conn: apsw.Connection) -> None:
    # Audiences and computed traits share one key space per collection, since `trait('x')`
    # reads either. `computed_values` holds each profile's current value as JSON: an audience
    # stores true for members and false for profiles that left (never-members have no row).
    # `due` holds, per profile and computation, the next time its value can change with no new
    # data (a window edge passing an event or a date), so ticks find them without a scan.
    conn.execute("""
        CREATE TABLE computations (
            computation_id INTEGER PRIMARY KEY,
            space_id INTEGER NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('audience', 'computed_trait')),
            collection TEXT NOT NULL CHECK (collection IN ('users', 'accounts')),
            key TEXT NOT NULL,
            public_id TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            description TEXT NOT NULL,
            definition TEXT NOT NULL,
            enabled INTEGER NOT NULL,
            options TEXT NOT NULL,
            status TEXT NOT NULL,
            error TEXT NOT NULL DEFAULT '',
            size INTEGER NOT NULL DEFAULT 0,
            progress_done INTEGER NOT NULL DEFAULT 0,
            progress_total INTEGER NOT NULL DEFAULT 0,
            created_ms INTEGER NOT NULL,
            updated_ms INTEGER NOT NULL,
            last_computed_ms INTEGER,
            UNIQUE (space_id, collection, key)
        );
        CREATE TABLE computed_values (
            computation_id INTEGER NOT NULL,
            profile_id INTEGER NOT NULL,
            value TEXT NOT NULL,
            updated_ms INTEGER NOT NULL,
            PRIMARY KEY (computation_id, profile_id)
        ) WITHOUT ROWID;
        CREATE INDEX computed_values_by_profile ON computed_values(profile_id, computation_id);
        CREATE TABLE due (
            computation_id INTEGER NOT NULL,
            profile_id INTEGER NOT NULL,
            due_ms INTEGER NOT NULL,
            PRIMARY KEY (computation_id, profile_id)
        ) WITHOUT ROWID;
        CREATE INDEX due_by_time ON due(due_ms);
        CREATE TABLE changes (
            change_id INTEGER PRIMARY KEY,
            space_id INTEGER NOT NULL,
            computation_id INTEGER NOT NULL,
            profile_id INTEGER NOT NULL,
            change TEXT NOT NULL CHECK (change IN ('entered', 'exited', 'changed')),
            old_value TEXT,
            new_value TEXT,
            at_ms INTEGER NOT NULL
        );
        CREATE INDEX changes_by_computation ON changes(computation_id, change_id);
    """)


@migration("0006_backfill_cursor")
def _backfill_cursor(conn: apsw.Connection) -> None:
    # A backfill walks the collection's profiles in id order; the cursor lets it resume after
    # a restart. `version` counts definition edits, so a tick never mixes two versions.
    conn.execute("ALTER TABLE computations ADD COLUMN backfill_cursor INTEGER NOT NULL DEFAULT 0")
    conn.execute("ALTER TABLE computations ADD COLUMN version INTEGER NOT NULL DEFAULT 1")


@migration("0007_event_sources")
def _event_sources(conn: apsw.Connection) -> None:
    # The source of an event is the label of the write token that sent it, so that
    # `sources(exclude: 'label')` can leave out what one service sends.
    conn.execute("ALTER TABLE events ADD COLUMN source_id TEXT NOT NULL DEFAULT ''")


@migration("0008_identity_rule_admin")
def _identity_rule_admin(conn: apsw.Connection) -> None:
    # Violations are also counted per UTC day, so they can be listed since a time; and each
    # identifier type's rule remembers when it was last changed.
    conn.execute("""
        CREATE TABLE identity_violation_days (
            space_id INTEGER NOT NULL,
            kind TEXT NOT NULL,
            id_type TEXT NOT NULL,
            day INTEGER NOT NULL,
            count INTEGER NOT NULL,
            first_ms INTEGER NOT NULL,
            last_ms INTEGER NOT NULL,
            PRIMARY KEY (space_id, kind, id_type, day)
        ) WITHOUT ROWID;
        CREATE TABLE identity_rule_times (
            space_id INTEGER NOT NULL,
            id_type TEXT NOT NULL,
            changed_ms INTEGER NOT NULL,
            PRIMARY KEY (space_id, id_type)
        ) WITHOUT ROWID;
    """)

def applied(conn: apsw.Connection) -> set[str]:
    """Names of the migrations already applied."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_ms INTEGER NOT NULL)"
    )
    return {row[0] for row in conn.execute("SELECT name FROM _migrations")}


def check_known(done: set[str], path: str) -> None:
    """Refuses a database that records a migration this version does not declare.

    A newer version wrote it: its schema may have moved on in ways this code would misread or
    write over (a table rebuilt, a column's meaning changed), and migrations only move forward,
    so nothing here could bring it back.

    Raises:
        ValueError: names the first unknown migration and says what to run.
    """
    unknown = sorted(done - {name for name, _ in MIGRATIONS})
    if unknown:
        raise ValueError(f"{path} was written by a newer version of Audiences (migration {unknown[0]} is unknown to"
                         " this one); run that version or newer")


def migrate(conn: apsw.Connection, now_ms: int, *, path: str | None = None) -> list[str]:
    """Applies every migration not applied yet; returns their names.

    Args:
        path: the database as the operator named it, for a refusal (default: SQLite's full path).

    Raises:
        ValueError: the database was written by a newer version (`check_known`); nothing is applied.
    """
    done = applied(conn)
    check_known(done, conn.filename if path is None else path)
    ran = []
    for name, fn in MIGRATIONS:
        if name in done:
            continue
        with conn:
            fn(conn)
            conn.execute("INSERT INTO _migrations (name, applied_ms) VALUES (?, ?)", (name, now_ms))
        log.info("migration_applied", name=name)
        ran.append(name)
    return ran


def prepare(path: Path, synchronous: str, now_ms: int) -> list[str]:
    """Creates the database file if needed and brings its schema up to date."""
    conn = connect(path, synchronous=synchronous)
    try:
        return migrate(conn, now_ms, path=str(path))
    finally:
        conn.close()


@migration("0009_sync")
def _sync(conn: apsw.Connection) -> None:
    # Named 0009 because 0007 and 0008 were already taken when sync landed; only the order of
    # declaration matters to `migrate`.
    # `config` and `policy` are JSON, secrets included (the API never reads them back).
    # A connection reads the `changes` outbox after `cursor`; while in INITIAL_SYNC it also walks
    # the computation's current values in profile order, `snapshot_after` being where it stands.
    # `deliveries` is each connection's queue for webhook and Segment destinations: one row per
    # change, removed once delivered; `state` is pending, retrying or dead (a dead letter).
    # `feed_records` is the same queue for `grpc_feed` destinations, kept for consumers to read.
    conn.execute("""
        CREATE TABLE destinations (
            destination_id INTEGER PRIMARY KEY,
            space_id INTEGER NOT NULL,
            key TEXT NOT NULL,
            public_id TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('webhook', 'segment', 'grpc_feed', 'csv')),
            enabled INTEGER NOT NULL,
            config TEXT NOT NULL,
            policy TEXT NOT NULL,
            feed_acked INTEGER NOT NULL DEFAULT 0,
            created_ms INTEGER NOT NULL,
            updated_ms INTEGER NOT NULL,
            UNIQUE (space_id, key)
        );
        CREATE TABLE connections (
            connection_id INTEGER PRIMARY KEY,
            destination_id INTEGER NOT NULL REFERENCES destinations(destination_id),
            computation_id INTEGER NOT NULL,
            options TEXT NOT NULL,
            phase TEXT NOT NULL CHECK (phase IN ('INITIAL_SYNC', 'LIVE')),
            cursor INTEGER NOT NULL,
            snapshot_after INTEGER NOT NULL DEFAULT 0,
            delivered_count INTEGER NOT NULL DEFAULT 0,
            last_error TEXT NOT NULL DEFAULT '',
            last_error_ms INTEGER,
            last_delivery_ms INTEGER,
            written_cursor INTEGER NOT NULL DEFAULT -1,
            written_ms INTEGER NOT NULL DEFAULT 0,
            created_ms INTEGER NOT NULL,
            updated_ms INTEGER NOT NULL,
            UNIQUE (destination_id, computation_id)
        );
        CREATE INDEX connections_by_computation ON connections(computation_id);
        CREATE TABLE deliveries (
            delivery_id INTEGER PRIMARY KEY,
            connection_id INTEGER NOT NULL,
            destination_id INTEGER NOT NULL,
            profile_id INTEGER NOT NULL,
            message_id TEXT NOT NULL,
            record TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('pending', 'retrying', 'dead')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_ms INTEGER NOT NULL,
            first_attempt_ms INTEGER,
            last_error TEXT NOT NULL DEFAULT '',
            dead_ms INTEGER,
            created_ms INTEGER NOT NULL
        );
        CREATE INDEX deliveries_by_profile ON deliveries(connection_id, profile_id, delivery_id);
        CREATE INDEX deliveries_due ON deliveries(destination_id, state, next_ms);
        CREATE TABLE feed_records (
            record_id INTEGER PRIMARY KEY,
            connection_id INTEGER NOT NULL,
            destination_id INTEGER NOT NULL,
            profile_id INTEGER NOT NULL,
            message_id TEXT NOT NULL,
            record TEXT NOT NULL,
            created_ms INTEGER NOT NULL
        );
        CREATE INDEX feed_records_by_destination ON feed_records(destination_id, record_id);
    """)


@migration("0010_unlinks")
def _unlinks(conn: apsw.Connection) -> None:
    # A group call with `context.unlink: true` removes a link; links are last-write-wins by event
    # time, so a link keeps its latest link time and a removal leaves a tombstone that an older
    # group call arriving late cannot undo. `changes` gains the user of a link change: an account
    # computation's per-user calls must reach a user who joins (or leaves) a member account.
    conn.execute("""
        ALTER TABLE links ADD COLUMN last_linked_ms INTEGER NOT NULL DEFAULT 0;
        UPDATE links SET last_linked_ms = linked_ms;
        CREATE TABLE unlinks (
            user_id INTEGER NOT NULL,
            account_id INTEGER NOT NULL,
            unlinked_ms INTEGER NOT NULL,
            PRIMARY KEY (user_id, account_id)
        ) WITHOUT ROWID;
        CREATE TABLE changes_0010 (
            change_id INTEGER PRIMARY KEY,
            space_id INTEGER NOT NULL,
            computation_id INTEGER NOT NULL,
            profile_id INTEGER NOT NULL,
            change TEXT NOT NULL
                CHECK (change IN ('entered', 'exited', 'changed', 'user_linked', 'user_unlinked')),
            old_value TEXT,
            new_value TEXT,
            at_ms INTEGER NOT NULL,
            user_id INTEGER
        );
        INSERT INTO changes_0010 (change_id, space_id, computation_id, profile_id, change, old_value, new_value, at_ms)
            SELECT change_id, space_id, computation_id, profile_id, change, old_value, new_value, at_ms FROM changes;
        DROP TABLE changes;
        ALTER TABLE changes_0010 RENAME TO changes;
        CREATE INDEX changes_by_computation ON changes(computation_id, change_id);
    """)


@migration("0011_member_results")
def _member_results(conn: apsw.Connection) -> None:
    # An account audience keeps, per linked user and `ANY`/`ALL` operand, whether the user
    # satisfies it, so that a user's change costs that user, not their whole account. A row is
    # always current where it exists (its user's changes and due times recompute it; an edit
    # clears the computation's rows); accounts read them through their links, by user first.
    conn.execute("""
        CREATE TABLE member_results (
            computation_id INTEGER NOT NULL,
            operand INTEGER NOT NULL,
            user_id INTEGER NOT NULL,
            held INTEGER NOT NULL,
            PRIMARY KEY (user_id, computation_id, operand)
        ) WITHOUT ROWID;
        -- Account audiences computed before have no stored results: backfill them again (a
        -- backfill writes only values that differ, so members see no change records).
        UPDATE computations SET status = 'BACKFILLING', backfill_cursor = 0, progress_done = 0
            WHERE collection = 'accounts' AND enabled = 1 AND status = 'LIVE';
    """)


@migration("0012_space_origins")
def _space_origins(conn: apsw.Connection) -> None:
    # The origins (`https://shop.example`) whose web pages may send a space's tracking calls over
    # HTTP from a browser: the CORS answer of the tracking API. Empty for a space: no page may.
    conn.execute("""
        CREATE TABLE space_origins (
            space_id INTEGER NOT NULL REFERENCES spaces(space_id),
            origin TEXT NOT NULL,
            PRIMARY KEY (space_id, origin)
        ) WITHOUT ROWID;
    """)


@migration("0013_manual_clock")
def _manual_clock(conn: apsw.Connection) -> None:
    # The manual clock's time (one row), so that a server on a manual clock resumes at the time it
    # had instead of jumping to the wall clock when it restarts.
    conn.execute("""
        CREATE TABLE manual_clock (
            clock INTEGER PRIMARY KEY CHECK (clock = 1),
            now_ms INTEGER NOT NULL
        );
    """)


@migration("0014_history_versions_audit")
def _history_versions_audit(conn: apsw.Connection) -> None:
    # `membership_history` keeps each entry, exit and computed value change (a copy of its change
    # record, same id) for the retention time; `size_history` adds them up per computation and hour
    # with the size at the hour's end. `definition_versions` numbers every saved text and options of
    # a definition as `computations.version` counts them; `audit_log` lists admin actions and who
    # did them (the token's label). What happened before this migration is filled in from the
    # change records and the definitions as they stand.
    conn.execute("""
        CREATE TABLE membership_history (
            history_id INTEGER PRIMARY KEY,
            space_id INTEGER NOT NULL,
            computation_id INTEGER NOT NULL,
            profile_id INTEGER NOT NULL,
            change TEXT NOT NULL,
            old_value TEXT,
            new_value TEXT,
            at_ms INTEGER NOT NULL
        );
        CREATE INDEX membership_history_by_profile ON membership_history(profile_id, computation_id, history_id);
        CREATE INDEX membership_history_by_computation ON membership_history(computation_id, history_id);
        CREATE TABLE size_history (
            computation_id INTEGER NOT NULL,
            hour_ms INTEGER NOT NULL,
            entered INTEGER NOT NULL,
            exited INTEGER NOT NULL,
            changed INTEGER NOT NULL,
            size INTEGER NOT NULL,
            PRIMARY KEY (computation_id, hour_ms)
        ) WITHOUT ROWID;
        CREATE INDEX size_history_by_hour ON size_history(hour_ms);
        CREATE TABLE definition_versions (
            computation_id INTEGER NOT NULL,
            version INTEGER NOT NULL,
            definition TEXT NOT NULL,
            options TEXT NOT NULL,
            created_ms INTEGER NOT NULL,
            actor TEXT NOT NULL,
            backfilled_ms INTEGER,
            size_after_backfill INTEGER,
            PRIMARY KEY (computation_id, version)
        ) WITHOUT ROWID;
        CREATE TABLE audit_log (
            audit_id INTEGER PRIMARY KEY,
            space_id INTEGER NOT NULL,
            at_ms INTEGER NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            target_type TEXT NOT NULL,
            target TEXT NOT NULL,
            detail TEXT NOT NULL
        );
        CREATE INDEX audit_log_by_space ON audit_log(space_id, audit_id);
        INSERT INTO membership_history
            SELECT change_id, space_id, computation_id, profile_id, change, old_value, new_value, at_ms
            FROM changes WHERE change IN ('entered', 'exited', 'changed');
        INSERT INTO size_history (computation_id, hour_ms, entered, exited, changed, size)
            SELECT computation_id, hour_ms, entered, exited, changed,
                   sum(entered - exited) OVER (PARTITION BY computation_id ORDER BY hour_ms)
            FROM (SELECT computation_id, at_ms - at_ms % 3600000 AS hour_ms,
                         sum(change = 'entered' OR (change = 'changed' AND old_value IS NULL)) AS entered,
                         sum(change = 'exited' OR (change = 'changed' AND new_value IS NULL)) AS exited,
                         sum(change = 'changed' AND old_value IS NOT NULL AND new_value IS NOT NULL) AS changed
                  FROM membership_history GROUP BY computation_id, hour_ms);
        INSERT INTO definition_versions
            SELECT computation_id, version, definition, options, updated_ms, '',
                   CASE WHEN status = 'LIVE' THEN last_computed_ms END, CASE WHEN status = 'LIVE' THEN size END
            FROM computations;
    """)


@migration("0015_operator_and_lifecycle")
def _operator_and_lifecycle(conn: apsw.Connection) -> None:
    # `tokens` is rebuilt for the `operator` scope (its CHECK lists the scopes), a public id that
    # names a token without its secret, an expiry, a revocation and the time it was last used.
    # `spaces.event_retention_ms` is how long a space keeps events (NULL: for ever).
    # `suppressions` are identifiers whose calls are dropped, by the deletion that suppressed them;
    # `profile_deletions` records each deletion request and drives it (`stage`; `exits`: per
    # computation, the last change record its exits wrote, which destinations must have queued).
    # The indexes by profile let a deletion find its profile's change records and queued records.
    # `feed_pruned` is, per feed destination, the newest record removed by retention: a cursor
    # before it has missed records.
    conn.execute("""
        CREATE TABLE tokens_0015 (
            token_id INTEGER PRIMARY KEY,
            space_id INTEGER NOT NULL REFERENCES spaces(space_id),
            scope TEXT NOT NULL CHECK (scope IN ('write', 'read', 'admin', 'operator')),
            token_hash TEXT NOT NULL UNIQUE,
            label TEXT NOT NULL DEFAULT '',
            created_ms INTEGER NOT NULL,
            public_id TEXT NOT NULL UNIQUE,
            expires_ms INTEGER,
            revoked_ms INTEGER,
            last_used_ms INTEGER
        );
        INSERT INTO tokens_0015 (token_id, space_id, scope, token_hash, label, created_ms, public_id)
            SELECT token_id, space_id, scope, token_hash, label, created_ms, 'tok_' || lower(hex(randomblob(10)))
            FROM tokens;
        DROP TABLE tokens;
        ALTER TABLE tokens_0015 RENAME TO tokens;
        CREATE INDEX tokens_by_space ON tokens(space_id, token_id);
        ALTER TABLE spaces ADD COLUMN event_retention_ms INTEGER;
        CREATE TABLE suppressions (
            space_id INTEGER NOT NULL,
            collection TEXT NOT NULL,
            id_type TEXT NOT NULL,
            id_value TEXT NOT NULL,
            deletion_id INTEGER NOT NULL,
            created_ms INTEGER NOT NULL,
            PRIMARY KEY (space_id, collection, id_type, id_value)
        ) WITHOUT ROWID;
        CREATE TABLE profile_deletions (
            deletion_id INTEGER PRIMARY KEY,
            public_id TEXT NOT NULL UNIQUE,
            space_id INTEGER NOT NULL,
            collection TEXT NOT NULL,
            address TEXT NOT NULL,
            profile_id INTEGER NOT NULL,
            profile_public_id TEXT NOT NULL,
            suppress INTEGER NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('PENDING', 'COMPLETE')),
            stage TEXT NOT NULL CHECK (stage IN ('exits', 'events', 'done')),
            exits TEXT NOT NULL DEFAULT '{}',
            timeout_ms INTEGER NOT NULL,
            deadline_ms INTEGER NOT NULL,
            exits_recorded INTEGER NOT NULL DEFAULT 0,
            exits_undelivered INTEGER NOT NULL DEFAULT 0,
            events_deleted INTEGER NOT NULL DEFAULT 0,
            identifiers_suppressed INTEGER NOT NULL DEFAULT 0,
            requested_by TEXT NOT NULL,
            created_ms INTEGER NOT NULL,
            completed_ms INTEGER
        );
        CREATE INDEX profile_deletions_by_space ON profile_deletions(space_id, deletion_id);
        CREATE INDEX profile_deletions_pending ON profile_deletions(state, profile_id);
        CREATE INDEX changes_by_profile ON changes(profile_id);
        CREATE INDEX changes_by_user ON changes(user_id) WHERE user_id IS NOT NULL;
        CREATE INDEX feed_records_by_profile ON feed_records(profile_id);
        CREATE TABLE feed_pruned (
            destination_id INTEGER PRIMARY KEY,
            through_record INTEGER NOT NULL
        );
    """)


@migration("0016_destination_kinds")
def _destination_kinds(conn: apsw.Connection) -> None:
    # A destination's kind is data the engine's registry interprets: `destinations` is rebuilt
    # without the CHECK that listed the kinds, so a new kind needs no migration. `connections`
    # references `destinations` and foreign keys are on (and cannot be turned off inside the
    # migration's transaction), so it is copied aside, dropped and rebuilt as it was.
    conn.execute("""
        CREATE TABLE destinations_0016 (
            destination_id INTEGER PRIMARY KEY,
            space_id INTEGER NOT NULL,
            key TEXT NOT NULL,
            public_id TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            kind TEXT NOT NULL,
            enabled INTEGER NOT NULL,
            config TEXT NOT NULL,
            policy TEXT NOT NULL,
            feed_acked INTEGER NOT NULL DEFAULT 0,
            created_ms INTEGER NOT NULL,
            updated_ms INTEGER NOT NULL,
            UNIQUE (space_id, key)
        );
        INSERT INTO destinations_0016 SELECT destination_id, space_id, key, public_id, name, kind, enabled, config,
            policy, feed_acked, created_ms, updated_ms FROM destinations;
        CREATE TEMP TABLE connections_0016 AS SELECT * FROM connections;
        DROP TABLE connections;
        DROP TABLE destinations;
        ALTER TABLE destinations_0016 RENAME TO destinations;
        CREATE TABLE connections (
            connection_id INTEGER PRIMARY KEY,
            destination_id INTEGER NOT NULL REFERENCES destinations(destination_id),
            computation_id INTEGER NOT NULL,
            options TEXT NOT NULL,
            phase TEXT NOT NULL CHECK (phase IN ('INITIAL_SYNC', 'LIVE')),
            cursor INTEGER NOT NULL,
            snapshot_after INTEGER NOT NULL DEFAULT 0,
            delivered_count INTEGER NOT NULL DEFAULT 0,
            last_error TEXT NOT NULL DEFAULT '',
            last_error_ms INTEGER,
            last_delivery_ms INTEGER,
            written_cursor INTEGER NOT NULL DEFAULT -1,
            written_ms INTEGER NOT NULL DEFAULT 0,
            created_ms INTEGER NOT NULL,
            updated_ms INTEGER NOT NULL,
            UNIQUE (destination_id, computation_id)
        );
        INSERT INTO connections SELECT connection_id, destination_id, computation_id, options, phase, cursor,
            snapshot_after, delivered_count, last_error, last_error_ms, last_delivery_ms, written_cursor, written_ms,
            created_ms, updated_ms FROM temp.connections_0016;
        DROP TABLE temp.connections_0016;
        CREATE INDEX connections_by_computation ON connections(computation_id);
    """)


@migration("0017_deliveries_in_order")
def _deliveries_in_order(conn: apsw.Connection) -> None:
    # A destination's due deliveries are read oldest first, a few at a time, while thousands may
    # be queued: this index walks them in order and stops at the limit, where the index by state
    # and time made every read sort the whole queue.
    conn.execute("CREATE INDEX deliveries_by_destination ON deliveries(destination_id, delivery_id)")


@migration("0018_state_by_profile")
def _state_by_profile(conn: apsw.Connection) -> None:
    # A tick job reads and writes, for each profile it evaluates, its values and next change
    # times under every definition the change reaches. Keyed by computation first, each of those
    # (definition, profile) pairs sat on a page of its own: a job of 25 touched users with 200
    # definitions looked up thousands of pages for its stored state, and a job of 1,000 dirtied
    # ~2,900 pages of `due` alone. Keyed by profile first, a profile's rows sit together (a page
    # or two): a job reads a range per profile, and writes ~20-30% fewer pages. Reads by
    # computation (members of an audience, a definition's deletion) go through
    # `computed_values_by_computation`; `due` has no index by computation (it would be written
    # as often as the table): clearing a definition's next change times when it is edited scans
    # the table, which a create does not need.
    conn.execute("""
        CREATE TABLE computed_values_0018 (
            computation_id INTEGER NOT NULL,
            profile_id INTEGER NOT NULL,
            value TEXT NOT NULL,
            updated_ms INTEGER NOT NULL,
            PRIMARY KEY (profile_id, computation_id)
        ) WITHOUT ROWID;
        INSERT INTO computed_values_0018 (computation_id, profile_id, value, updated_ms)
            SELECT computation_id, profile_id, value, updated_ms FROM computed_values
            ORDER BY profile_id, computation_id;
        DROP TABLE computed_values;
        ALTER TABLE computed_values_0018 RENAME TO computed_values;
        CREATE INDEX computed_values_by_computation ON computed_values(computation_id, profile_id);
        CREATE TABLE due_0018 (
            computation_id INTEGER NOT NULL,
            profile_id INTEGER NOT NULL,
            due_ms INTEGER NOT NULL,
            PRIMARY KEY (profile_id, computation_id)
        ) WITHOUT ROWID;
        INSERT INTO due_0018 (computation_id, profile_id, due_ms)
            SELECT computation_id, profile_id, due_ms FROM due ORDER BY profile_id, computation_id;
        DROP TABLE due;
        ALTER TABLE due_0018 RENAME TO due;
        CREATE INDEX due_by_time ON due(due_ms);
    """)


@migration("0019_history_in_changes")
def _history_in_changes(conn: apsw.Connection) -> None:
    # The membership history was a copy of the change records (same ids, the entries, exits and
    # value changes among them) with two indexes of its own: each change wrote its row and four
    # index entries, two of them by profile, where profiles are scattered. Measured on a job of
    # 250 touched users with 200 definitions, the copy was a fifth of the pages the job wrote.
    # The history is now read from the change records themselves, through one index by profile
    # (profile, computation, id) that also serves a profile's deletion; the history retention
    # prunes the records every connection has taken (store/history.py).
    #
    # Ids come from AUTOINCREMENT now: a connection's cursor is a change id, and without it SQLite
    # gives a new record the id after the greatest one left, so deleting the newest records (a
    # profile's deletion, a definition's, the retention) would hand out ids at or below cursors
    # and those records would never be sent. The sequence starts past every id and cursor seen.
    conn.execute("""
        CREATE TABLE changes_0019 (
            change_id INTEGER PRIMARY KEY AUTOINCREMENT,
            space_id INTEGER NOT NULL,
            computation_id INTEGER NOT NULL,
            profile_id INTEGER NOT NULL,
            change TEXT NOT NULL
                CHECK (change IN ('entered', 'exited', 'changed', 'user_linked', 'user_unlinked')),
            old_value TEXT,
            new_value TEXT,
            at_ms INTEGER NOT NULL,
            user_id INTEGER
        );
        INSERT INTO changes_0019 (change_id, space_id, computation_id, profile_id, change, old_value, new_value,
                                  at_ms, user_id)
            SELECT change_id, space_id, computation_id, profile_id, change, old_value, new_value, at_ms, user_id
            FROM changes ORDER BY change_id;
        DROP TABLE changes;
        ALTER TABLE changes_0019 RENAME TO changes;
        CREATE INDEX changes_by_computation ON changes(computation_id, change_id);
        CREATE INDEX changes_by_profile ON changes(profile_id, computation_id, change_id);
        CREATE INDEX changes_by_user ON changes(user_id) WHERE user_id IS NOT NULL;
        DELETE FROM sqlite_sequence WHERE name = 'changes';
        INSERT INTO sqlite_sequence (name, seq) SELECT 'changes', max(
            (SELECT coalesce(max(change_id), 0) FROM changes),
            (SELECT coalesce(max(max(cursor, written_cursor)), 0) FROM connections));
        DROP TABLE membership_history;
    """)


@migration("0020_due_by_profile")
def _due_by_profile(conn: apsw.Connection) -> None:
    # A tick job evaluates each profile it takes under every definition its change reaches, and
    # most of those with a window get a new next change time: with a row per (definition,
    # profile), a job of 1,000 touched users upserted ~23,000 rows (a seventh of the job's time)
    # and moved as many entries of the index by time. Now a profile's times are one row: the
    # earliest (`due_ms`, indexed) and each computation's (`times`, a JSON object by
    # computation id), read once by a job and written once at its end (store.DueTimes).
    conn.execute("""
        CREATE TABLE due_0020 (
            profile_id INTEGER PRIMARY KEY,
            due_ms INTEGER NOT NULL,
            times TEXT NOT NULL
        );
        INSERT INTO due_0020 (profile_id, due_ms, times)
            SELECT profile_id, min(due_ms), json_group_object(CAST(computation_id AS TEXT), due_ms)
            FROM due GROUP BY profile_id ORDER BY profile_id;
        DROP TABLE due;
        ALTER TABLE due_0020 RENAME TO due;
        CREATE INDEX due_by_time ON due(due_ms);
    """)


@migration("0021_ids_never_reused")
def _ids_never_reused(conn: apsw.Connection) -> None:
    # A feed record's id is a consumer's cursor, and a delivery's is its dead letter's id (`dlq_…`,
    # also where a page of dead letters resumes). Without AUTOINCREMENT, SQLite gives a new row the
    # id after the greatest one left, so removing the newest rows (a feed's retention, a profile's
    # deletion, a delivery sent or dropped) handed their ids out again: a consumer resuming after
    # its cursor skipped the new record that took it, and a dead letter id already redriven could
    # name another. Both tables are rebuilt with AUTOINCREMENT, as `changes` was in 0019, with their
    # indexes. The feed's sequence starts past every record id issued, as the feed counts them
    # (engine/sync/feed.py, `check_issued`): kept, removed by retention (`feed_pruned`) or read
    # (`feed_acked`). The deliveries' starts past the greatest id left: those removed before left
    # no trace.
    conn.execute("""
        CREATE TABLE feed_records_0021 (
            record_id INTEGER PRIMARY KEY AUTOINCREMENT,
            connection_id INTEGER NOT NULL,
            destination_id INTEGER NOT NULL,
            profile_id INTEGER NOT NULL,
            message_id TEXT NOT NULL,
            record TEXT NOT NULL,
            created_ms INTEGER NOT NULL
        );
        INSERT INTO feed_records_0021 (record_id, connection_id, destination_id, profile_id, message_id, record,
                                       created_ms)
            SELECT record_id, connection_id, destination_id, profile_id, message_id, record, created_ms
            FROM feed_records ORDER BY record_id;
        DROP TABLE feed_records;
        ALTER TABLE feed_records_0021 RENAME TO feed_records;
        CREATE INDEX feed_records_by_destination ON feed_records(destination_id, record_id);
        CREATE INDEX feed_records_by_profile ON feed_records(profile_id);
        DELETE FROM sqlite_sequence WHERE name = 'feed_records';
        INSERT INTO sqlite_sequence (name, seq) SELECT 'feed_records', max(
            (SELECT coalesce(max(record_id), 0) FROM feed_records),
            (SELECT coalesce(max(through_record), 0) FROM feed_pruned),
            (SELECT coalesce(max(feed_acked), 0) FROM destinations));
        CREATE TABLE deliveries_0021 (
            delivery_id INTEGER PRIMARY KEY AUTOINCREMENT,
            connection_id INTEGER NOT NULL,
            destination_id INTEGER NOT NULL,
            profile_id INTEGER NOT NULL,
            message_id TEXT NOT NULL,
            record TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('pending', 'retrying', 'dead')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_ms INTEGER NOT NULL,
            first_attempt_ms INTEGER,
            last_error TEXT NOT NULL DEFAULT '',
            dead_ms INTEGER,
            created_ms INTEGER NOT NULL
        );
        INSERT INTO deliveries_0021 (delivery_id, connection_id, destination_id, profile_id, message_id, record,
                                     state, attempts, next_ms, first_attempt_ms, last_error, dead_ms, created_ms)
            SELECT delivery_id, connection_id, destination_id, profile_id, message_id, record, state, attempts,
                   next_ms, first_attempt_ms, last_error, dead_ms, created_ms
            FROM deliveries ORDER BY delivery_id;
        DROP TABLE deliveries;
        ALTER TABLE deliveries_0021 RENAME TO deliveries;
        CREATE INDEX deliveries_by_profile ON deliveries(connection_id, profile_id, delivery_id);
        CREATE INDEX deliveries_due ON deliveries(destination_id, state, next_ms);
        CREATE INDEX deliveries_by_destination ON deliveries(destination_id, delivery_id);
        DELETE FROM sqlite_sequence WHERE name = 'deliveries';
        INSERT INTO sqlite_sequence (name, seq) SELECT 'deliveries', coalesce(max(delivery_id), 0) FROM deliveries;
    """)


@migration("0022_ids_past_removals")
def _ids_past_removals(conn: apsw.Connection) -> None:
    # A profile's id keys its events until a deletion's last step removes them, after its row is
    # gone; without AUTOINCREMENT SQLite gave a profile made meanwhile the deleted one's id, and
    # with it the deletion: it merged with no other profile and its events were deleted. Rather
    # than rebuild the largest table, `id_floors` keeps the greatest profile id ever removed, and
    # a new profile's id is past it (store/identity.py, `create_profile`). A feed's record removed
    # by a deletion or a disconnection (not retention, which `feed_pruned` counts) leaves its id in
    # `feed_removed_through`, so that a consumer's cursor naming it stays one the feed issued.
    conn.execute("""
        CREATE TABLE id_floors (
            name TEXT PRIMARY KEY,
            value INTEGER NOT NULL
        ) WITHOUT ROWID;
        INSERT INTO id_floors (name, value) SELECT 'profiles', coalesce(max(profile_id), 0) FROM profiles;
        ALTER TABLE destinations ADD COLUMN feed_removed_through INTEGER NOT NULL DEFAULT 0;
    """)


@migration("0023_deletions_forget_addresses")
def _deletions_forget_addresses(conn: apsw.Connection) -> None:
    # A completed deletion's record named the profile as the request had (`email:…`), the person's
    # data kept after the deletion; it now names it by its `prf_…` id (store/deletions.py, `advance`).
    conn.execute("UPDATE profile_deletions SET address = profile_public_id WHERE state = 'COMPLETE'")


@migration("0024_unlinks_before_accounts")
def _unlinks_before_accounts(conn: apsw.Connection) -> None:
    # A removal (`context.unlink`) naming an account no profile holds yet was dropped, so a group
    # call older than it that arrived later linked the two. It is kept here, by the account's
    # identifier, until a group call makes or names that account (store/identity.py).
    conn.execute("""
        CREATE TABLE pending_unlinks (
            user_id INTEGER NOT NULL,
            id_type TEXT NOT NULL,
            id_value TEXT NOT NULL,
            unlinked_ms INTEGER NOT NULL,
            PRIMARY KEY (user_id, id_type, id_value)
        ) WITHOUT ROWID;
    """)


@migration("0025_links_made")
def _links_made(conn: apsw.Connection) -> None:
    # A link's order among links made (`made`, from the `links` counter of `id_floors`): a listing
    # of an account's users or a user's accounts lists on later pages only links made before its
    # first page. A link removed and made again meanwhile with an earlier event time, whose
    # `linked_ms` alone could not tell it from the link listed before, is left to the next listing.
    conn.execute("""
        ALTER TABLE links ADD COLUMN made INTEGER NOT NULL DEFAULT 0;
        INSERT INTO id_floors (name, value) VALUES ('links', 0);
    """)


@migration("0026_computation_ids_past_deletions")
def _computation_ids_past_deletions(conn: apsw.Connection) -> None:
    # A definition deleted and another created gave the new one the old one's id (no
    # AUTOINCREMENT): the evaluator, which keeps its compiled definitions while ids, versions,
    # states and statuses stay the same, went on evaluating the deleted text. A new definition's
    # id is now past every id a definition ever had (store/evaluation.py, `create_computation`).
    conn.execute("INSERT INTO id_floors (name, value) SELECT 'computations', coalesce(max(computation_id), 0)"
                 " FROM computations")
