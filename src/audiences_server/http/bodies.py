"""Request bodies as their Content-Encoding says, inflated here rather than by aiohttp.

aiohttp inflates gzip, deflate, br and zstd on its own unless told not to, and both ways it goes
wrong at this edge: an encoding it names but has no decoder for (br without Brotli, zstd) is
answered with its own plain-text 400 before any route runs, and a body that fails to inflate
leaves the request's stream in error, which aiohttp then logs as unhandled (plain text, outside
the JSON log) while dropping the connection under the client's next request. The listener turns
that off (`auto_decompress=False`, in `app`), so every route gets the body as sent, and the
routes that read a body (the tracking API, the console's API) inflate it with this module: an
encoding the server does not take is the route's own JSON error, and a body that fails to
inflate leaves the stream intact, to be drained before the connection's next request.
"""

from __future__ import annotations

import zlib

from aiohttp import web

from audiences_server.errors import FieldViolation, InvalidArgument

IDENTITY = frozenset({"", "identity"})
COMPRESSED = frozenset({"gzip", "deflate"})
# Names HTTP reads as another's (RFC 9110 §8.4.1.3: a recipient should take `x-gzip` as gzip).
_ALIASES = {"x-gzip": "gzip"}
# gzip's header and trailer around deflate data; zlib's own (RFC 1950) for `deflate`.
_GZIP_WBITS = 16 + zlib.MAX_WBITS


class BadEncoding(ValueError):
    """A body that is not valid data of its Content-Encoding."""


def content_encoding(request: web.Request) -> str:
    """The request's Content-Encoding in lower case: "", identity, gzip (also sent as x-gzip) or deflate.

    Raises:
        InvalidArgument: `CONTENT_ENCODING_UNSUPPORTED`, another encoding, or several (a body
            encoded twice, or two headers that disagree: neither is trusted over the other).
    """
    encoding = ", ".join(request.headers.getall("Content-Encoding", [])).strip().lower()
    encoding = _ALIASES.get(encoding, encoding)
    if encoding not in IDENTITY | COMPRESSED:
        raise InvalidArgument(f"Content-Encoding {encoding!r} is not supported; send gzip, deflate or none",
                              reason="CONTENT_ENCODING_UNSUPPORTED",
                              violations=[FieldViolation("Content-Encoding", "not gzip or deflate")])
    return encoding


class Inflater:
    """Inflates a gzip or deflate body a chunk at a time, never more bytes than asked for.

    A gzip body may hold several members one after the other (as concatenated files do), each
    inflated in turn. A deflate body is zlib's format, or raw deflate when its first byte is not
    a zlib header (some clients send that, and aiohttp took it).
    """

    def __init__(self, encoding: str) -> None:
        self._gzip = encoding == "gzip"
        # The current member's inflater; None before the first and after each member's end.
        self._member: zlib._Decompress | None = None

    def inflate(self, data: bytes, room: int) -> bytes:
        """The next inflated bytes of the body, at most `room + 1` of them: more than `room`
        means the body inflates past it, and the rest is not inflated at all (a compression
        bomb costs no more than `room`).

        Raises:
            BadEncoding: the data is not gzip or deflate.
        """
        out = []
        budget = room + 1  # never 0: zlib reads a max_length of 0 as "no limit"
        try:
            while data and budget > 0:
                if self._member is None:
                    self._member = zlib.decompressobj(self._wbits(data))
                piece = self._member.decompress(data, budget)
                out.append(piece)
                budget -= len(piece)
                if self._member.eof:
                    data, self._member = self._member.unused_data, None
                else:
                    data = self._member.unconsumed_tail
        except zlib.error as bad:
            raise BadEncoding(str(bad)) from None
        return b"".join(out)

    def finish(self) -> None:
        """Checks that the body did not end inside a member (cut short, or its trailer missing).

        Raises:
            BadEncoding: it did.
        """
        if self._member is not None:
            raise BadEncoding("the compressed data ends before its end")

    def _wbits(self, data: bytes) -> int:
        if self._gzip:
            return _GZIP_WBITS
        # A zlib header's first byte names the deflate method (8) in its low four bits.
        return zlib.MAX_WBITS if data[0] & 0x0F == 8 else -zlib.MAX_WBITS


def inflated(data: bytes, encoding: str, limit: int) -> bytes:
    """A whole body read as `encoding` says, at most `limit + 1` bytes (more than `limit`: too large).

    Raises:
        BadEncoding: the body is not valid data of its encoding.
    """
    if encoding not in COMPRESSED:
        return data
    inflater = Inflater(encoding)
    body = inflater.inflate(data, limit)
    if len(body) <= limit:
        inflater.finish()
    return body
