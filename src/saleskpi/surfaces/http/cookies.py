"""The session cookie is HTTPS-only whenever the request came over HTTPS.

Starlette's ``SessionMiddleware`` marks the cookie ``Secure`` for every answer
(``serve --secure-cookies``) or for none. This middleware, around it, adds ``Secure``
to the session cookie of an answer to a request that arrived over HTTPS (directly,
or through a trusted proxy saying so), so a server behind TLS protects the cookie
without the option.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from saleskpi.surfaces.http.proxies import TrustedProxies


class SecureCookieOverHttps:
    def __init__(self, app: ASGIApp, *, cookie: str, proxies: TrustedProxies) -> None:
        self.app = app
        self.prefix = cookie + "="
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.proxies.is_https(scope):
            await self.app(scope, receive, send)
            return

        async def send_secure(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                cookies = headers.getlist("set-cookie")
                if any(c.startswith(self.prefix) for c in cookies):
                    del headers["set-cookie"]
                    for cookie in cookies:
                        headers.append("set-cookie", secure(cookie)
                                       if cookie.startswith(self.prefix) else cookie)
            await send(message)

        await self.app(scope, receive, send_secure)


def secure(cookie: str) -> str:
    """``cookie`` (a Set-Cookie value) with the ``Secure`` attribute."""
    attributes = [part.strip().lower() for part in cookie.split(";")[1:]]
    return cookie if "secure" in attributes else cookie + "; secure"
