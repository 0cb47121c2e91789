"""The FastAPI application factory: API, webhooks (and web pages), one service."""

from __future__ import annotations

import hashlib

from fastapi import FastAPI
from starlette.middleware.sessions import SessionMiddleware

from saleskpi import web
from saleskpi.api import errors, routes, webhooks
from saleskpi.connectors.credentials import workspace_key
from saleskpi.service import SalesKpiService
from saleskpi.settings import Settings

SESSION_COOKIE = "saleskpi_session"


def create_app(settings: Settings, *, secure_cookies: bool = False) -> FastAPI:
    """``secure_cookies``: send the session cookie over HTTPS only (behind TLS)."""
    app = FastAPI(title="saleskpi", version="0.1.0",
                  description="Sales KPIs: the same numbers as the saleskpi CLI.")
    if settings.cache_seconds == 0:
        # Twenty people opening the same dashboard should not compute it twenty times.
        settings = settings.model_copy(update={"cache_seconds": 30.0})
    app.state.service = SalesKpiService(settings, shared_writer=True)
    # The session key is derived from the workspace secret, never written in code.
    session_key = hashlib.sha256(b"session:" + workspace_key(settings)).hexdigest()
    app.add_middleware(SessionMiddleware, secret_key=session_key,
                       session_cookie=SESSION_COOKIE, same_site="lax",
                       https_only=secure_cookies, max_age=12 * 3600)
    errors.install(app)
    app.include_router(routes.router)
    app.include_router(webhooks.router(settings))
    app.include_router(web.router)
    app.mount("/static", web.static_files(), name="static")

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
