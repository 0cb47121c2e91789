"""REST v1: The KPI catalogue: list, explain, edit.

The same JSON as the CLI's ``--format json``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from saleskpi.surfaces.api.people import ManagerCaller
from saleskpi.surfaces.api.routes import RANGE_HELP
from saleskpi.surfaces.http.deps import ServiceDep, UserDep, csrf_header
from saleskpi.surfaces.http.params import Limit, Offset
from saleskpi.views.base import DEFAULT_LIMIT
from saleskpi.views.catalogue import (
    CatalogueParams,
    CatalogueView,
    ExplainParams,
    KpiExplanation,
    KpiKey,
    KpiPreview,
    KpiSaved,
    PreviewKpiParams,
    PutKpiParams,
    catalogue,
    delete_kpi,
    explain_kpi,
    preview_kpi,
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


@router.post("/catalog/{key}/preview", response_model=KpiPreview,
             response_model_by_alias=True, dependencies=[Depends(csrf_header)])
def preview(key: str, definition: dict[str, Any], user: ManagerCaller, svc: ServiceDep,
            start: Annotated[dt.date | None, Query(alias="from")] = None,
            end: Annotated[dt.date | None, Query(alias="to")] = None,
            where: Annotated[list[str], Query(description="DIM=VALUE[,VALUE]")] = [],  # noqa: B006
            range: Annotated[str | None, Query(description=RANGE_HELP)] = None
            ) -> dict[str, Any]:
    """A KPI definition (the body, as for PUT) computed before it is saved, checked as
    saving checks it; nothing is written. Without from/to: month to date."""
    params = PreviewKpiParams(key=key, definition=definition, start=start, end=end,
                              where=where, range=range)
    return preview_kpi(svc, user, params).to_json()

