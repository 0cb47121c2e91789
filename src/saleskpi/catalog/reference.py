"""The KPI reference (docs/kpi-reference.md), generated from the catalogue.

A test regenerates it and compares, so the docs cannot drift from the code.
"""

from __future__ import annotations

from saleskpi.catalog.load import Catalog
from saleskpi.catalog.spec import KpiSpec, Measure
from saleskpi.domain.schema import DERIVED_COLUMNS

GROUP_TITLES = {"activity": "Activity", "funnel": "Pipeline and funnel", "money": "Money",
                "speed": "Speed", "other": "Other"}
AGG_TEXT = {"count": "count of rows", "count_distinct": "count of distinct", "sum": "sum of",
            "avg": "mean of", "median": "median of", "p90": "90th percentile of",
            "min": "minimum of", "max": "maximum of"}


def _measure_text(m: Measure) -> str:
    what = AGG_TEXT[m.agg] + (f" `{m.column}`" if m.column else "")
    text = f"{what} in `{m.entity}`"
    if m.where:
        text += " where " + " and ".join(f"`{w}`" for w in m.where)
    if m.until:
        text += f", open at the period's end (`{m.time}` ≤ end < `{m.until}`)"
    else:
        text += f", placed in periods by `{m.time}`"
    return text


def _formula(spec: KpiSpec) -> str:
    if spec.kind == "simple":
        return _measure_text(spec.measure())
    if spec.kind == "ratio":
        parts = []
        for part in (spec.numerator, spec.denominator):
            assert part is not None
            parts.append(f"`{part}`" if isinstance(part, str) else f"({_measure_text(part)})")
        return f"{parts[0]} / {parts[1]}; value, numerator and denominator are reported"
    return f"`{spec.formula}`"


def render_reference(catalog: Catalog) -> str:
    lines = [
        "# KPI reference",
        "",
        "Generated from the built-in catalogue (`src/saleskpi/catalog/builtin.yaml`) by",
        "`saleskpi kpis --format markdown`; a test fails when this file is out of date.",
        "Durations are measured in seconds and shown in the KPI's unit; money is in the",
        "reporting currency, added up as decimals: a sum of money is exact on every",
        "backend and run. All medians and percentiles are exact on DuckDB.",
        "",
    ]
    groups: dict[str, list[KpiSpec]] = {}
    for spec in catalog.kpis.values():
        groups.setdefault(spec.group, []).append(spec)
    for group, specs in groups.items():
        lines += [f"## {GROUP_TITLES.get(group, group.title())}", ""]
        for spec in specs:
            names = " / ".join(spec.name[lang] for lang in ("en", "ru", "uk") if lang in
                               spec.name)
            lines += [
                f"### `{spec.key}`: {names}",
                "",
                spec.description.get("en", ""),
                "",
                f"- kind: {spec.kind}; unit: {spec.unit}; "
                f"{'higher' if spec.higher_is_better else 'lower'} is better",
                f"- formula: {_formula(spec)}",
                f"- needs: {', '.join(sorted(_entities(catalog, spec)))}",
                "",
            ]
    lines += ["## Derived columns of the fact views", ""]
    for view, columns in DERIVED_COLUMNS.items():
        for name, meaning in columns.items():
            lines.append(f"- `{view}.{name}`: {meaning}")
    return "\n".join(lines).rstrip() + "\n"


def _entities(catalog: Catalog, spec: KpiSpec) -> set[str]:
    needs = {m.entity for m in catalog.measures(spec.key)}
    for m in catalog.measures(spec.key):
        columns = {m.column, m.time, m.until} | {w.split()[0] for w in m.where}
        if m.entity == "leads" and columns & {"first_contact_at", "response_s", "has_call",
                                              "meeting_after_call"}:
            needs.add("activities")
        if m.entity == "leads" and columns & {"has_deal", "processing_s"}:
            needs.add("deals")
        if m.entity == "deals" and "cycle_s" in columns:
            needs |= {"leads", "activities"}
        if m.entity == "deals" and "amount_rc" in columns:
            needs.add("fx_rates (only for other currencies)")
    return needs
