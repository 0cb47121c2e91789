"""Security headers on every API answer, and the API's docs served by the app itself.

FastAPI's ``/docs`` and ``/redoc`` load Swagger UI and ReDoc from a CDN: they fail
offline and would need a Content-Security-Policy that trusts another host. Here the
assets come from the ``fastapi-offline`` package (Swagger UI 5, which reads OpenAPI
3.1, and ReDoc), under ``/docs/assets``, started by scripts of ours (no inline
script), so the pages' policy allows their own origin only.

API answers (``/api``, ``/webhooks``, ``/mcp``, ``/health``, ``/openapi.json``) are
JSON, never a page: their policy allows nothing, they are never cached, and they
send no referrer. The web pages set their own headers (``saleskpi.surfaces.web.http``).
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_PREFIXES = ("/api/", "/webhooks/", "/mcp", "/health", "/openapi.json")
DOCS = "/docs"
DOCS_ASSETS = "/docs/assets"
API_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; "
                               "base-uri 'none'; form-action 'none'; sandbox",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
# Swagger UI and ReDoc set style attributes from script: styles inline are allowed,
# scripts only from this origin (ReDoc's worker from a blob of it).
DOCS_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; worker-src blob:; "
                               "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                               "font-src 'self' data:; connect-src 'self'; base-uri 'none'; "
                               "form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>saleskpi API</title>
{head}<link rel="icon" type="image/png" href="/docs/assets/favicon.png">
</head>
<body>
<div id="{element}"></div>
<script src="/docs/assets/{bundle}"></script>
<script src="/docs/{start}"></script>
</body>
</html>
"""
SWAGGER_PAGE = PAGE.format(
    head='<link rel="stylesheet" href="/docs/assets/swagger-ui.css">\n',
    element="swagger-ui", bundle="swagger-ui-bundle.js", start="swagger.js")
REDOC_PAGE = PAGE.format(head="", element="redoc", bundle="redoc.standalone.js",
                         start="redoc.js")
SWAGGER_SCRIPT = """window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
"""
REDOC_SCRIPT = """Redoc.init("/openapi.json", {}, document.getElementById("redoc"));
"""
REPLACED = ("/docs", "/redoc", "/docs/oauth2-redirect")


def docs_assets() -> Path:
    """Swagger UI and ReDoc as the ``fastapi-offline`` package ships them."""
    return Path(str(importlib.resources.files("fastapi_offline"))) / "static"


class SecurityHeaders:
    """Adds the headers above to answers under the API's paths (and to the docs)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", "")) if scope["type"] == "http" else ""
        wanted = headers_for(path)
        if not wanted:
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", []))
                headers = MutableHeaders(scope=message)
                for name, value in wanted.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def headers_for(path: str) -> dict[str, str]:
    if path.startswith(API_PREFIXES):
        return API_HEADERS
    if path in (DOCS, "/redoc") or path.startswith(DOCS + "/"):
        cache = "public, max-age=86400" if path.startswith(DOCS_ASSETS + "/") else "no-store"
        return {**DOCS_HEADERS, "Cache-Control": cache}
    return {}


def install(app: FastAPI) -> None:
    """Security headers on API answers; ``/docs`` and ``/redoc`` from local assets."""
    kept: list[BaseRoute] = [r for r in app.router.routes
                             if getattr(r, "path", None) not in REPLACED]
    app.router.routes[:] = kept
    app.docs_url, app.redoc_url = DOCS, "/redoc"
    app.swagger_ui_oauth2_redirect_url = None

    @app.get(DOCS, include_in_schema=False)
    def swagger() -> HTMLResponse:
        return HTMLResponse(SWAGGER_PAGE)

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return HTMLResponse(REDOC_PAGE)

    @app.get(DOCS + "/swagger.js", include_in_schema=False)
    def swagger_script() -> Response:
        return Response(SWAGGER_SCRIPT, media_type="text/javascript")

    @app.get(DOCS + "/redoc.js", include_in_schema=False)
    def redoc_script() -> Response:
        return Response(REDOC_SCRIPT, media_type="text/javascript")

    app.mount(DOCS_ASSETS, StaticFiles(directory=docs_assets()), name="docs-assets")
    app.add_middleware(SecurityHeaders)
