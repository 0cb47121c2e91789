"""Errors as clients expect them: a status, a machine-readable code, a sentence; no traces."""

from __future__ import annotations

import logging

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from saleskpi.domain.errors import HTTP_STATUS, SalesKpiError

log = logging.getLogger("saleskpi.surfaces.api")


def problem(status: int, code: str, message: str) -> HTTPException:
    return HTTPException(status, {"error": code, "message": message})


def install(app: FastAPI) -> None:
    @app.exception_handler(SalesKpiError)
    async def sales_kpi_error(_request: Request, exc: SalesKpiError) -> JSONResponse:
        # The one translation of the error family for HTTP: problem details with the code.
        return JSONResponse(exc.to_problem(), status_code=HTTP_STATUS[exc.kind],
                            media_type="application/problem+json")

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, dict) else {
            "error": "http_error", "message": str(exc.detail)}
        return JSONResponse(detail, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"where": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg")}
                   for e in exc.errors()]
        return JSONResponse({"error": "invalid_request", "message": "the request is invalid",
                             "details": details}, status_code=422)

    @app.exception_handler(Exception)
    async def crashed(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return JSONResponse({"error": "internal", "message": "something went wrong; it has "
                             "been logged"}, status_code=500)
