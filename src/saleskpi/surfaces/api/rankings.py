"""REST v1: Comparison and leaderboard (the same JSON as the CLI's ``--format json``)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1")
