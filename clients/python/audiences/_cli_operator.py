"""CLI commands of an operator token: `spaces`, `tokens`, `deletions` and `suppressions`."""

from __future__ import annotations

import argparse
import datetime as dt
import time
from typing import Any

from audiences._base import MAX_DURATION_SECONDS
from audiences._cli_args import positive
from audiences._output import emit_json, fields, table, time_text, to_data
from audiences.client import Client
from audiences.v1 import operator_pb2

Sub = Any
_DAY = 86_400
# Spans go to the server as protobuf Durations, which hold at most 10,000 years.
_days_type = positive("days", MAX_DURATION_SECONDS / _DAY, "3,652,500 (10,000 years)")
# The server keeps a space's events at least 1 day and at most 100,000 days (RETENTION_INVALID).
_retention_days_type = positive("days", 100_000, "100,000", least=1, least_text="1")
# The server's range of a deletion's wait (0 to 30 days).
_delivery_timeout_type = positive("seconds", 30 * 86_400, "2,592,000 (30 days)", zero=True)


def register(commands: Sub) -> None:
    """Adds `spaces …`, `tokens …`, `deletions …` and `suppressions …`."""
    _spaces(commands)
    _tokens(commands)
    _deletions(commands)


def _spaces(commands: Sub) -> None:
    verbs = commands.add_parser("spaces", help="manage spaces (operator token)").add_subparsers(
        dest="verb", metavar="VERB", required=True)
    verbs.add_parser("list", help="every space").set_defaults(handler=_list_spaces)
    create = verbs.add_parser("create", help="create a space")
    create.add_argument("name")
    create.add_argument("--event-retention-days", type=_retention_days_type,
                        help="delete events older than this many days (default: keep)")
    create.set_defaults(handler=_create_space)
    show = verbs.add_parser("show", help="one space (default: the token's own)")
    show.add_argument("name", nargs="?", default="")
    show.set_defaults(handler=_show_space)
    retention = verbs.add_parser("retention", help="set how long a space keeps events")
    retention.add_argument("name")
    retention.add_argument("days", type=_retention_days_type, nargs="?",
                           help="days to keep events, 1 to 100,000; leave out with --forever")
    retention.add_argument("--forever", action="store_true", help="keep events for ever")
    retention.set_defaults(handler=_set_retention)


def _tokens(commands: Sub) -> None:
    verbs = commands.add_parser("tokens", help="issue, list and revoke tokens (operator token)").add_subparsers(
        dest="verb", metavar="VERB", required=True)
    listing = verbs.add_parser("list", help="a space's tokens (never their secrets)")
    listing.add_argument("--space", default="")
    listing.set_defaults(handler=_list_tokens)
    create = verbs.add_parser("create", help="issue a token; its secret is printed once")
    create.add_argument("scope", choices=("write", "read", "admin", "operator"))
    create.add_argument("--space", default="")
    create.add_argument("--label", default="")
    create.add_argument("--ttl-days", type=_days_type, help="expire after this many days (default: never)")
    create.set_defaults(handler=_create_token)
    revoke = verbs.add_parser("revoke", help="revoke a token by its id (tok_…)")
    revoke.add_argument("token_id")
    revoke.set_defaults(handler=_revoke_token)


def _deletions(commands: Sub) -> None:
    verbs = commands.add_parser("deletions", help="delete profiles (operator token)").add_subparsers(
        dest="verb", metavar="VERB", required=True)
    create = verbs.add_parser("create", help="delete a profile: its exits are delivered first, then its data goes")
    create.add_argument("profile", help="TYPE:VALUE or prf_…")
    create.add_argument("--collection", "-c", default="users", choices=("users", "accounts"))
    create.add_argument("--space", default="")
    create.add_argument("--suppress", action="store_true", help="refuse later calls carrying its identifiers")
    create.add_argument("--delivery-timeout", type=_delivery_timeout_type,
                        help="seconds to wait for the exits (default 3600; 0: do not wait; at most 30 days)")
    create.add_argument("--wait", action="store_true", help="wait until the deletion is COMPLETE")
    create.set_defaults(handler=_delete_profile)
    show = verbs.add_parser("show", help="one deletion and how far it got")
    show.add_argument("deletion_id")
    show.add_argument("--space", default="")
    show.set_defaults(handler=_show_deletion)
    listing = verbs.add_parser("list", help="a space's deletions, newest first")
    listing.add_argument("--space", default="")
    listing.set_defaults(handler=_list_deletions)

    verbs = commands.add_parser("suppressions", help="suppressed identifiers (operator token)").add_subparsers(
        dest="verb", metavar="VERB", required=True)
    listing = verbs.add_parser("list", help="a space's suppressed identifiers")
    listing.add_argument("--space", default="")
    listing.set_defaults(handler=_list_suppressions)
    lift = verbs.add_parser("delete", help="stop suppressing an identifier (TYPE:VALUE)")
    lift.add_argument("external_id")
    lift.add_argument("--collection", "-c", default="users", choices=("users", "accounts"))
    lift.add_argument("--space", default="")
    lift.set_defaults(handler=_lift)


# -- spaces -----------------------------------------------------------------------------------


def _retention_text(space: operator_pb2.Space) -> str:
    if not space.HasField("event_retention"):
        return "forever"
    return f"{space.event_retention.seconds / _DAY:g} days"


def _print_space(space: operator_pb2.Space, args: argparse.Namespace) -> int:
    if args.json:
        emit_json(to_data(space))
    else:
        fields([("name", space.name), ("created", time_text(space.create_time)),
                ("events kept", _retention_text(space))])
    return 0


def _list_spaces(client: Client, args: argparse.Namespace) -> int:
    spaces = list(client.iter_spaces())
    if args.json:
        emit_json([to_data(s) for s in spaces])
    else:
        table([(s.name, time_text(s.create_time), _retention_text(s)) for s in spaces],
              ("name", "created", "events kept"))
    return 0


def _days(days: float | None) -> dt.timedelta | None:
    return None if days is None else dt.timedelta(days=days)


def _create_space(client: Client, args: argparse.Namespace) -> int:
    return _print_space(client.create_space(args.name, event_retention=_days(args.event_retention_days)), args)


def _show_space(client: Client, args: argparse.Namespace) -> int:
    return _print_space(client.get_space(args.name), args)


def _set_retention(client: Client, args: argparse.Namespace) -> int:
    if (args.days is None) == (not args.forever):
        raise ValueError("give a number of days, or --forever")
    return _print_space(client.set_event_retention(args.name, _days(args.days)), args)


# -- tokens -----------------------------------------------------------------------------------


def _state(token: operator_pb2.Token) -> str:
    return operator_pb2.TokenState.Name(token.state).removeprefix("TOKEN_STATE_").lower()


def _scope(token: operator_pb2.Token) -> str:
    return operator_pb2.TokenScope.Name(token.scope).removeprefix("TOKEN_SCOPE_").lower()


def _list_tokens(client: Client, args: argparse.Namespace) -> int:
    tokens = list(client.iter_tokens(space=args.space))
    if args.json:
        emit_json([to_data(t) for t in tokens])
    else:
        table([(t.token_id, _scope(t), t.label, time_text(t.create_time), time_text(t.expire_time),
                time_text(t.last_used_time), _state(t)) for t in tokens],
              ("id", "scope", "label", "created", "expires", "last used", "state"))
    return 0


def _create_token(client: Client, args: argparse.Namespace) -> int:
    made = client.create_token(args.scope, space=args.space, label=args.label, ttl=_days(args.ttl_days))
    if args.json:
        emit_json({"token": to_data(made.token), "secret": made.secret})
    else:
        print(made.secret)
        print(f"{made.token.token_id}: {_scope(made.token)} token of {made.token.space}; the secret above is shown"
              " this once")
    return 0


def _revoke_token(client: Client, args: argparse.Namespace) -> int:
    token = client.revoke_token(args.token_id)
    if args.json:
        emit_json(to_data(token))
    else:
        print(f"revoked {token.token_id} ({_scope(token)} token of {token.space})")
    return 0


# -- deletions and suppressions ---------------------------------------------------------------


def _print_deletion(deletion: operator_pb2.ProfileDeletion, args: argparse.Namespace) -> int:
    if args.json:
        emit_json(to_data(deletion))
        return 0
    fields([
        ("deletion", deletion.deletion_id), ("profile", f"{deletion.profile.id} ({deletion.profile_id})"),
        ("state", operator_pb2.DeletionState.Name(deletion.state).removeprefix("DELETION_STATE_").lower()),
        ("suppressed", f"{deletion.identifiers_suppressed} identifiers" if deletion.suppress else "no"),
        ("exits", f"{deletion.exits_recorded} recorded, {deletion.exits_undelivered} undelivered"),
        ("events deleted", deletion.events_deleted), ("asked by", deletion.requested_by),
        ("asked", time_text(deletion.create_time)), ("completed", time_text(deletion.complete_time)),
    ])
    return 0


def _delete_profile(client: Client, args: argparse.Namespace) -> int:
    deletion = client.delete_profile(args.profile, collection=args.collection, space=args.space,
                                     suppress=args.suppress, delivery_timeout=args.delivery_timeout)
    while args.wait and deletion.state != operator_pb2.DELETION_STATE_COMPLETE:
        time.sleep(0.5)
        deletion = client.get_profile_deletion(deletion.deletion_id, space=args.space)
    return _print_deletion(deletion, args)


def _show_deletion(client: Client, args: argparse.Namespace) -> int:
    return _print_deletion(client.get_profile_deletion(args.deletion_id, space=args.space), args)


def _list_deletions(client: Client, args: argparse.Namespace) -> int:
    deletions = list(client.iter_profile_deletions(space=args.space))
    if args.json:
        emit_json([to_data(d) for d in deletions])
    else:
        table([(d.deletion_id, d.profile_id, operator_pb2.DeletionState.Name(d.state).removeprefix(
            "DELETION_STATE_").lower(), "yes" if d.suppress else "no", time_text(d.create_time)) for d in deletions],
              ("id", "profile", "state", "suppress", "asked"))
    return 0


def _list_suppressions(client: Client, args: argparse.Namespace) -> int:
    found = list(client.iter_suppressions(space=args.space))
    if args.json:
        emit_json([to_data(s) for s in found])
    else:
        table([(f"{s.external_id.type}:{s.external_id.value}", s.deletion_id, time_text(s.create_time))
               for s in found], ("identifier", "deletion", "since"))
    return 0


def _lift(client: Client, args: argparse.Namespace) -> int:
    client.delete_suppression(args.external_id, collection=args.collection, space=args.space)
    if not args.json:
        print(f"{args.external_id} is no longer suppressed")
    return 0
