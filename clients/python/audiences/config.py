"""Where the client finds the server's address and its tokens, so a newcomer passes nothing.

Precedence, for the address and for each scope's token: what the caller passes, then the
environment, then the credentials file the server writes on its first start.

| what | environment | default |
| --- | --- | --- |
| address | `AUDIENCES_ADDRESS` | `127.0.0.1:50051` |
| one token for every scope | `AUDIENCES_TOKEN` | |
| a scope's token | `AUDIENCES_<SCOPE>_TOKEN`: `WRITE`, `READ`, `ADMIN`, `OPERATOR` | |
| credentials file | `AUDIENCES_CREDENTIALS_FILE` | beside `AUDIENCES_DB`, else `var/credentials.json` |

The credentials file holds `{"space": ..., "tokens": {"write": ..., "read": ..., "admin": ..., "operator": ...}}`.
It is read only when a scope has no token otherwise. The default file may be absent. A file named
by the caller or `AUDIENCES_CREDENTIALS_FILE` that cannot be read or parsed, or a default file that
is there but cannot be read or parsed, counts as holding no tokens (so
`credentials_file="/nonexistent"` reads none), and `Resolved.credentials_problem` says why: a
method that then finds no token says it in its TOKEN_MISSING message, and the CLI makes it a usage
error naming the file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_ADDRESS", "SCOPES", "Resolved", "credentials_path", "resolve"]

DEFAULT_ADDRESS = "127.0.0.1:50051"
SCOPES = ("write", "read", "admin", "operator")


@dataclass(frozen=True)
class Resolved:
    """The address and tokens a client will use, and where each came from."""

    address: str
    tokens: dict[str, str]
    credentials_file: Path | None
    # Why a credentials file named by the caller or the environment, or a default one that is
    # there, gave no tokens ("" if it did, or if the default file is absent).
    credentials_problem: str = ""


def credentials_path(explicit: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """The credentials file to read: the one given, else the environment's, else the default."""
    env = os.environ if environ is None else environ
    if explicit:
        return Path(explicit)
    if env.get("AUDIENCES_CREDENTIALS_FILE"):
        return Path(env["AUDIENCES_CREDENTIALS_FILE"])
    if env.get("AUDIENCES_DB"):
        return Path(env["AUDIENCES_DB"]).parent / "credentials.json"
    return Path("var/credentials.json")


def _named(explicit: str | os.PathLike[str] | None, env: Mapping[str, str]) -> bool:
    """Whether the credentials file was named (argument or environment), not a default."""
    return bool(explicit) or bool(env.get("AUDIENCES_CREDENTIALS_FILE"))


def _file_tokens(path: Path) -> tuple[dict[str, str], str]:
    """The file's tokens, and why there are none when it cannot be read or is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        return {}, f"cannot read the credentials file {path}: {error.strerror or error}"
    except ValueError as error:  # not UTF-8, or not JSON
        return {}, f"the credentials file {path} is not JSON: {error}"
    tokens = data.get("tokens") if isinstance(data, dict) else None
    if not isinstance(tokens, dict):
        return {}, f'the credentials file {path} holds no "tokens" object, so it is not one the server wrote'
    return {k: v for k, v in tokens.items() if isinstance(v, str)}, ""


def resolve(
    address: str | None = None,
    token: str | Mapping[str, str] | None = None,
    *,
    write_token: str | None = None,
    read_token: str | None = None,
    admin_token: str | None = None,
    operator_token: str | None = None,
    credentials_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Resolved:
    """Works out the address and a token per scope.

    Args:
        address: `host:port`.
        token: One token used for every scope, or a mapping scope → token.
        write_token: The `write` token (IngestService); wins over `token`.
        read_token: The `read` token (ProfilesService); wins over `token`.
        admin_token: The `admin` token (AudienceAdminService, SyncService); wins over `token`.
        operator_token: The `operator` token (OperatorService); wins over `token`.
        credentials_file: The file the server bootstrapped; read only for scopes still missing.
        environ: The environment to read (default `os.environ`).
    """
    env = os.environ if environ is None else environ
    tokens: dict[str, str] = {}
    explicit = {"write": write_token, "read": read_token, "admin": admin_token, "operator": operator_token}
    for scope in SCOPES:
        candidates = [
            explicit[scope],
            token.get(scope) if isinstance(token, Mapping) else token,
            env.get(f"AUDIENCES_{scope.upper()}_TOKEN"),
            env.get("AUDIENCES_TOKEN"),
        ]
        found = next((c for c in candidates if c), None)
        if found:
            tokens[scope] = found
    path = credentials_path(credentials_file, env)
    from_file, problem = _file_tokens(path) if len(tokens) < len(SCOPES) else ({}, "")
    if not _named(credentials_file, env) and not path.is_file():
        problem = ""  # the default file: absent on a machine that only calls the server
    for scope in SCOPES:
        if scope not in tokens and from_file.get(scope):
            tokens[scope] = from_file[scope]
    address = address or env.get("AUDIENCES_ADDRESS") or DEFAULT_ADDRESS
    return Resolved(address, tokens, path if from_file else None, problem)
