"""The web console at `/console`: its pages (built static assets) and the JSON API they call.

The pages are one HTML file and the bundle `static/console.js` (Preact and htm, built by esbuild
from `web/`, committed so that the server needs no Node). They hold no state of their own: what
they show is read from the API on each visit. See docs/console.md.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from audiences_server.http.console import api

STATIC = Path(__file__).parent / "static"
# The pages load only their own files: no CDN, no inline script, nothing framed elsewhere.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
ASSETS = {"console.js": "text/javascript", "console.css": "text/css"}


def add_routes(app: web.Application) -> None:
    """Adds `/console` (the pages), `/console/static/…` (their assets) and the API."""
    app.router.add_get("/console", _page)
    app.router.add_get("/console/", _page)
    app.router.add_get("/console/static/{name}", _asset)
    api.add_routes(app)


def _file(name: str, content_type: str) -> web.Response:
    response = web.Response(body=(STATIC / name).read_bytes(), content_type=content_type, charset="utf-8")
    response.headers.update(SECURITY_HEADERS)
    return response


async def _page(_request: web.Request) -> web.Response:
    return _file("index.html", "text/html")


async def _asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in ASSETS:
        raise web.HTTPNotFound()
    return _file(name, ASSETS[name])
