"""The KPI catalogue: the list, one KPI explained, and the workspace's own KPIs edited.

One shape for every surface: names and descriptions in the reader's language
(``lang``; by default the caller's), with ``user_defined`` marking the workspace's
own KPIs (kpis.yaml), the ones a manager may edit or delete.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from saleskpi.catalog.load import formula_refs
from saleskpi.catalog.spec import KpiSpec, Measure
from saleskpi.domain.errors import InvalidQuery, NotFound
from saleskpi.domain.i18n import LANGUAGES, _
from saleskpi.domain.query import make_query, plain_number
from saleskpi.service.core import SalesKpiService
from saleskpi.service.explain import kpi_sql
from saleskpi.service.principal import Principal
from saleskpi.views.base import (
    Filtered,
    PageInfo,
    Paging,
    RangeInfo,
    ViewModel,
    paged,
    range_info,
    require_manager,
)


class CatalogueParams(Paging):
    lang: str | None = Field(default=None,
                             description="Language of names and descriptions: en, ru or uk "
                             "(default: the caller's).")


class CatalogueEntry(BaseModel):
    key: str
    name: str = Field(description="The display name in the reader's language.")
    kind: str = Field(description="simple, ratio, derived or share.")
    unit: str
    group: str
    description: str = Field(description="The definition in the reader's language.")
    higher_is_better: bool
    user_defined: bool = Field(description="The workspace's own KPI (kpis.yaml): editable.")
    origin: str = Field(description="builtin, or kpis.yaml for the workspace's own KPIs.")


class CatalogueView(ViewModel):
    lang: str
    kpis: list[CatalogueEntry]
    page: PageInfo


def _lang(params_lang: str | None, caller: Principal) -> str:
    lang = params_lang or caller.lang or "en"
    if lang not in LANGUAGES:
        raise InvalidQuery(_("unknown language {lang!r}; use one of {known}", lang=lang,
                             known=", ".join(LANGUAGES)), code="bad_lang")
    return lang


def _entry(spec: KpiSpec, lang: str, own: set[str]) -> CatalogueEntry:
    mine = spec.key in own
    return CatalogueEntry(
        key=spec.key, name=spec.display_name(lang), kind=spec.kind, unit=spec.unit,
        group=spec.group, description=spec.display_description(lang),
        higher_is_better=spec.higher_is_better, user_defined=mine,
        origin="kpis.yaml" if mine else "builtin")


def catalogue(service: SalesKpiService, caller: Principal,
              params: CatalogueParams) -> CatalogueView:
    """Every KPI, in catalogue order (the built-in ones, then the workspace's own)."""
    lang = _lang(params.lang, caller)
    own = {str(i.get("key")) for i in service.user_kpis()}
    entries = [_entry(s, lang, own) for s in service.catalog.kpis.values()]
    items, page = paged(entries, params)
    view: CatalogueView = CatalogueView(lang=lang, kpis=items, page=page).with_source(
        service.catalog)
    return view


# -- explain ----------------------------------------------------------------------------
class MeasureInfo(BaseModel):
    """One aggregation a KPI needs: which rows, which column, which conditions."""

    role: str = Field(description="value (a simple KPI), numerator, denominator, "
                      "formula (a KPI the formula uses) or of (what a share divides).")
    kpi: str | None = Field(description="The KPI this measure belongs to, when another one.")
    entity: str = Field(description="The fact view: leads, deals, activities, ...")
    agg: str
    column: str | None
    time: str = Field(description="The time column that puts a row in a period.")
    where: list[str] = Field(description="Conditions on the view's columns.")
    until: str | None = Field(description="Snapshot: rows open from time until this column.")
    window_days: int | None = Field(description="Snapshot: rows in the days before the instant.")
    at: str = Field(description="Snapshot instant: the period's end or start.")


class CompiledSql(BaseModel):
    entity: str
    time: str
    columns: dict[str, str] = Field(description="Result column -> 'entity.agg(column)'.")
    sql: str


class KpiExplanation(ViewModel):
    key: str
    lang: str
    name: str
    kind: str
    unit: str
    group: str
    description: str
    higher_is_better: bool
    user_defined: bool
    entity: str | None = Field(description="The fact view of a simple KPI.")
    measures: list[MeasureInfo]
    formula: str | None
    of: str | None = Field(description="The KPI a share KPI is a part of.")
    depends_on: list[str] = Field(description="Other KPIs this one is computed from.")
    sql: list[CompiledSql] | None = Field(
        description="The SQL for all time, no slices, no filters (DuckDB); null when the "
        "data cannot be opened now.")


def _measure(role: str, kpi: str | None, m: Measure) -> MeasureInfo:
    return MeasureInfo(role=role, kpi=kpi, entity=m.entity, agg=m.agg, column=m.column,
                       time=m.time, where=list(m.where), until=m.until,
                       window_days=m.window_days, at=m.at)


class ExplainParams(BaseModel):
    key: str = Field(description="The KPI's key, e.g. win_rate.")
    lang: str | None = Field(default=None, description="Language of the name and description: "
                             "en, ru or uk (default: the caller's).")


def explain_kpi(service: SalesKpiService, caller: Principal,
                params: ExplainParams) -> KpiExplanation:
    """One KPI's definition, its measures and the SQL it runs as."""
    key = params.key
    catalog = service.catalog
    if key not in catalog.kpis:
        try:
            catalog.get(key)  # the message with close matches
        except InvalidQuery as exc:
            raise NotFound(exc.message, code="unknown_kpi") from None
    spec = catalog.kpis[key]
    lang = _lang(params.lang, caller)
    measures: list[MeasureInfo] = []
    depends: list[str] = []

    def part(role: str, ref: str | Measure | None) -> None:
        if ref is None:
            return
        if isinstance(ref, Measure):
            measures.append(_measure(role, None, ref))
            return
        depends.append(ref)
        measures.extend(_measure(role, ref, m) for m in catalog.measures(ref))

    if spec.kind == "simple":
        measures.append(_measure("value", None, spec.measure()))
    elif spec.kind == "ratio":
        part("numerator", spec.numerator)
        part("denominator", spec.denominator)
    elif spec.kind == "share":
        part("of", spec.of)
    else:
        for ref in formula_refs(spec.formula or ""):
            part("formula", ref)
    compiled = kpi_sql(service, spec.key)
    entry = _entry(spec, lang, {str(i.get("key")) for i in service.user_kpis()})
    view: KpiExplanation = KpiExplanation(
        **entry.model_dump(exclude={"origin"}), lang=lang,
        entity=spec.entity if spec.kind == "simple" else None, measures=measures,
        formula=spec.formula, of=spec.of, depends_on=list(dict.fromkeys(depends)),
        sql=None if compiled is None else [
            CompiledSql(entity=c.entity, time=c.time, sql=c.sql,
                        columns={col: _label(m) for col, m in c.columns.items()})
            for c in compiled],
    ).with_source(spec)
    return view


def _label(m: Measure) -> str:
    return f"{m.entity}.{m.agg}({m.column or '*'})"


# -- editing the workspace's own KPIs ---------------------------------------------------
class PutKpiParams(BaseModel):
    key: str
    definition: dict[str, Any] = Field(
        description="The KPI as kpis.yaml writes it: kind, name {en, ru, uk}, unit, "
        "entity/agg/column/time/where, numerator/denominator, formula ...")


class KpiKey(BaseModel):
    key: str


class KpiSaved(ViewModel):
    ok: bool = True
    key: str


def put_kpi(service: SalesKpiService, caller: Principal, params: PutKpiParams) -> KpiSaved:
    """Add or replace a workspace KPI; refused (``bad_kpi``) if the catalogue would break."""
    require_manager(caller)
    service.put_kpi(params.key, params.definition)
    return KpiSaved(key=params.key)


def delete_kpi(service: SalesKpiService, caller: Principal, params: KpiKey) -> KpiSaved:
    """Remove a workspace KPI (``not_found`` for a built-in or unknown one)."""
    require_manager(caller)
    service.delete_kpi(params.key)
    return KpiSaved(key=params.key)


class PreviewKpiParams(Filtered):
    key: str = Field(description="The key the KPI would be saved under.")
    definition: dict[str, Any] = Field(
        description="The KPI as kpis.yaml writes it (as for saving it).")


class KpiPreview(ViewModel):
    key: str
    unit: str
    value: int | float | None = Field(description="The KPI over the dates and filters, "
                                      "within the caller's scope.")
    numerator: int | float | None = Field(description="A ratio's numerator (null "
                                          "otherwise).")
    denominator: int | float | None
    range: RangeInfo = Field(description="The days covered (default: month to date).")
    where: dict[str, list[str]]


def preview_kpi(service: SalesKpiService, caller: Principal,
                params: PreviewKpiParams) -> KpiPreview:
    """A KPI computed before it is saved, as saving would check it: nothing is written."""
    require_manager(caller)
    dates = params.dates(service)
    query = make_query([params.key], start=dates.start, end=dates.end, where=params.where)
    card = service.preview_kpi(params.key, params.definition, query, caller.scope)
    found = card.rows[0].values[params.key] if card.rows else None
    unit = card.units.get(params.key) or str(params.definition.get("unit") or "count")
    view: KpiPreview = KpiPreview(
        key=params.key, unit=found.unit if found else unit,
        value=plain_number(found.value) if found else None,
        numerator=plain_number(found.numerator) if found and found.is_ratio else None,
        denominator=plain_number(found.denominator) if found and found.is_ratio else None,
        range=range_info(dates, service), where={dim: list(v) for dim, v in query.where},
    ).with_source(found)
    return view

