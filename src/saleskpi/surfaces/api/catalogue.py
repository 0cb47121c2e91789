"""REST v1: The KPI catalogue: list, explain, edit (the same JSON as the CLI's ``--format json``)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1")
