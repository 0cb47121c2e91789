"""REST v1: bonuses, their explanation, the what-if and the payroll workbook (the same
JSON as ``saleskpi bonus … --format json``), within the caller's scope."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.responses import Response

from saleskpi.surfaces.http.deps import ServiceDep, UserDep
from saleskpi.surfaces.payroll import payroll_workbook
from saleskpi.views.bonus import (
    PERIOD_HELP,
    BonusParams,
    BonusView,
    ExplainView,
    RepParams,
    WhatIfView,
    bonuses,
    explain,
    whatif,
)

router = APIRouter(prefix="/api/v1")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PeriodQuery = Annotated[str | None, Query(description=PERIOD_HELP, max_length=40)]
PlanQuery = Annotated[str | None, Query(description="Only this plan (its name).",
                                        max_length=200)]
RepQuery = Annotated[str | None, Query(description="Rep id or name (default: the caller's "
                                       "own).", max_length=200)]
TeamQuery = Annotated[str | None, Query(description="Only this team's reps.", max_length=200)]


@router.get("/bonus", response_model=BonusView, response_model_by_alias=True)
def get_bonuses(user: UserDep, svc: ServiceDep, period: PeriodQuery = None,
                rep: Annotated[str | None, Query(description="Only this rep (id or name).",
                                                 max_length=200)] = None,
                team: TeamQuery = None, plan: PlanQuery = None,
                lines: Annotated[bool, Query(description="With every line of the "
                                             "computation.")] = False) -> dict[str, Any]:
    """Every rep's bonus per plan the caller may see (a rep: their own; a team lead: their
    team's), for the plans' periods containing `period`; money as decimal strings."""
    params = BonusParams(period=period, rep=rep, team=team, plan=plan, lines=lines)
    return bonuses(svc, user, params).to_json()


@router.get("/bonus/explain", response_model=ExplainView, response_model_by_alias=True)
def explain_bonus(user: UserDep, svc: ServiceDep, rep: RepQuery = None,
                  period: PeriodQuery = None, plan: PlanQuery = None) -> dict[str, Any]:
    """How the rep's bonus was computed, line by line (404 `unknown_rep` for a rep outside
    the caller's scope)."""
    return explain(svc, user, RepParams(rep=rep, period=period, plan=plan)).to_json()


@router.get("/bonus/whatif", response_model=WhatIfView, response_model_by_alias=True)
def whatif_bonus(user: UserDep, svc: ServiceDep, rep: RepQuery = None,
                 period: PeriodQuery = None, plan: PlanQuery = None) -> dict[str, Any]:
    """What the next tier (or a one-off) takes and pays, with the calls and meetings a
    working day left needs."""
    return whatif(svc, user, RepParams(rep=rep, period=period, plan=plan)).to_json()


@router.get("/bonus/export", response_class=Response,
            responses={200: {"content": {XLSX: {}}, "description": "The payroll workbook."}})
def export_bonuses(user: UserDep, svc: ServiceDep, period: PeriodQuery = None,
                   team: TeamQuery = None, plan: PlanQuery = None) -> Response:
    """The payroll workbook (XLSX) of the bonuses the caller may see: a sheet with one
    row per rep and the total, a sheet with every line of the computation."""
    view = bonuses(svc, user, BonusParams(period=period, team=team, plan=plan, lines=True))
    name = f"payroll-{view.day}.xlsx"
    return Response(payroll_workbook(view), media_type=XLSX,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
