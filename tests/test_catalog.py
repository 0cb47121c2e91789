"""The KPI catalogue: user KPIs, errors that name file/KPI/field, docs in sync."""

from __future__ import annotations

from pathlib import Path

import pytest

from saleskpi.catalog.load import CatalogError, load_catalog
from saleskpi.catalog.reference import render_reference
from saleskpi.domain.query import KpiQuery
from saleskpi.domain.settings import Settings
from saleskpi.service.core import SalesKpiService

ROOT = Path(__file__).resolve().parents[1]
REQUIRED = {
    "leads", "calls", "meetings", "emails", "deals_won", "revenue", "win_rate",
    "average_deal_size", "pipeline_volume", "pipeline_value", "time_to_close",
    "lead_to_opportunity", "call_to_meeting_conversion", "lead_response_time",
    "speed_to_lead_5min", "sales_cycle_length",
}


def test_builtin_catalogue_has_the_foundation_kpis_in_three_languages() -> None:
    catalog = load_catalog()
    assert set(catalog.kpis) >= REQUIRED
    for spec in catalog.kpis.values():
        assert set(spec.name) >= {"en", "ru", "uk"}, spec.key
        assert set(spec.description) >= {"en", "ru", "uk"}, spec.key


def test_kpi_reference_doc_is_generated_from_the_catalogue() -> None:
    committed = (ROOT / "docs" / "kpi-reference.md").read_text(encoding="utf-8")
    assert committed == render_reference(load_catalog()), (
        "docs/kpi-reference.md is stale: run `saleskpi kpis --format markdown "
        "> docs/kpi-reference.md`"
    )


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "kpis.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("definition", "expected"),
    [
        ("- {key: wr, kind: ratio, name: {en: W}, numerator: deals_won, denominator: closd}",
         "kpi 'wr': denominator refers to unknown KPI 'closd'"),
        ("- {key: x, name: {en: X}, entity: deals, time: closed_at, where: [\"stauts == 'won'\"]}",
         "kpi 'x': definition: where refers to unknown column 'stauts' of deals"),
        ("- {key: y, name: {en: Y}, entity: dealz, time: closed_at}",
         "kpi 'y': definition: unknown entity 'dealz'"),
        ("- {key: z, name: {en: Z}, entity: deals, agg: sum, time: closed_at}",
         "kpi 'z': definition: agg 'sum' needs a column"),
        ("- {key: d, kind: derived, name: {en: D}, formula: 'revenue / (deals_won'}",
         "kpi 'd': formula"),
        ("- {key: loop, kind: derived, name: {en: L}, formula: 'loop + 1'}",
         "refers to itself"),
        ("- {key: evil, kind: derived, name: {en: E}, formula: \"__import__('os')\"}",
         "kpi 'evil': formula: only + - * / numbers and KPI names are allowed"),
    ],
)
def test_wrong_user_kpi_names_file_kpi_and_field(
        tmp_path: Path, definition: str, expected: str) -> None:
    path = _write(tmp_path, "kpis:\n" + definition + "\n")
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    message = str(info.value)
    assert str(path) in message
    assert expected in message


def test_user_kpi_works_like_a_builtin_one(tmp_path: Path) -> None:
    """'Revenue from referrals' and 'meetings per call' without code."""
    workspace = tmp_path / "ws"
    data = tmp_path / "data"
    data.mkdir()
    (data / "reps.csv").write_text("id,name\nr1,Ann\nr2,Bob\n", encoding="utf-8")
    (data / "leads.csv").write_text(
        "id,created_at,rep_id,source\nL1,2024-01-01,r1,referral\nL2,2024-01-02,r1,web\n"
        "L3,2024-01-03,r2,referral\n", encoding="utf-8")
    (data / "deals.csv").write_text(
        "id,rep_id,status,lead_id,amount,closed_at\n"
        "D1,r1,won,L1,100,2024-02-01\nD2,r1,won,L2,50,2024-02-01\n"
        "D3,r2,lost,L3,70,2024-02-02\n", encoding="utf-8")
    workspace.mkdir()
    (workspace / "kpis.yaml").write_text(
        """kpis:
  - key: referral_revenue
    name: {en: Revenue from referrals, ru: Выручка от рекомендаций}
    unit: money
    entity: deals
    agg: sum
    column: amount_rc
    time: closed_at
    where: ["status == 'won'"]
  - key: revenue_per_lead
    kind: derived
    unit: money
    name: {en: Revenue per lead}
    formula: revenue / leads
""", encoding="utf-8")
    service = SalesKpiService(Settings(workspace=workspace))
    assert service.import_path(data, mapping=None, source=None, dry_run=False).ok
    card = service.scorecard(KpiQuery(("referral_revenue", "revenue_per_lead"),
                                      by=("rep",), where=(("source", ("referral",)),)))
    values = {r.keys["rep"]: (r.values["referral_revenue"].value,
                              r.values["revenue_per_lead"].value) for r in card.rows}
    # r1: D1 (referral lead L1) 100 won; one referral lead -> 100 per lead.
    # r2: D3 lost -> 0 revenue over one referral lead.
    assert values == {"r1": (100, 100), "r2": (0, 0)}
