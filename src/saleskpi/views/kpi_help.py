"""KPI definitions as data, for answers that carry the definitions they used.

Every MCP answer has ``definitions``: the definition of each KPI it used, so an
assistant can say what a number means without asking again. The definition is the
catalogue's own (``service.catalog``): names and descriptions in the reader's language,
the kind, the unit, the formula or the measures it aggregates, and which way is better.
(The catalogue list and one KPI explained, with its SQL, are ``views.catalogue``.)
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from saleskpi.catalog.load import BUILTIN, Catalog, formula_refs
from saleskpi.catalog.spec import KpiSpec, Measure
from saleskpi.domain.i18n import current_language


class KpiDefinition(BaseModel):
    key: str
    name: str = Field(description="In the caller's language.")
    description: str
    group: str
    kind: str = Field(description="simple (one aggregation), ratio (numerator / "
                      "denominator, both reported), derived (a formula over other KPIs) "
                      "or share (a slice's part of another KPI over all slices).")
    unit: str = Field(description="count, money (the reporting currency), ratio (0..1), "
                      "days, hours, minutes, seconds, months or number.")
    higher_is_better: bool
    formula: str | None = Field(description="How the value is computed from the KPIs in "
                                "uses or the measures: 'numerator / denominator', the "
                                "derived formula, 'share of <kpi>'; null for a simple KPI.")
    numerator: str | dict[str, Any] | None = Field(
        default=None, description="A ratio's numerator: a KPI key or a measure.")
    denominator: str | dict[str, Any] | None = Field(
        default=None, description="A ratio's denominator: a KPI key or a measure.")
    uses: list[str] = Field(description="The KPIs this one is computed from.")
    measures: list[dict[str, Any]] = Field(
        description="Every aggregation it needs: entity (fact view), agg, column, time "
        "(the column that places a row in a period), where (conditions), and for "
        "snapshots until / window_days / at.")
    origin: str = Field(description="builtin, or the workspace file that defines it "
                        "(kpis.yaml).")


def measure_dict(measure: Measure) -> dict[str, Any]:
    """A measure as the catalogue writes it: what it says, without the defaults."""
    out: dict[str, Any] = {"entity": measure.entity, "agg": measure.agg}
    if measure.column:
        out["column"] = measure.column
    out.update(time=measure.time, where=list(measure.where))
    rest = measure.model_dump(mode="json", exclude_defaults=True)
    out.update((k, v) for k, v in rest.items() if k not in out)
    return out


def _part(part: str | Measure | None) -> str | dict[str, Any] | None:
    return measure_dict(part) if isinstance(part, Measure) else part


def _uses(spec: KpiSpec) -> list[str]:
    if spec.kind == "ratio":
        return [p for p in (spec.numerator, spec.denominator) if isinstance(p, str)]
    if spec.kind == "share":
        return [spec.of] if spec.of else []
    if spec.kind == "derived":
        return formula_refs(spec.formula or "")
    return []


def _formula(spec: KpiSpec) -> str | None:
    if spec.kind == "ratio":
        return "numerator / denominator"
    if spec.kind == "share":
        return f"share of {spec.of}"
    if spec.kind == "derived":
        return spec.formula
    return None


def _origin(spec: KpiSpec) -> str:
    """builtin, or the workspace file's name (not its path on the server)."""
    if spec.origin == "builtin" or Path(spec.origin) == BUILTIN:
        return "builtin"
    return Path(spec.origin).name


def definition(catalog: Catalog, key: str, lang: str | None = None) -> KpiDefinition:
    """``key``'s definition (``CatalogError`` with "did you mean" for an unknown key)."""
    spec = catalog.get(key)
    lang = lang or current_language()
    return KpiDefinition(
        key=spec.key, name=spec.display_name(lang), description=spec.display_description(lang),
        group=spec.group, kind=spec.kind, unit=spec.unit,
        higher_is_better=spec.higher_is_better, formula=_formula(spec),
        numerator=_part(spec.numerator), denominator=_part(spec.denominator),
        uses=_uses(spec),
        measures=[measure_dict(m) for m in dict.fromkeys(catalog.measures(key))],
        origin=_origin(spec))


def definitions(catalog: Catalog, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The definitions of ``keys`` that are catalogue KPIs, as JSON, in the order given."""
    lang = current_language()
    return {key: definition(catalog, key, lang).model_dump(mode="json")
            for key in dict.fromkeys(keys) if key in catalog.kpis}
