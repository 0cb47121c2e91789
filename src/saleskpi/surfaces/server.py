"""The FastAPI application factory: API, webhooks (and web pages), one service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI
from starlette.middleware.sessions import SessionMiddleware
from starlette.routing import Route

from saleskpi.domain.errors import Conflict
from saleskpi.domain.i18n import _
from saleskpi.domain.settings import Settings
from saleskpi.service.alert_hooks import watch_imports
from saleskpi.service.auth import session_secret
from saleskpi.service.core import SalesKpiService
from saleskpi.service.refresh import Refresher
from saleskpi.surfaces import web
from saleskpi.surfaces.api import (
    alerts as alert_routes,
)
from saleskpi.surfaces.api import (
    bonus,
    catalogue,
    contests,
    drill,
    forecast,
    funnel,
    imports,
    people,
    plans,
    rankings,
    reports,
    routes,
    syncs,
    webhooks,
)
from saleskpi.surfaces.http import errors, security
from saleskpi.surfaces.http.cookies import SecureCookieOverHttps
from saleskpi.surfaces.http.deps import LoginThrottle
from saleskpi.surfaces.mcp.http import PATH as MCP_PATH
from saleskpi.surfaces.mcp.http import McpHttpApp

if TYPE_CHECKING:
    import socket

    import uvicorn

    from saleskpi.service.scheduler import JobRunner

SESSION_COOKIE = "saleskpi_session"
SERVER_CACHE_SECONDS = 3600.0


def create_app(settings: Settings, *, secure_cookies: bool = False,
               refresh: bool = False) -> FastAPI:
    """``secure_cookies``: send the session cookie over HTTPS only (behind TLS); without
    it the cookie is still HTTPS-only on answers to requests that came over HTTPS
    (``saleskpi.surfaces.http.cookies``).

    ``refresh``: keep what the pages asked computed in the background
    (``saleskpi.service.refresh``); ``saleskpi serve`` turns it on. What runs on timers
    (syncs, reports, alerts) is ``background_jobs``.
    """
    if settings.cache_seconds == 0:
        # Twenty people opening the same dashboard should not compute it twenty times.
        # Answers are dropped as soon as the data changes; the age limit is for
        # figures that move with the clock (open pipeline now, this month so far).
        settings = settings.model_copy(update={"cache_seconds": SERVER_CACHE_SECONDS})
    service = SalesKpiService(settings, shared_writer=True)
    alert_hook = watch_imports(service)  # alerts are evaluated after each import
    # MCP for AI assistants at /mcp (streamable HTTP, API tokens): saleskpi.surfaces.mcp.
    mcp_app = McpHttpApp(service)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        refresher = Refresher(service) if refresh else None
        _app.state.refresher = refresher
        if refresher is not None:
            refresher.start()
        try:
            async with mcp_app.running():
                yield
        finally:
            if refresher is not None:
                refresher.stop()

    app = FastAPI(title="saleskpi", version="0.1.0", lifespan=lifespan,
                  description="Sales KPIs: the same numbers as the saleskpi CLI.")
    app.state.service = service
    app.state.alert_hook = alert_hook
    # Per app, not per process: failed sign-ins against one server do not lock another.
    # X-Forwarded-For counts only from the proxies the settings name (none by default).
    throttle = LoginThrottle(trusted_proxies=settings.trusted_proxies)
    app.state.login_throttle = throttle
    # The session key is derived from the workspace secret, never written in code.
    session_key = session_secret(settings)
    app.add_middleware(SessionMiddleware, secret_key=session_key,
                       session_cookie=SESSION_COOKIE, same_site="lax",
                       https_only=secure_cookies, max_age=12 * 3600)
    # Around it: the cookie is Secure anyway when the request came over HTTPS.
    app.add_middleware(SecureCookieOverHttps, cookie=SESSION_COOKIE, proxies=throttle.proxies)
    errors.install(app)
    security.install(app)  # API security headers; /docs from local assets
    app.include_router(routes.router)
    for area in (alert_routes, bonus, catalogue, contests, drill, forecast, funnel, imports,
                 people, plans, rankings, reports, syncs):
        app.include_router(area.router, tags=[area.__name__.rsplit(".", 1)[-1]])
    app.include_router(webhooks.router(settings))
    app.include_router(web.router)
    app.mount("/static", web.static_files(), name="static")
    app.router.routes.append(Route(MCP_PATH, mcp_app, include_in_schema=False))

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def background_jobs(app: FastAPI, settings: Settings, *, sync_minutes: float) -> JobRunner:
    """What ``saleskpi serve`` runs beside the app, one thread per job: CRM syncs every
    ``sync_minutes`` (0: none), the scheduled reports (reports.yaml) and the alert rules
    (alerts.yaml). More jobs register on the runner (``app.state.jobs``) with ``add``;
    ``wake(name)`` runs one at once."""
    from saleskpi.service.alert_scheduler import AlertJob
    from saleskpi.service.scheduler import JobRunner, SyncScheduler
    from saleskpi.surfaces.reports.jobs import add_report_job

    runner = JobRunner()
    service = app.state.service
    SyncScheduler(settings, sync_minutes, runner)
    add_report_job(runner, service)
    alerts = AlertJob(service, runner)
    # From now on the alert job evaluates after an import, in its own thread: a page's
    # or the API's import answers without waiting for the alerts.
    service.after_import.remove(app.state.alert_hook)
    service.after_import.append(alerts.after_import)
    app.state.jobs = runner
    return runner


def server_config(app: FastAPI, *, host: str, port: int) -> uvicorn.Config:
    """The uvicorn configuration ``saleskpi serve`` runs ``app`` with (a ``uvicorn.Config``).

    uvicorn's own proxy headers are off: by default it believes X-Forwarded-For from
    127.0.0.1, which let one client pose as many (the sign-in throttle reads the
    header itself, from the proxies in the ``trusted_proxies`` setting only).
    """
    import uvicorn

    return uvicorn.Config(app, host=host, port=port, log_level="info", proxy_headers=False)


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to host:port, or ``Conflict`` (``port_in_use``) saying it is taken.

    Bound before the server says it is listening, so a taken port is reported as
    such instead of after a "listening on" line that was never true.
    """
    import socket as sockets

    try:
        infos = sockets.getaddrinfo(host, port, type=sockets.SOCK_STREAM)
    except sockets.gaierror as exc:
        raise Conflict(_("cannot listen on {host}:{port}: {reason}", host=host, port=port,
                         reason=exc.strerror or str(exc)), code="bad_address") from None
    family, kind, proto, _name, address = infos[0]
    sock = sockets.socket(family, kind, proto)
    sock.setsockopt(sockets.SOL_SOCKET, sockets.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise Conflict(_("cannot listen on {host}:{port}: the port is taken by another "
                         "program ({reason}); stop it or choose another with --port",
                         host=host, port=port, reason=exc.strerror or str(exc)),
                       code="port_in_use") from None
    sock.set_inheritable(True)
    return sock


def serve(app: FastAPI, *, host: str, port: int, sock: socket.socket | None = None) -> None:
    """Run ``app`` under uvicorn until stopped, as ``saleskpi serve`` does (on ``sock``,
    bound by ``listen``, if given)."""
    import uvicorn

    server = uvicorn.Server(server_config(app, host=host, port=port))
    server.run(sockets=[sock] if sock is not None else None)
