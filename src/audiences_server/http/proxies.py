"""Proxies in front of the HTTP listener, and the client a request is from behind one.

Behind a TLS-terminating load balancer or reverse proxy (nginx, an ELB, Envoy) every connection
comes from the proxy's few addresses: the per-address connection cap and body budgets would
treat all traffic as one client, and the log would name the proxy. The operator names the
proxies (`--trusted-proxies`, docs/operations.md "Behind a proxy"); a connection from one of them
has no per-address cap (`http.connections`), and each of its requests is from the client its
X-Forwarded-For names: the header read from the right, past the addresses of trusted proxies
(each proxy appends the address it got the request from), the first address that is not one.
What is further left was written by the client, or by proxies no one vouches for, and is never
read. A connection from any other peer is its own client, whatever it sends.

Only X-Forwarded-For is read, not RFC 7239's `Forwarded`: the proxies commonly put in front
(nginx, ELB and ALB, Envoy, HAProxy) maintain X-Forwarded-For and pass a `Forwarded` header on as
the client sent it, so reading it as well would take a client's own word for its address.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence

import structlog
from aiohttp import web

from audiences_server.settings import IPNetwork

log = structlog.get_logger("audiences_server.http")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# The address of the client a request is from (the peer, or whom a trusted proxy forwards for),
# set by the application's middleware for the routes and the log.
CLIENT = web.RequestKey("client", str)
# Whether the request came from a trusted proxy (its connection's peer is one), set beside CLIENT.
FROM_PROXY = web.RequestKey("from_proxy", bool)

# An X-Forwarded-For entry with a port, as some proxies write it: `[2001:db8::1]:443`, `[2001:db8::1]`,
# `192.0.2.7:443`.
_WITH_PORT = re.compile(r"\[(?P<v6>[0-9A-Fa-f:.]+)\](?::[0-9]{1,5})?|(?P<v4>[0-9.]+):[0-9]{1,5}")


class Proxies:
    """The networks whose peers are trusted to say, in X-Forwarded-For, whom they forward for."""

    def __init__(self, networks: Sequence[IPNetwork] = ()) -> None:
        self._networks = tuple(networks)

    def __bool__(self) -> bool:
        return bool(self._networks)

    def trusts(self, host: str | None) -> bool:
        """Whether a peer (its address as the socket gives it) is a trusted proxy."""
        if not self._networks or not host:
            return False
        address = address_of(host.partition("%")[0])  # a link-local peer's zone is the socket's own
        return address is not None and self._trusted(address)

    def client(self, peer: str, forwarded_for: Iterable[str]) -> str:
        """The client of a request a trusted proxy (`peer`) sent, given its X-Forwarded-For headers
        in order: the rightmost address that is not a trusted proxy's (every one is: the leftmost,
        the first proxy, which made the request itself). A header absent, empty, or with an entry
        that is not an IP address where it is read gives the peer: the proxy vouches for no one
        else (logged at debug; the request is served as any other)."""
        entries = [entry for header in forwarded_for for entry in header.split(",")]
        address: IPAddress | None = None
        for entry in reversed(entries):
            text = entry.strip()
            if not text:
                continue  # an empty element of a list, which HTTP allows
            address = address_of(text)
            if address is None:
                log.debug("http_forwarded_for_ignored", peer=peer, reason="malformed")
                return peer
            if not self._trusted(address):
                return str(address)
        if address is None:
            log.debug("http_forwarded_for_ignored", peer=peer, reason="empty" if entries else "absent")
            return peer
        return str(address)

    def _trusted(self, address: IPAddress) -> bool:
        return any(address in network for network in self._networks)


def address_of(text: str) -> IPAddress | None:
    """An IP address as a header or a socket writes it (an IPv4-mapped IPv6 address as the IPv4 it
    maps; in brackets or with a port as some proxies write them); None when it is not one, or has
    a zone (`%eth0`: free text after an address, which would reach the log)."""
    with_port = _WITH_PORT.fullmatch(text)
    if with_port is not None:
        text = with_port.group("v6") or with_port.group("v4")
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id is not None:
            return None
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
    return address


def client_address(request: web.Request) -> str:
    """The address of the client a request is from (see `CLIENT`); the peer's before the
    middleware ran."""
    return request.get(CLIENT) or request.remote or ""
