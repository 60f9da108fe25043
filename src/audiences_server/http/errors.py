"""Domain errors as HTTP responses: one status per gRPC code, and a JSON body saying why."""

from __future__ import annotations

from aiohttp import web

from audiences_server.errors import AudiencesError

# The HTTP status of each error code (the usual mapping of gRPC codes to HTTP).
HTTP_STATUS = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,  # an HTTP route's own (no gRPC code is one)
    "ALREADY_EXISTS": 409,
    "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "INTERNAL": 500,
}


def error_response(error: AudiencesError, request: web.Request) -> web.Response:
    """The response for a domain error: `{"error": {"code", "reason", "message"}}` with its status."""
    status = HTTP_STATUS.get(error.code, 500)
    body = {"error": {"code": error.code, "reason": error.reason, "message": error.message}}
    response = web.json_response(body, status=status)
    if status in (429, 503):
        response.headers["Retry-After"] = error.metadata.get("retry_after_s", "1")
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="audiences"'
    return response
