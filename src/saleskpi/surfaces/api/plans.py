"""REST v1: Plan vs actual, reverse plan and targets (the same JSON as the CLI's ``--format json``)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1")
