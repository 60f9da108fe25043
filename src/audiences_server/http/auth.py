"""Who is calling over HTTP: Segment's HTTP Basic (the token as user name, an empty password)."""

from __future__ import annotations

import base64

from aiohttp import web

from audiences_server.engine.auth import Auth
from audiences_server.errors import PermissionDenied, Unauthenticated
from audiences_server.store.spaces import Grant


def basic_token(request: web.Request) -> str | None:
    """The user name of the request's `Authorization: Basic …` header, or None without one.

    Raises:
        Unauthenticated: the header is there but is not HTTP Basic with a token as user name.
    """
    headers = request.headers.getall("Authorization", [])
    if not headers:
        return None
    if len(headers) > 1:
        raise Unauthenticated("send exactly one Authorization header", reason="TOKEN_MALFORMED")
    kind, _, encoded = headers[0].partition(" ")
    if kind.lower() != "basic" or not encoded:
        raise Unauthenticated("Authorization must be HTTP Basic, the token as user name", reason="TOKEN_MALFORMED")
    try:
        user, _, _password = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
    except ValueError:  # binascii.Error, UnicodeDecodeError, and text that is not ASCII (bytes of a raw header)
        raise Unauthenticated("the Basic credentials are not valid base64 of user:password",
                              reason="TOKEN_MALFORMED") from None
    if not user:
        raise Unauthenticated("the Basic user name (the token) is empty", reason="TOKEN_MISSING")
    return user


def granted(auth: Auth, token: str | None, scope: str) -> Grant:
    """The grant of a token for a scope.

    Raises:
        Unauthenticated: no token, or one the server does not know.
        PermissionDenied: a known token of another scope.
    """
    if not token:
        raise Unauthenticated("missing credentials: HTTP Basic with the token as user name", reason="TOKEN_MISSING")
    grant = auth.grant(token)
    if grant.scope != scope:
        raise PermissionDenied(
            f"this call needs a `{scope}` token; the token given has scope `{grant.scope}`",
            reason="SCOPE_MISSING", metadata={"required_scope": scope, "token_scope": grant.scope},
        )
    return grant
