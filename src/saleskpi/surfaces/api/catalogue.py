"""REST v1: The KPI catalogue: list, explain, edit.

The same JSON as the CLI's ``--format json``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from saleskpi.surfaces.api.people import ManagerCaller
from saleskpi.surfaces.http.deps import ServiceDep, UserDep, csrf_header
from saleskpi.surfaces.http.params import Limit, Offset
from saleskpi.views.base import DEFAULT_LIMIT
from saleskpi.views.catalogue import (
    CatalogueParams,
    CatalogueView,
    ExplainParams,
    KpiExplanation,
    KpiKey,
    KpiSaved,
    PutKpiParams,
    catalogue,
    delete_kpi,
    explain_kpi,
    put_kpi,
)

router = APIRouter(prefix="/api/v1")


@router.get("/catalog", response_model=CatalogueView)
def catalog(user: UserDep, svc: ServiceDep, lang: str | None = None,
            limit: Limit = DEFAULT_LIMIT, offset: Offset = 0) -> dict[str, Any]:
    """Every KPI (`saleskpi kpis --format json`); names in `lang` (default: yours)."""
    return catalogue(svc, user, CatalogueParams(lang=lang, limit=limit, offset=offset)).to_json()


@router.get("/catalog/{key}", response_model=KpiExplanation)
def explain(key: str, user: UserDep, svc: ServiceDep, lang: str | None = None) -> dict[str, Any]:
    """One KPI explained (`saleskpi kpis KEY --format json`): measures, formula, SQL."""
    return explain_kpi(svc, user, ExplainParams(key=key, lang=lang)).to_json()


@router.put("/catalog/{key}", response_model=KpiSaved, dependencies=[Depends(csrf_header)])
def save_kpi(key: str, definition: dict[str, Any], user: ManagerCaller,
             svc: ServiceDep) -> dict[str, Any]:
    """Add or replace a workspace KPI in kpis.yaml (validated with the whole catalogue)."""
    return put_kpi(svc, user, PutKpiParams(key=key, definition=definition)).to_json()


@router.delete("/catalog/{key}", response_model=KpiSaved, dependencies=[Depends(csrf_header)])
def remove_kpi(key: str, user: ManagerCaller, svc: ServiceDep) -> dict[str, Any]:
    """Remove a workspace KPI (built-in ones cannot be removed)."""
    return delete_kpi(svc, user, KpiKey(key=key)).to_json()
