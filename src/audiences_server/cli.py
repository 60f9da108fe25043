"""The `audiences-server` command: run the server, manage spaces and tokens, back up and restore
the database, and look into it."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from audiences_server import logs, ops_cli
from audiences_server.cluster import roles as cluster_roles
from audiences_server.engine.auth import SCOPES
from audiences_server.engine.engine import Engine
from audiences_server.engine.origins import Origins
from audiences_server.errors import AudiencesError, InvalidArgument
from audiences_server.server import serve
from audiences_server.settings import ADMIN_SETTINGS, Settings, add_arguments, resolve


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="audiences-server", description="The Audiences server.")
    commands = parser.add_subparsers(dest="command", required=True)
    add_arguments(commands.add_parser("serve", help="run the gRPC server"))
    spaces = commands.add_parser("spaces", help="manage spaces").add_subparsers(dest="action", required=True)
    create = spaces.add_parser("create", help="create a space")
    create.add_argument("name")
    add_arguments(create, ADMIN_SETTINGS)
    add_arguments(spaces.add_parser("list", help="list spaces"), ADMIN_SETTINGS)
    origins = spaces.add_parser("origins", help="show or set the web origins whose pages may send a space's calls"
                                " over HTTP from a browser (CORS)")
    origins.add_argument("name")
    origins.add_argument("origin", nargs="*", help="scheme://host[:port], or * for any; replaces the space's list")
    origins.add_argument("--clear", action="store_true", help="allow no origin")
    add_arguments(origins, ADMIN_SETTINGS)
    tokens = commands.add_parser("tokens", help="manage tokens").add_subparsers(dest="action", required=True)
    token = tokens.add_parser("create", help="issue a token; it is printed once and stored only hashed")
    token.add_argument("--space", required=True)
    token.add_argument("--scope", required=True, choices=SCOPES)
    token.add_argument("--label", default="")
    add_arguments(token, ADMIN_SETTINGS)
    ops_cli.register(commands, tokens)
    cluster_roles.register(commands)
    return parser


def _admin(settings: Settings, args: argparse.Namespace) -> str:
    logs.configure("console", ops_cli.LOG_LEVEL)
    engine = Engine(settings, saved_clock=True)  # the server's time, a manual clock's too
    try:
        now = engine.clock.now_ms()
        if args.command == "spaces" and args.action == "create":
            space = engine.auth.create_space(args.name, now)
            engine.versions.record(space.space_id, ops_cli.LOCAL_ACTOR, "create", "space", space.name,
                                   {"event_retention_ms": None})
            return f"created space {space.name}"
        if args.command == "spaces" and args.action == "origins":
            return _origins(engine, Origins(engine.writer, engine.readers), args)
        if args.command == "spaces":
            return "\n".join(space.name for space in engine.auth.list_spaces())
        issued = engine.auth.create_token(args.space, args.scope, now, args.label)
        row = engine.auth.token(issued.token_id)
        engine.versions.record(row.space_id, ops_cli.LOCAL_ACTOR, "create", "token", row.public_id,
                               {"scope": row.scope, "label": row.label, "expires_ms": row.expires_ms})
        return issued.token
    finally:
        engine.close()


def _origins(engine: Engine, origins: Origins, args: argparse.Namespace) -> str:
    """Lists a space's allowed origins, or replaces them (audited as a change of the space)."""
    if args.clear and args.origin:
        raise InvalidArgument("give origins to allow, or --clear, not both", reason="ARGUMENTS_INVALID")
    if args.clear or args.origin:
        allowed = origins.set(args.name, args.origin)
        space = next(space for space in engine.auth.list_spaces() if space.name == args.name)
        engine.versions.record(space.space_id, ops_cli.LOCAL_ACTOR, "update", "space", space.name,
                               {"allowed_origins": allowed})
    else:
        allowed = origins.of_space(args.name)
    return "\n".join(allowed) if allowed else f"space {args.name} allows no origin"


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "cluster":
        return cluster_roles.run(args)
    return _command(args)


def _command(args: argparse.Namespace) -> int:
    try:
        settings = resolve(vars(args), os.environ, None if args.command == "serve" else ADMIN_SETTINGS)
    except ValueError as bad:
        return _refused(str(bad), 2)
    return _serve(settings) if args.command == "serve" else _operate(settings, args)


def _serve(settings: Settings) -> int:
    if settings.credentials_path.is_dir():
        return _refused(f"--credentials-file {settings.credentials_path} is a directory; name the file the bootstrap"
                        " tokens go to", 2)
    try:
        # Before the instance lock, which creates the database file when missing.
        ops_cli.check_database(settings.db, new=True)
    except (ValueError, OSError) as refused:
        return _refused(str(refused), 1)
    try:
        serve(settings)
    except (ValueError, OSError) as refused:
        return _refused(str(refused), 2 if isinstance(refused, ValueError) else 1)
    except ops_cli.SQLITE_ERRORS as failed:
        return _refused(_sqlite_message(failed, settings), 1)
    return 0


def _operate(settings: Settings, args: argparse.Namespace) -> int:
    """Runs a command other than `serve`; returns the exit status."""
    try:
        if args.command != "restore":  # restore writes its target, whether it exists or not
            # `spaces` and `tokens` open the engine, which migrates: only a database of this server.
            ops_cli.check_database(settings.db, ours=args.command in ("spaces", "tokens"))
        if ops_cli.handles(args):
            ops_cli.run(settings, args)
        else:
            print(_admin(settings, args))
        sys.stdout.flush()  # a reader gone away is then seen here, not at the interpreter's exit
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as the `audiences` CLI does. Later writes
        # to the closed pipe, such as the interpreter's final flush, go to /dev/null.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ValueError, OSError) as refused:
        return _refused(str(refused), 1)
    except AudiencesError as error:
        return _refused(error.message, 1)
    except ops_cli.SQLITE_ERRORS as failed:
        return _refused(_sqlite_message(failed, settings), 1)
    return 0


def _sqlite_message(failed: Exception, settings: Settings) -> str:
    """The one line for an error of SQLite's about the database file; any other error is raised
    again, with its traceback (a mistake of the program)."""
    message = ops_cli.explain_sqlite(failed, settings.db)
    if message is None:
        raise failed
    return message


def _refused(message: str, status: int) -> int:
    print(f"audiences-server: {message}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
