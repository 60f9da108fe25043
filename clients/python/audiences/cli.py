"""`audiences`: the command line for an Audiences server, built only on `audiences.Client`.

The address and tokens come from flags, then the environment (`AUDIENCES_ADDRESS`,
`AUDIENCES_TOKEN`, `AUDIENCES_WRITE_TOKEN`, `AUDIENCES_READ_TOKEN`, `AUDIENCES_ADMIN_TOKEN`,
`AUDIENCES_OPERATOR_TOKEN`, `AUDIENCES_CREDENTIALS_FILE`), then the `var/credentials.json` the
server wrote on first start, so on a fresh `make run` no flag is needed. Tables for people; `--json` for scripts.

Exit status: 0 done, 1 the server refused (or a definition is invalid), 2 bad usage (also what
the client refuses before calling: a TLS or credentials file it cannot read or use, no token or a
malformed one, an address whose port is not 1 to 65535, a string that cannot be sent), 3 the
server cannot be reached or did not answer within --timeout.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import grpc

from audiences import _cli_computations, _cli_events, _cli_insight, _cli_operator, _cli_profiles, _cli_sync
from audiences._base import MAX_TIMEOUT, DefaultTimeout
from audiences._cli_args import positive
from audiences.client import Client
from audiences.errors import AudiencesError, InvalidArgument

EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE = 1, 2, 3
# Seconds a call may take when --timeout is not given; `tick` may take 600 then (see Client.run_tick),
# and `audiences export` an hour (Client.export_audience).
DEFAULT_TIMEOUT = 60.0


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree."""
    parser = argparse.ArgumentParser(
        prog="audiences",
        description="Talk to an Audiences server: send events, manage audiences and "
        "computed traits, read profiles, follow changes.",
        epilog="Address and tokens: flags, then AUDIENCES_* environment variables, then the server's "
        "credentials file (var/credentials.json).",
    )
    parser.add_argument("--address", help="server host:port (env AUDIENCES_ADDRESS, default 127.0.0.1:50051)")
    parser.add_argument("--token", help="one token for every scope (env AUDIENCES_TOKEN)")
    for scope in ("write", "read", "admin", "operator"):
        parser.add_argument(f"--{scope}-token", help=f"the `{scope}` token (env AUDIENCES_{scope.upper()}_TOKEN)")
    parser.add_argument(
        "--credentials-file",
        help="the server's credentials.json (env AUDIENCES_CREDENTIALS_FILE, default var/credentials.json)",
    )
    parser.add_argument("--tls-ca-file", help="connect with TLS, trusting this PEM CA file (env AUDIENCES_TLS_CA_FILE)")
    parser.add_argument("--tls-cert-file", help="client certificate for mutual TLS (env AUDIENCES_TLS_CERT_FILE)")
    parser.add_argument("--tls-key-file", help="private key of --tls-cert-file (env AUDIENCES_TLS_KEY_FILE)")
    parser.add_argument(
        "--timeout",
        type=positive("seconds", MAX_TIMEOUT, f"{MAX_TIMEOUT:,.0f}"),
        help=f"seconds a call may take (default {DEFAULT_TIMEOUT:g}, and 600 for `tick`; "
        "given, it applies to `tick` too)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _cli_events.register(commands)
    _cli_computations.register(commands)
    _cli_profiles.register(commands)
    _cli_sync.register(commands)
    _cli_operator.register(commands)
    _cli_insight.register(commands)
    _accept_json_anywhere(commands)
    return parser


def _accept_json_anywhere(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Adds `--json` to every command, so it may come after the command too
    (`audiences audiences list --json`). Its default is left unset so that a `--json` given
    before the command is kept."""
    for sub in set(commands.choices.values()):
        if not any("--json" in action.option_strings for action in sub._actions):
            sub.add_argument(
                "--json", action="store_true", default=argparse.SUPPRESS, help="print JSON instead of tables"
            )
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):
                _accept_json_anywhere(action)


def _client(args: argparse.Namespace) -> Client:
    return Client(
        args.address,
        args.token,
        write_token=args.write_token,
        read_token=args.read_token,
        admin_token=args.admin_token,
        operator_token=args.operator_token,
        credentials_file=args.credentials_file,
        timeout=DefaultTimeout(DEFAULT_TIMEOUT) if args.timeout is None else args.timeout,
        tls_ca_file=args.tls_ca_file,
        tls_cert_file=args.tls_cert_file,
        tls_key_file=args.tls_key_file,
    )


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


# Words of gRPC's UNAVAILABLE message when the connection was made but closed at once, or a TLS
# handshake failed: what a TLS server does with a plain-text client, and the other way round.
_CLOSED = ("socket closed", "connection reset", "end of file", "handshake", "ssl", "tls")


def _refused_locally(error: InvalidArgument) -> str:
    """What the client refused before calling, in the CLI's words (its flags, not keyword arguments)."""
    if error.reason == "TOKEN_MALFORMED":
        scope = error.metadata.get("scope", "?")
        return (
            f"the `{scope}` token is malformed: a token is printable ASCII without spaces, but this one has "
            f"{error.metadata.get('character', '?')} at position {error.metadata.get('position', '?')}.\n"
            f"Check --{scope}-token / --token, AUDIENCES_{scope.upper()}_TOKEN / AUDIENCES_TOKEN, "
            "or the credentials file."
        )
    if error.reason == "TLS_FILE_UNREADABLE":
        option = error.metadata.get("option", "")
        return f"{error.message} (--{option.replace('_', '-')} or AUDIENCES_{option.upper()})"
    if error.reason == "ADDRESS_INVALID":
        return f"{error.message} (--address or AUDIENCES_ADDRESS)"
    return error.message


def _unreachable(error: AudiencesError, address: str, tls: bool, reached: bool) -> str:
    """Why the server at `address` could not be reached, with a hint when it looks like TLS
    (unless it had answered this command before: then it went away)."""
    said = f"cannot reach the Audiences server at {address}: {error.message}\n"
    if reached:
        return said + "It had answered this command before: it stopped or restarted meanwhile; try again."
    closed = any(word in error.message.lower() for word in _CLOSED)
    if closed and not tls:
        return said + (
            "It closed the connection at once: is it serving TLS? Then pass --tls-ca-file "
            "(or set AUDIENCES_TLS_CA_FILE)."
        )
    if "wrong_version_number" in error.message.lower():
        return said + "It does not answer in TLS: is it serving plain text? Then leave out --tls-ca-file."
    if "certificate_verify_failed" in error.message.lower():
        return said + "Its certificate is not one the CA in --tls-ca-file (AUDIENCES_TLS_CA_FILE) signed."
    if closed:
        return said + (
            "The TLS handshake failed: is the server serving TLS with a certificate the CA in --tls-ca-file "
            "signed, and does it ask for a client certificate (--tls-cert-file, --tls-key-file)?"
        )
    return said + "Is it running (`make run`)? Otherwise pass --address or set AUDIENCES_ADDRESS."


def explain(  # noqa: PLR0911 - one answer per kind of failure
    error: AudiencesError,
    address: str,
    *,
    timeout: float | None = None,
    tls: bool = False,
    credentials_problem: str = "",
    reached: bool = False,
) -> tuple[str, int]:
    """What to tell a person about a failed call, and the exit status.

    `timeout` is the client's (the error's metadata `timeout` wins: the one the call had);
    `tls` whether the client spoke TLS, for the hint when the connection closed at once;
    `credentials_problem` why a credentials file named by --credentials-file or
    AUDIENCES_CREDENTIALS_FILE gave no tokens, which is then the reason a token is missing;
    `reached` whether the server had answered the command before it failed.
    """
    # A tracking call the client refuses as the server would (metadata `code`, the server's
    # rejection code: no ids, no event, too large) is a refused call, not a usage mistake.
    if isinstance(error, InvalidArgument) and "code" not in error.metadata:
        return _refused_locally(error), EXIT_USAGE
    if error.reason == "TOKEN_MISSING" and credentials_problem:
        return (
            f"{credentials_problem} (--credentials-file or AUDIENCES_CREDENTIALS_FILE); it was to give the "
            f"`{error.metadata.get('required_scope', '?')}` token this command needs",
            EXIT_USAGE,
        )
    if error.code == grpc.StatusCode.UNAVAILABLE and error.reason:
        # The server answered: it is reachable, and says what it is waiting for (a cluster's
        # front: SHARD_UNAVAILABLE, LOG_UNAVAILABLE; any server: SHUTTING_DOWN, WRITER_SATURATED).
        return f"the server is unavailable for now ({error.reason}): {error.message}; try again", EXIT_UNREACHABLE
    if error.code == grpc.StatusCode.UNAVAILABLE:
        return _unreachable(error, address, tls, reached), EXIT_UNREACHABLE
    if error.code == grpc.StatusCode.DEADLINE_EXCEEDED and not error.reason:
        seconds = error.metadata.get("timeout") or (f"{timeout:g}" if timeout is not None else "")
        within = f"within {seconds} s" if seconds else "in time"
        return (
            f"no answer from the Audiences server at {address} {within} (DEADLINE_EXCEEDED).\n"
            "Is it running and not stopped or overloaded? A call that needs longer takes --timeout SECONDS.",
            EXIT_UNREACHABLE,
        )
    if error.reason == "SCOPE_MISSING":
        needed = error.metadata.get("required_scope", "?")
        given = error.metadata.get("token_scope", "?")
        return (
            f"this command needs {_article(needed)} `{needed}` token, but the token given has scope `{given}`.\n"
            f"Pass --{needed}-token or set AUDIENCES_{needed.upper()}_TOKEN.",
            EXIT_REFUSED,
        )
    if error.reason == "TOKEN_MISSING" and "required_scope" in error.metadata:
        scope = error.metadata["required_scope"]
        return (
            f"no `{scope}` token: pass --{scope}-token (or --token), set AUDIENCES_{scope.upper()}_TOKEN, "
            "or point --credentials-file (AUDIENCES_CREDENTIALS_FILE) at the server's credentials.json",
            EXIT_USAGE,  # refused before calling: nothing was sent
        )
    if error.code == grpc.StatusCode.UNAUTHENTICATED:
        return (
            f"the server refused the token ({error.reason or error.code.name}): {error.message}\n"
            "Check --token / AUDIENCES_TOKEN, or the credentials file.",
            EXIT_REFUSED,
        )
    if error.reason == "INVALID_DEFINITION":
        return f"invalid definition:\n{error.message}", EXIT_REFUSED
    if error.code == grpc.StatusCode.UNIMPLEMENTED:
        return f"the server does not implement this yet: {error.message}", EXIT_REFUSED
    lines = [f"{error.code.name}" + (f" {error.reason}" if error.reason else "") + f": {error.message}"]
    lines += [f"  {v.field}: {v.description}" for v in error.violations if v.description != error.message]
    return "\n".join(lines), EXIT_REFUSED


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        client = _client(args)
    except AudiencesError as error:  # a TLS file the client cannot use, a timeout it refuses
        message, refused = explain(error, args.address or "")
        print(f"audiences: {message}", file=sys.stderr)
        return refused
    except ValueError as bad:
        parser.error(str(bad))
    try:
        status: int = args.handler(client, args)
        return status
    except AudiencesError as error:
        message, status = explain(
            error,
            client.address,
            timeout=client.timeout,
            tls=client.channel_credentials is not None,
            credentials_problem=client.credentials_problem,
            reached=client.reached,
        )
        print(f"audiences: {message}", file=sys.stderr)
        return status
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly. Later writes to the closed pipe, such as
        # the interpreter's final flush, go to /dev/null instead of printing a second error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ValueError, OSError) as bad:
        print(f"audiences: {bad}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    finally:
        client.close(timeout=5)


if __name__ == "__main__":
    sys.exit(main())
