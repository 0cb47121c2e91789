"""REST v1: Reps, users and API tokens (the same JSON as the CLI's ``--format json``)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1")
