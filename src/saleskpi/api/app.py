"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI

from saleskpi.api import webhooks
from saleskpi.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(title="saleskpi", version="0.1.0")
    app.include_router(webhooks.router(settings))

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
