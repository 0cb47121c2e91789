"""Which reverse proxies are believed, and what their headers say about the client.

Only the peers listed in the ``trusted_proxies`` setting (addresses or networks) may
name the client's address (``X-Forwarded-For``) or say the client used HTTPS
(``X-Forwarded-Proto``); from anybody else those headers are ignored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    def __init__(self, proxies: Iterable[str] = ()) -> None:
        self.networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(p, strict=False) for p in proxies)

    def is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def _peer_trusted(self, scope: Scope) -> bool:
        client = scope.get("client")
        return bool(self.networks) and client is not None and self.is_trusted(str(client[0]))

    def client_address(self, request: Request) -> str:
        """The client's address, from X-Forwarded-For only when a trusted proxy sent it."""
        peer = request.client.host if request.client else "?"
        if not self._peer_trusted(request.scope):
            return peer
        forwarded = [a.strip() for header in request.headers.getlist("x-forwarded-for")
                     for a in header.split(",") if a.strip()]
        address = peer
        for hop in reversed(forwarded):  # nearest first: each trusted proxy names the next
            address = hop
            if not self.is_trusted(hop):
                break
        return address

    def is_https(self, scope: Scope) -> bool:
        """The client reached us over HTTPS: directly (uvicorn serving TLS), or through a
        trusted proxy that says so in X-Forwarded-Proto.

        Any ``https`` in the proxies' header counts: a client that forges it only makes
        its own cookie HTTPS-only, while missing a real one would send a session
        cookie over plain HTTP.
        """
        if scope.get("scheme") in ("https", "wss"):
            return True
        if not self._peer_trusted(scope):
            return False
        protos = [p.strip().lower() for header in Headers(scope=scope).getlist(
            "x-forwarded-proto") for p in header.split(",")]
        return "https" in protos
