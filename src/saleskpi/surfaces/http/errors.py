"""Errors as clients expect them: a status, a machine-readable code, a sentence; no traces."""

from __future__ import annotations

import logging

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from saleskpi.domain.errors import HTTP_STATUS, ErrorKind, SalesKpiError

log = logging.getLogger("saleskpi.surfaces.api")


# Busy (another process holds the store, e.g. a CLI import): when to ask again.
RETRY_AFTER_SECONDS = 5


def retry_after(exc: SalesKpiError) -> dict[str, str] | None:
    """``Retry-After`` for a busy answer (503), none for the others."""
    return {"Retry-After": str(RETRY_AFTER_SECONDS)} if exc.kind == ErrorKind.busy else None


def problem(status: int, code: str, message: str, *,
            headers: dict[str, str] | None = None) -> HTTPException:
    return HTTPException(status, {"error": code, "message": message}, headers=headers)


def _body(status: int, code: str, message: str, **extra: object) -> JSONResponse:
    """Problem details (RFC 9457) with the legacy ``error`` and ``message`` keys."""
    return JSONResponse({"type": f"urn:saleskpi:error:{code}", "title": code,
                         "status": status, "detail": message, "error": code,
                         "message": message, **extra},
                        status_code=status, media_type="application/problem+json")


def install(app: FastAPI) -> None:
    @app.exception_handler(SalesKpiError)
    async def sales_kpi_error(_request: Request, exc: SalesKpiError) -> JSONResponse:
        # The one translation of the error family for HTTP: problem details with the code.
        return JSONResponse(exc.to_problem(), status_code=HTTP_STATUS[exc.kind],
                            media_type="application/problem+json", headers=retry_after(exc))

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, dict) else {
            "error": "http_error", "message": str(exc.detail)}
        code, message = str(detail.get("error", "http_error")), str(detail.get("message", ""))
        extra = {k: v for k, v in detail.items() if k not in ("error", "message")}
        response = _body(exc.status_code, code, message, **extra)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"where": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg")}
                   for e in exc.errors()]
        return _body(422, "invalid_request", "the request is invalid", details=details)

    @app.exception_handler(ValidationError)
    async def invalid_params(_request: Request, exc: ValidationError) -> JSONResponse:
        # A view's parameters (built by a route from what was sent) out of their bounds:
        # the request is wrong, not the server (a route's own check would say the same).
        details = [{"where": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg")}
                   for e in exc.errors()]
        return _body(422, "invalid_request", "the request is invalid", details=details)

    @app.exception_handler(Exception)
    async def crashed(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return _body(500, "internal", "something went wrong; it has been logged")
