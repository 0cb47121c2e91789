"""MCP over streamable HTTP, at ``/mcp`` on ``saleskpi serve``: authenticated by API token.

Every request carries ``Authorization: Bearer <token>`` (``saleskpi user token``); a
missing or unknown token is answered 401 with a problem-details body, before the MCP
layer sees the request. The token's user is the caller of every tool the request
runs, so their scope applies. An MCP session belongs to the user who opened it: the
SDK's session manager refuses it (404) to a request made with another user's token.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from saleskpi.domain.errors import HTTP_STATUS, Busy, SalesKpiError, Unauthenticated
from saleskpi.domain.i18n import _
from saleskpi.service.auth import Principal, principal_for_token
from saleskpi.service.core import SalesKpiService

if TYPE_CHECKING:
    from mcp.server import ServerRequestContext
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

PATH = "/mcp"
# Where this module keeps the authenticated caller in the ASGI scope of a request.
PRINCIPAL = "saleskpi.principal"


def http_caller(ctx: ServerRequestContext[Any, Any]) -> Principal:
    """The caller of the HTTP request that carried this MCP message."""
    request = ctx.request
    principal = request.scope.get(PRINCIPAL) if isinstance(request, Request) else None
    if not isinstance(principal, Principal):
        raise Unauthenticated(_no_token(), code="not_signed_in")
    return principal


def _no_token() -> str:
    return _("send an API token as 'Authorization: Bearer <token>' (saleskpi user token "
             "USERNAME)")


class McpHttpApp:
    """The ASGI app for ``/mcp``; ``running()`` belongs in the web app's lifespan."""

    def __init__(self, service: SalesKpiService) -> None:
        self.service = service
        self._manager: StreamableHTTPSessionManager | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Serve MCP sessions while the web app runs (a new session manager each time).

        The SDK is imported here, not with the web app: pages and the REST API that
        never start the app's lifespan do not pay for it.
        """
        from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

        from saleskpi.surfaces.mcp.server import build_server

        manager = StreamableHTTPSessionManager(app=build_server(self.service, http_caller))
        async with manager.run():
            self._manager = manager
            try:
                yield
            finally:
                self._manager = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        principal, code, message = await self._authenticate(scope)
        if principal is None:
            await _problem(Unauthenticated(message, code=code), scope, receive, send,
                           {"www-authenticate": 'Bearer realm="saleskpi"'})
            return
        manager = self._manager
        if manager is None:
            await _problem(Busy(_("the MCP server is not running; try again shortly")),
                           scope, receive, send)
            return
        from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
        from mcp.server.auth.provider import AccessToken
        from starlette.authentication import AuthCredentials

        # The SDK ties a session to the user who opened it (any of their tokens may use it).
        user = AuthenticatedUser(AccessToken(token="", client_id=f"saleskpi-user-"
                                             f"{principal.user_id}", scopes=[],
                                             subject=str(principal.user_id)))
        scope = {**scope, "user": user, "auth": AuthCredentials([]), PRINCIPAL: principal}
        await manager.handle_request(scope, receive, send)

    async def _authenticate(self, scope: Scope) -> tuple[Principal | None, str, str]:
        header = Headers(scope=scope).get("authorization", "")
        scheme, _sep, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None, "not_signed_in", _no_token()
        settings = self.service.settings
        principal = await anyio.to_thread.run_sync(principal_for_token, settings,
                                                   token.strip())
        if principal is None:
            return None, "bad_token", _("the API token is not valid (issue one with "
                                        "'saleskpi user token USERNAME')")
        return principal, "", ""


async def _problem(error: SalesKpiError, scope: Scope, receive: Receive, send: Send,
                   headers: dict[str, str] | None = None) -> None:
    """The error as the REST API answers it: problem details with the code."""
    response = Response(json.dumps(error.to_problem(), ensure_ascii=False),
                        status_code=HTTP_STATUS[error.kind],
                        media_type="application/problem+json", headers=headers)
    await response(scope, receive, send)
