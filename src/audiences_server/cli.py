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
from audiences_server.settings import Settings, add_arguments, resolve


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="audiences-server", description="The Audiences server.")
    commands = parser.add_subparsers(dest="command", required=True)
    add_arguments(commands.add_parser("serve", help="run the gRPC server"))
    spaces = commands.add_parser("spaces", help="manage spaces").add_subparsers(dest="action", required=True)
    create = spaces.add_parser("create", help="create a space")
    create.add_argument("name")
    add_arguments(create)
    add_arguments(spaces.add_parser("list", help="list spaces"))
    origins = spaces.add_parser("origins", help="show or set the web origins whose pages may send a space's calls"
                                " over HTTP from a browser (CORS)")
    origins.add_argument("name")
    origins.add_argument("origin", nargs="*", help="scheme://host[:port], or * for any; replaces the space's list")
    origins.add_argument("--clear", action="store_true", help="allow no origin")
    add_arguments(origins)
    tokens = commands.add_parser("tokens", help="manage tokens").add_subparsers(dest="action", required=True)
    token = tokens.add_parser("create", help="issue a token; it is printed once and stored only hashed")
    token.add_argument("--space", required=True)
    token.add_argument("--scope", required=True, choices=SCOPES)
    token.add_argument("--label", default="")
    add_arguments(token)
    ops_cli.register(commands, tokens)
    cluster_roles.register(commands)
    return parser


def _admin(settings: Settings, args: argparse.Namespace) -> str:
    logs.configure("console", "warning")
    engine = Engine(settings)
    try:
        now = engine.clock.now_ms()
        if args.command == "spaces" and args.action == "create":
            return f"created space {engine.auth.create_space(args.name, now).name}"
        if args.command == "spaces" and args.action == "origins":
            return _origins(Origins(engine.writer, engine.readers), args)
        if args.command == "spaces":
            return "\n".join(space.name for space in engine.auth.list_spaces())
        return engine.auth.create_token(args.space, args.scope, now, args.label).token
    finally:
        engine.close()


def _origins(origins: Origins, args: argparse.Namespace) -> str:
    if args.clear and args.origin:
        raise InvalidArgument("give origins to allow, or --clear, not both", reason="ARGUMENTS_INVALID")
    allowed = origins.set(args.name, args.origin) if args.clear or args.origin else origins.of_space(args.name)
    return "\n".join(allowed) if allowed else f"space {args.name} allows no origin"


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "cluster":
        return cluster_roles.run(args)
    return _command(args)


def _command(args: argparse.Namespace) -> int:
    try:
        settings = resolve(vars(args), os.environ)
    except ValueError as bad:
        print(f"audiences-server: {bad}", file=sys.stderr)
        return 2
    if args.command == "serve":
        try:
            serve(settings)
        except (ValueError, OSError) as refused:
            print(f"audiences-server: {refused}", file=sys.stderr)
            return 2 if isinstance(refused, ValueError) else 1
        return 0
    try:
        if ops_cli.handles(args):
            ops_cli.run(settings, args)
        else:
            print(_admin(settings, args))
    except (ValueError, OSError) as refused:
        print(f"audiences-server: {refused}", file=sys.stderr)
        return 1
    except AudiencesError as error:
        print(f"audiences-server: {error.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
