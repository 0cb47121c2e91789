"""The demo company generator: a realistic company that honours the data contract."""

from __future__ import annotations

import datetime as dt
import re

import pandas as pd
import pytest

from saleskpi.domain.schema import ENTITIES, ColumnType
from saleskpi.sources.demo import generate_company

END = dt.date(2025, 6, 30)
ENTITY_NAMES = {
    "reps", "leads", "deals", "stage_changes", "activities", "accounts", "products", "revenue",
    "spend", "forecasts", "targets",
}
# A forecast field, not an event: open deals are expected to close after today.
NOT_EVENTS = {("deals", "expected_close_at")}


@pytest.fixture(scope="module")
def company() -> dict[str, pd.DataFrame]:
    return generate_company(1.0, seed=42, end=END)


def first_outbound_contact(company: dict[str, pd.DataFrame]) -> pd.Series:
    acts = company["activities"]
    out = acts[acts["type"].isin(["call", "email"]) & (acts["direction"] == "out")]
    return out.groupby("lead_id")["occurred_at"].min()


def test_same_seed_gives_equal_frames(company: dict[str, pd.DataFrame]) -> None:
    again = generate_company(1.0, seed=42, end=END)
    assert again.keys() == company.keys()
    for name, frame in company.items():
        pd.testing.assert_frame_equal(again[name], frame, obj=name)


def test_another_seed_gives_another_company(company: dict[str, pd.DataFrame]) -> None:
    other = generate_company(1.0, seed=7, end=END)
    assert not other["leads"]["created_at"].equals(company["leads"]["created_at"])


def test_columns_are_the_contract(company: dict[str, pd.DataFrame]) -> None:
    assert set(company) == ENTITY_NAMES
    for name, frame in company.items():
        expected = list(ENTITIES[name].column_names)
        if name == "leads":
            expected.append("utm_campaign")
        assert list(frame.columns) == expected, name


def test_dtypes_follow_column_types(company: dict[str, pd.DataFrame]) -> None:
    expected = {
        ColumnType.TEXT: "object",
        ColumnType.TIMESTAMP: "datetime64[us]",
        ColumnType.DATE: "datetime64[us]",
        ColumnType.MONEY: "float64",
        ColumnType.NUMBER: "float64",
        ColumnType.INTEGER: "Int64",
        ColumnType.BOOLEAN: "boolean",
    }
    for name, frame in company.items():
        for column in ENTITIES[name].columns:
            assert str(frame[column.name].dtype) == expected[column.type], (name, column.name)
            if column.type is ColumnType.MONEY:
                values = frame[column.name].dropna()
                assert (values.round(2) == values).all(), (name, column.name)
            if column.type is ColumnType.DATE:
                values = frame[column.name].dropna()
                assert (values == values.dt.normalize()).all(), (name, column.name)
    # Missing text is None, not NaN.
    assert company["reps"].loc[company["reps"]["role"] == "head", "team"].iloc[0] is None


def test_required_columns_are_filled_and_choices_respected(
    company: dict[str, pd.DataFrame],
) -> None:
    for name, frame in company.items():
        for column in ENTITIES[name].columns:
            if column.required:
                assert frame[column.name].notna().all(), (name, column.name)
            if column.choices:
                assert set(frame[column.name].dropna()) <= set(column.choices), (name, column.name)


def test_references_point_to_existing_ids(company: dict[str, pd.DataFrame]) -> None:
    for name, frame in company.items():
        for column in ENTITIES[name].columns:
            if column.references:
                ids = set(company[column.references]["id"])
                dangling = set(frame[column.name].dropna()) - ids
                assert not dangling, (name, column.name, sorted(dangling)[:5])


def test_keys_are_unique(company: dict[str, pd.DataFrame]) -> None:
    for name, frame in company.items():
        key = list(ENTITIES[name].key)
        assert not frame.duplicated(subset=key).any(), name
    assert all(isinstance(i, str) for i in company["leads"]["id"].head())
    assert re.fullmatch(r"R\d{3}", company["reps"]["id"].iloc[0])
    assert re.fullmatch(r"L\d{6}", company["leads"]["id"].iloc[0])


def test_closed_deals_have_closed_at_and_open_deals_do_not(
    company: dict[str, pd.DataFrame],
) -> None:
    deals = company["deals"]
    closed = deals["status"].isin(["won", "lost"])
    assert deals.loc[closed, "closed_at"].notna().all()
    assert deals.loc[~closed, "closed_at"].isna().all()
    assert (deals.loc[closed, "closed_at"] >= deals.loc[closed, "created_at"]).all()
    assert set(deals["stage"]) <= {"new", "qualified", "proposal", "negotiation", "won", "lost"}
    assert (deals.loc[deals["status"] == "won", "stage"] == "won").all()


def test_deals_come_after_their_leads(company: dict[str, pd.DataFrame]) -> None:
    deals = company["deals"]
    lead_created = company["leads"].set_index("id")["created_at"]
    assert deals["lead_id"].notna().all()
    assert (deals["created_at"] > deals["lead_id"].map(lead_created)).all()
    assert set(deals["pipeline"]) == {"main", "partners"}
    assert (deals["currency"] == "USD").all()


def test_stage_history_matches_deals(company: dict[str, pd.DataFrame]) -> None:
    deals = company["deals"].set_index("id")
    changes = company["stage_changes"]
    first = changes.groupby("deal_id")["entered_at"].min()
    assert (first == deals.loc[first.index, "created_at"]).all()
    final = changes[changes["stage"].isin(["won", "lost"])].set_index("deal_id")
    assert (final["entered_at"] == deals.loc[final.index, "closed_at"]).all()
    assert (final["stage"] == deals.loc[final.index, "status"]).all()
    assert set(deals.index) == set(changes["deal_id"])


def test_first_contacts_come_after_lead_creation(company: dict[str, pd.DataFrame]) -> None:
    leads = company["leads"].set_index("id")
    first = first_outbound_contact(company)
    assert (first > leads.loc[first.index, "created_at"]).all()
    acts = company["activities"].dropna(subset=["lead_id"])
    assert (acts["occurred_at"] > acts["lead_id"].map(leads["created_at"])).all()
    # The first activity on a lead is the outbound contact.
    earliest = acts.groupby("lead_id")["occurred_at"].min()
    assert (earliest == first.loc[earliest.index]).all()


def test_nothing_happens_on_or_after_end(company: dict[str, pd.DataFrame]) -> None:
    end = pd.Timestamp(END)
    for name, frame in company.items():
        for column in ENTITIES[name].columns:
            if column.type is ColumnType.TIMESTAMP and (name, column.name) not in NOT_EVENTS:
                assert (frame[column.name].dropna() < end).all(), (name, column.name)
    start = end - pd.DateOffset(months=12)
    assert company["leads"]["created_at"].min() >= start - pd.Timedelta(days=1)


def test_activities_happen_in_local_working_hours(company: dict[str, pd.DataFrame]) -> None:
    local = (
        company["activities"]["occurred_at"].dt.tz_localize("UTC").dt.tz_convert("Europe/Kyiv")
    )
    in_hours = (local.dt.hour >= 9) & (local.dt.hour < 19) & (local.dt.day_of_week < 5)
    assert in_hours.mean() > 0.95


def test_size_one_counts(company: dict[str, pd.DataFrame]) -> None:
    n = {name: len(frame) for name, frame in company.items()}
    assert n["reps"] == 20
    assert 5_500 <= n["leads"] <= 6_500
    assert 0.25 <= n["deals"] / n["leads"] <= 0.35
    assert 50_000 <= n["activities"] <= 70_000
    assert n["products"] == 6
    assert 300 <= n["accounts"] <= 1_000
    assert n["revenue"] >= n["accounts"]
    assert n["spend"] > 0 and n["forecasts"] > 0 and n["targets"] > 0
    counts = company["activities"]["type"].value_counts()
    assert counts.index[0] == "call" and counts.index[1] == "email"
    assert {"meeting", "proposal", "presentation", "demo", "note", "task"} <= set(counts.index)
    assert not company["activities"]["selling"].all()
    assert set(company["deals"]["status"]) == {"open", "won", "lost"}
    assert set(company["forecasts"]["category"]) == {"commit", "best_case"}
    assert set(company["targets"]["kpi"]) == {"deals_won", "revenue", "calls"}
    assert set(company["spend"]["category"]) == {"marketing", "sales"}
    assert company["accounts"]["churned_at"].notna().any()


def test_rep_structure(company: dict[str, pd.DataFrame]) -> None:
    reps = company["reps"].set_index("id")
    names = reps["name"]
    assert names.str.contains(r"[А-Яа-яІіЇїЄєҐґ]").sum() >= 5
    assert names.str.fullmatch(r"[A-Za-z ]+").sum() >= 3
    assert names.str.contains(r"[ІіЇїЄє]").any()  # Ukrainian, not only Russian
    assert names.is_unique and reps["email"].is_unique
    assert reps["team"].nunique() == 3
    head = reps.index[reps["role"] == "head"]
    assert len(head) == 1
    leads = reps[reps["role"] == "team_lead"]
    assert len(leads) == 3 and (leads["manager_id"] == head[0]).all()
    for rep_id, rep in reps[reps["role"] == "rep"].iterrows():
        assert reps.loc[rep["manager_id"], "team"] == rep["team"], rep_id
    assert reps["left_at"].notna().sum() == 1
    start = pd.Timestamp(END) - pd.DateOffset(months=12)
    assert (reps["hired_at"] > start).sum() >= 2
    assert not company["deals"]["rep_id"].isin(head).any()


def test_reps_differ_in_speed_and_results(company: dict[str, pd.DataFrame]) -> None:
    leads = company["leads"].set_index("id")
    first = first_outbound_contact(company)
    minutes = (first - leads.loc[first.index, "created_at"]).dt.total_seconds() / 60
    within_5 = (minutes <= 5).groupby(leads.loc[first.index, "rep_id"]).mean()
    assert 0.15 <= (minutes <= 5).mean() <= 0.40
    assert within_5.max() >= 0.3 and within_5.min() <= 0.2
    deals = company["deals"]
    closed = deals[deals["status"] != "open"]
    win_rate = (closed["status"] == "won").groupby(closed["rep_id"]).mean()
    assert win_rate.max() - win_rate.min() >= 0.25


def test_some_reps_are_behind_their_targets(company: dict[str, pd.DataFrame]) -> None:
    acts = company["activities"]
    calls = acts[(acts["type"] == "call") & (acts["direction"] == "out")]
    targets = company["targets"]
    past = targets[targets["period_end"] < pd.Timestamp(END)]
    planned = past[past["kpi"] == "calls"].groupby("rep_id")["value"].sum()
    made = calls[calls["occurred_at"] < past["period_end"].max()].groupby("rep_id").size()
    attainment = (made.reindex(planned.index, fill_value=0) / planned).dropna()
    assert attainment.min() < 0.9 and attainment.max() > 1.1


def test_timezone_currency_and_small_sizes() -> None:
    frames = generate_company(
        0.05, seed=1, end=dt.date(2024, 11, 5), months=3, timezone="America/New_York",
        currency="EUR",
    )
    assert len(frames["reps"]) == 4
    assert (frames["deals"]["currency"] == "EUR").all()
    end = pd.Timestamp("2024-11-05")
    assert (frames["activities"]["occurred_at"] < end).all()
    local = frames["activities"]["occurred_at"].dt.tz_localize("UTC").dt.tz_convert(
        "America/New_York"
    )
    assert local.dt.hour.between(9, 18).mean() > 0.95


def test_progress_is_reported() -> None:
    messages: list[str] = []
    generate_company(0.05, end=END, progress=messages.append)
    assert len(messages) >= 5


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="size"):
        generate_company(0, end=END)
    with pytest.raises(ValueError, match="months"):
        generate_company(1, end=END, months=0)
