"""Every page of the dashboard, under one router (``create_app`` includes it)."""

from __future__ import annotations

from fastapi import APIRouter

from saleskpi.surfaces.web import (
    alerts,
    catalog,
    drill,
    forecast,
    funnel,
    imports,
    login,
    overview,
    preferences,
    rankings,
    rep,
    targets,
    users,
)
from saleskpi.surfaces.web.http import WebRoute, assets

router = APIRouter(route_class=WebRoute, include_in_schema=False)
for module in (login, preferences, overview, funnel, forecast, rankings, rep, imports,
               targets, catalog, drill, users, alerts):
    router.include_router(module.router)
router.include_router(assets)  # /favicon.ico
