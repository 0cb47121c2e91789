"""Every page of the dashboard, under one router (``create_app`` includes it)."""

from __future__ import annotations

from fastapi import APIRouter

from saleskpi.surfaces.web import (
    alerts,
    bonus,
    catalog,
    contests,
    drill,
    forecast,
    funnel,
    imports,
    login,
    notifications,
    overview,
    preferences,
    rankings,
    rep,
    target_grid,
    targets,
    users,
)
from saleskpi.surfaces.web.http import WebRoute, assets

router = APIRouter(route_class=WebRoute, include_in_schema=False)
for module in (login, preferences, overview, funnel, forecast, rankings, contests, rep, bonus,
               imports, targets, target_grid, catalog, drill, users, notifications, alerts):
    router.include_router(module.router)
router.include_router(assets)  # /favicon.ico
