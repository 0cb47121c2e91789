"""The targets grid over REST (GET/PUT /api/v1/targets/grid, POST /api/v1/targets/copy),
the targets list's filters, and ``saleskpi target copy --kpi --level``.

A hand-made company: Ann (r1) and Bob (r2) in North, Cat (r3) in South. Every expected
value is typed here; what was stored is read back with SQL on the state database.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from saleskpi.domain.settings import Settings, save_workspace_settings
from saleskpi.service.auth import add_user, issue_token
from saleskpi.surfaces.server import create_app

PASSWORD = "a long enough password"
KPI = "deals_won"


@pytest.fixture
def company(tmp_path: Path) -> Settings:
    from saleskpi.service.core import SalesKpiService

    data = tmp_path / "data"
    data.mkdir()
    (data / "reps.csv").write_text("id,name,team\nr1,Ann,North\nr2,Bob,North\nr3,Cat,South\n",
                                   encoding="utf-8")
    (data / "deals.csv").write_text(
        "id,rep_id,status,amount,created_at,closed_at\nd1,r1,won,10,2026-11-02,2026-11-03\n",
        encoding="utf-8")
    workspace = tmp_path / "ws"
    save_workspace_settings(Settings(workspace=workspace), timezone="UTC", currency="USD")
    settings = Settings(workspace=workspace)
    report = SalesKpiService(settings).import_path(data, mapping=None, source=None,
                                                   dry_run=False)
    assert report.ok, report.errors
    for name, role, rep, team in (("head", "head", None, None),
                                  ("lead", "team_lead", None, "North"),
                                  ("ann", "rep", "r1", None)):
        add_user(settings, name, PASSWORD, role, rep_id=rep, team=team)
    return settings


@pytest.fixture
def api(company: Settings) -> TestClient:
    return TestClient(create_app(company))


def bearer(settings: Settings, username: str) -> dict[str, str]:
    with sqlite3.connect(settings.workspace / "state.sqlite") as con:
        (user_id,) = con.execute("SELECT id FROM users WHERE username = ?",
                                 (username,)).fetchone()
    return {"Authorization": f"Bearer {issue_token(settings, user_id, 'grid test')}"}


def stored(settings: Settings) -> dict[tuple[str, str | None, str | None, str], float]:
    """(kpi, rep, team, period_start) -> value: the targets table, read with SQL."""
    with sqlite3.connect(settings.workspace / "state.sqlite") as con:
        rows = con.execute("SELECT kpi, rep_id, team, period_start, period_end, value "
                           "FROM targets").fetchall()
    found = {}
    for kpi, rep, team, start, end, value in rows:
        assert str(start)[:7] == str(end)[:7], (start, end)  # whole months only here
        found[kpi, rep, None if rep else team, str(start)[:10]] = value
    return found


def changes(settings: Settings) -> list[tuple[str, str, str | None, str, Any, Any]]:
    with sqlite3.connect(settings.workspace / "state.sqlite") as con:
        return [tuple(r) for r in con.execute(
            "SELECT actor, action, rep_id, period_start, old_value, new_value "
            "FROM target_changes ORDER BY id")]


def cells(*items: tuple[str, str, Any]) -> dict[str, Any]:
    return {"kpi": KPI, "cells": [{"rep": r, "month": m, "value": v} for r, m, v in items]}


def test_a_grid_is_read_saved_and_replaced(api: TestClient, company: Settings) -> None:
    head = bearer(company, "head")
    empty = api.get("/api/v1/targets/grid", headers=head,
                    params={"kpi": KPI, "start": "2026-11", "months": 2})
    assert empty.status_code == 200, empty.text
    assert empty.json()["months"] == ["2026-11", "2026-12"]
    assert [(r["rep_id"], r["rep_name"], r["team"], r["values"]) for r in empty.json()["rows"]] \
        == [("r1", "Ann", "North", [None, None]), ("r2", "Bob", "North", [None, None]),
            ("r3", "Cat", "South", [None, None])]
    # Names or ids; "1 200" and "1,5" as a spreadsheet writes them.
    first = api.put("/api/v1/targets/grid", headers=head, json=cells(
        ("Ann", "2026-11", "12"), ("r1", "2026-12", 14), ("Bob", "2026-11", "1 200"),
        ("r3", "2026-12", "1,5")))
    assert first.status_code == 200, first.text
    assert first.json() == {"kpi": KPI, "inserted": 4, "updated": 0, "unchanged": 0,
                            "deleted": 0}
    assert stored(company) == {(KPI, "r1", None, "2026-11-01"): 12,
                               (KPI, "r1", None, "2026-12-01"): 14,
                               (KPI, "r2", None, "2026-11-01"): 1200,
                               (KPI, "r3", None, "2026-12-01"): 1.5}
    grid = api.get("/api/v1/targets/grid", headers=head,
                   params={"kpi": KPI, "start": "2026-11", "months": 2}).json()
    assert {r["rep_id"]: r["values"] for r in grid["rows"]} == {
        "r1": [12, 14], "r2": [1200, None], "r3": [None, 1.5]}
    # Saving again replaces: one changed, one emptied (deleted), one the same, one new.
    second = api.put("/api/v1/targets/grid", headers=head, json=cells(
        ("r1", "2026-11", "13"), ("r2", "2026-11", None), ("r1", "2026-12", "14"),
        ("r2", "2026-12", "")))
    assert second.json() == {"kpi": KPI, "inserted": 0, "updated": 1, "unchanged": 1,
                             "deleted": 1}
    assert stored(company) == {(KPI, "r1", None, "2026-11-01"): 13,
                               (KPI, "r1", None, "2026-12-01"): 14,
                               (KPI, "r3", None, "2026-12-01"): 1.5}
    # Who changed what, in order: the audit lines of the two saves.
    assert changes(company) == [
        ("head", "set", "r1", "2026-11-01", None, 12),
        ("head", "set", "r1", "2026-12-01", None, 14),
        ("head", "set", "r2", "2026-11-01", None, 1200),
        ("head", "set", "r3", "2026-12-01", None, 1.5),
        ("head", "replaced", "r1", "2026-11-01", 12, 13),
        ("head", "deleted", "r2", "2026-11-01", 1200, None)]


def test_a_bad_cell_saves_nothing_and_is_named(api: TestClient, company: Settings) -> None:
    head = bearer(company, "head")
    bad = api.put("/api/v1/targets/grid", headers=head, json=cells(
        ("r1", "2026-11", "5"), ("Bob", "2026-12", "lots")))
    assert bad.status_code == 400
    assert bad.json()["error"] == "bad_number"
    assert "Bob, 2026-12" in bad.json()["message"] and "'lots'" in bad.json()["message"]
    assert stored(company) == {}  # all or none: Ann's 5 was not kept either
    unknown = api.put("/api/v1/targets/grid", headers=head, json=cells(("Bobb", "2026-11", 1)))
    assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_rep"
    assert "Bob" in unknown.json()["message"]  # did you mean
    twice = api.put("/api/v1/targets/grid", headers=head, json=cells(
        ("r1", "2026-11", 1), ("Ann", "2026-11-15", 2)))
    assert twice.status_code == 400 and twice.json()["error"] == "bad_grid"
    month = api.put("/api/v1/targets/grid", headers=head, json=cells(("r1", "Nov", 1)))
    assert month.status_code == 400 and month.json()["error"] == "bad_date"
    kpi = api.put("/api/v1/targets/grid", headers=head,
                  json={"kpi": "deals_wonn", "cells": []})
    assert kpi.status_code == 400 and kpi.json()["error"] == "unknown_kpi"
    assert stored(company) == {} and changes(company) == []


def test_reps_and_team_leads_read_their_rows_and_change_nothing(api: TestClient,
                                                               company: Settings) -> None:
    head = bearer(company, "head")
    assert api.put("/api/v1/targets/grid", headers=head, json=cells(
        ("r1", "2026-11", 3), ("r2", "2026-11", 4), ("r3", "2026-11", 5))).status_code == 200
    before = stored(company)
    params = {"kpi": KPI, "start": "2026-11", "months": 1}
    for who, rows in (("ann", {"r1": [3]}), ("lead", {"r1": [3], "r2": [4]})):
        headers = bearer(company, who)
        grid = api.get("/api/v1/targets/grid", headers=headers, params=params)
        assert {r["rep_id"]: r["values"] for r in grid.json()["rows"]} == rows
        refused = api.put("/api/v1/targets/grid", headers=headers,
                          json=cells(("r1", "2026-11", 99)))
        assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
        copy = api.post("/api/v1/targets/copy", headers=headers,
                        json={"from": "2026-11", "to": "2026-12"})
        assert copy.status_code == 403 and copy.json()["error"] == "forbidden"
    assert stored(company) == before
    # Signed in with a session, a change also needs the CSRF token.
    session = TestClient(create_app(company))
    assert session.post("/api/v1/session", json={"username": "head",
                                                 "password": PASSWORD}).status_code == 200
    no_token = session.put("/api/v1/targets/grid", json=cells(("r1", "2026-11", 99)))
    assert no_token.status_code == 403 and no_token.json()["error"] == "csrf"
    assert api.get("/api/v1/targets/grid", params=params).status_code == 401


def test_last_month_is_copied_for_every_rep_of_one_kpi(api: TestClient,
                                                       company: Settings) -> None:
    head = bearer(company, "head")
    api.put("/api/v1/targets/grid", headers=head, json=cells(
        ("r1", "2026-11", 10), ("r2", "2026-11", 20), ("r3", "2026-11", 30),
        ("r2", "2026-12", 25)))
    # A team's own plan and another KPI's: not copied with kpi and level rep.
    for body in ({"kpi": KPI, "team": "North", "value": 70, "start": "2026-11-01"},
                 {"kpi": "calls", "rep": "r1", "value": 400, "start": "2026-11-01"}):
        assert api.put("/api/v1/targets", headers=head, json=body).status_code == 200
    kept = api.post("/api/v1/targets/copy", headers=head, json={
        "from": "2026-11", "to": "2026-12", "kpi": KPI, "level": "rep"})
    assert kept.status_code == 200, kept.text
    assert kept.json() == {"from_start": "2026-11-01", "from_end": "2026-11-30",
                                "period_start": "2026-12-01", "period_end": "2026-12-31",
                                "inserted": 2, "updated": 0, "kept": 1}
    december = {k[1]: v for k, v in stored(company).items() if k[3] == "2026-12-01"}
    assert december == {"r1": 10, "r2": 25, "r3": 30}  # Bob's 25 kept as set
    replaced = api.post("/api/v1/targets/copy", headers=head, json={
        "from": "2026-11", "to": "2026-12", "kpi": KPI, "level": "rep", "replace": True})
    # Bob's 25 replaced; Ann's and Cat's already equal, kept.
    assert (replaced.json()["inserted"], replaced.json()["updated"],
            replaced.json()["kept"]) == (0, 1, 2)
    december = {(k[0], k[1], k[2]): v for k, v in stored(company).items()
                if k[3] == "2026-12-01"}
    assert december == {(KPI, "r1", None): 10, (KPI, "r2", None): 20, (KPI, "r3", None): 30}
    bad = api.post("/api/v1/targets/copy", headers=head, json={
        "from": "2026-11", "to": "2026-12", "level": "everyone"})
    assert bad.status_code == 400 and bad.json()["error"] == "bad_level"


def test_the_cli_copies_one_kpi_and_level(run_cli: Any, api: TestClient,
                                          company: Settings) -> None:
    head = bearer(company, "head")
    api.put("/api/v1/targets/grid", headers=head, json=cells(("r1", "2026-11", 8)))
    api.put("/api/v1/targets", headers=head,
            json={"kpi": "calls", "rep": "r1", "value": 400, "start": "2026-11-01"})
    done = run_cli(company.workspace, "target", "copy", "--from", "2026-11", "--to", "2026-12",
                   "--kpi", KPI, "--level", "rep", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert done.json()["inserted"] == 1
    assert {k for k in stored(company) if k[3] == "2026-12-01"} == {(KPI, "r1", None,
                                                                     "2026-12-01")}


def test_the_targets_list_filters_and_puts_the_newest_first(api: TestClient,
                                                            company: Settings) -> None:
    head = bearer(company, "head")
    api.put("/api/v1/targets/grid", headers=head, json=cells(
        ("r1", "2026-10", 1), ("r1", "2026-12", 3), ("r2", "2026-11", 2), ("r3", "2026-11", 4)))
    for body in ({"kpi": KPI, "team": "North", "value": 9, "start": "2026-11-01"},
                 {"kpi": "calls", "rep": "r1", "value": 6, "start": "2026-11-01"}):
        assert api.put("/api/v1/targets", headers=head, json=body).status_code == 200
    newest = api.get("/api/v1/targets", headers=head, params={"newest_first": "true"}).json()
    assert [t["period_start"][:7] for t in newest["targets"]] == [
        "2026-12", "2026-11", "2026-11", "2026-11", "2026-11", "2026-10"]
    # A team's targets are its own and its reps': Ann's calls target, set by hand, names
    # no team; Cat is in South.
    north = api.get("/api/v1/targets", headers=head, params={
        "team": "North", "from": "2026-11-01", "to": "2026-11-30"}).json()["targets"]
    assert {(t["kpi"], t["rep_id"], t["value"]) for t in north} == {
        (KPI, "r2", 2), (KPI, None, 9), ("calls", "r1", 6)}
    autumn = api.get("/api/v1/targets", headers=head, params={
        "kpi": KPI, "to": "2026-11-15"}).json()["targets"]
    assert {(t["rep_id"], t["period_start"][:7]) for t in autumn} == {
        ("r1", "2026-10"), ("r2", "2026-11"), ("r3", "2026-11"), (None, "2026-11")}


@pytest.mark.parametrize(("typed", "meant"), [
    ("1,200", 1200), ("12,345,678.5", 12345678.5), ("1 200,5", 1200.5), ("1.200,5", 1200.5),
    ("1\u00a0200", 1200), ("1,5", 1.5), ("0.05", 0.05), ("30%", 0.3), ("1/4", 0.25),
    ("-1,200", -1200), ("1,2345", 1.2345), ("lots", None), ("", None)])
def test_numbers_read_as_spreadsheets_copy_them(typed: str, meant: float | None) -> None:
    from saleskpi.domain.typed_numbers import parse_typed_number

    found = parse_typed_number(typed)
    assert (None if found is None else float(found)) == meant


# -- the web grid without scripts: a plain form ----------------------------------------------
def web_client(settings: Settings) -> TestClient:
    client = TestClient(create_app(settings))
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
    assert token is not None
    answer = client.post("/login", follow_redirects=False, data={
        "username": "head", "password": PASSWORD, "csrf": token.group(1)})
    assert answer.status_code == 303, answer.text
    return client


def grid_form(html: str) -> dict[str, str]:
    """The grid form's fields as the page sends them."""
    body = html[html.index('action="/targets/grid" class="grid-form"'):]
    body = body[:body.index("</form>")]
    return dict(re.findall(r'<input type="(?:hidden|text)"[^>]*?name="([^"]+)" value="([^"]*)"',
                           body))


def test_the_web_grid_saves_as_a_plain_form(company: Settings) -> None:
    client = web_client(company)
    page = client.get("/targets/grid", params={"kpi": KPI, "start": "2026-11", "months": "2"})
    assert page.status_code == 200
    fields = grid_form(page.text)
    # Rows by name (Ann, Bob, Cat), columns by month.
    assert [fields[f"r.{i}"] for i in range(3)] == ["r1", "r2", "r3"]
    assert [fields["m.0"], fields["m.1"]] == ["2026-11", "2026-12"]
    typed = {**fields, "c.0.0": "5", "c.1.1": "1 500", "c.2.0": "lots"}
    bad = client.post("/targets/grid", data=typed)
    assert bad.status_code == 400
    assert "Cat, 2026-11: &#39;lots&#39; is not a number" in bad.text
    assert grid_form(bad.text)["c.1.1"] == "1 500"  # shown again as typed: nothing lost
    assert stored(company) == {}
    saved = client.post("/targets/grid", data={**typed, "c.2.0": "7"})
    assert saved.status_code == 200  # after the redirect
    assert "Saved: 3 new, 0 replaced, 0 deleted, 0 unchanged." in saved.text
    assert stored(company) == {(KPI, "r1", None, "2026-11-01"): 5,
                               (KPI, "r2", None, "2026-12-01"): 1500,
                               (KPI, "r3", None, "2026-11-01"): 7}
    again = grid_form(saved.text)
    assert (again["c.0.0"], again["c.1.1"], again["c.2.0"]) == ("5", "1500", "7")
    emptied = client.post("/targets/grid", data={**again, "c.0.0": ""})
    assert "Saved: 0 new, 0 replaced, 1 deleted, 2 unchanged." in emptied.text
    # A whole table pasted into the box, with its header.
    pasted = client.post("/targets/grid/paste", data={
        "csrf": again["csrf"], "kpi": KPI, "start": "2026-11", "months": "2",
        "table": "rep\t2026-11\t2026-12\nAnn\t4\t6\nBob\t\t1 600\n"})
    assert "Saved: 2 new, 1 replaced, 0 deleted, 0 unchanged." in pasted.text
    assert stored(company) == {(KPI, "r1", None, "2026-11-01"): 4,
                               (KPI, "r1", None, "2026-12-01"): 6,
                               (KPI, "r2", None, "2026-12-01"): 1600,
                               (KPI, "r3", None, "2026-11-01"): 7}
    wrong = client.post("/targets/grid/paste", data={
        "csrf": again["csrf"], "kpi": KPI, "table": "rep\t2026-11\nNobody\t4\n"})
    assert wrong.status_code == 400 and "Nobody" in wrong.text and "line 2" in wrong.text
    # Copy last month (November) into December for every rep: Cat's 7 is new.
    copied = client.post("/targets/grid/copy", data={
        "csrf": again["csrf"], "kpi": KPI, "start": "2026-11", "months": "2",
        "to": "2026-12"})
    assert "Copied Nov 2026 to Dec 2026: 1 new, 0 replaced, 1 kept as set." in copied.text
    assert stored(company)[KPI, "r3", None, "2026-12-01"] == 7


def test_the_targets_page_filters_its_list(company: Settings) -> None:
    client = web_client(company)
    api = TestClient(create_app(company))
    headers = bearer(company, "head")
    api.put("/api/v1/targets/grid", headers=headers, json=cells(
        ("r1", "2026-10", 1), ("r2", "2026-11", 2), ("r3", "2026-11", 3)))
    api.put("/api/v1/targets", headers=headers,
            json={"kpi": "calls", "rep": "r1", "value": 40, "start": "2026-11-01"})

    def listed(**params: str) -> list[tuple[str, str]]:
        html = client.get("/targets", params=params).text
        body = html[html.index('data-table="targets"'):]
        return re.findall(r'<tr class="row-item" data-row="item" data-rep="([^"]+)">\s*'
                          r'<th scope="row" class="num" data-value="\d+">\d+</th>'
                          r'<td>([^<]+)</td>', body)

    # Newest periods first; in one period, the latest saved (the grid saved Bob's, then
    # Cat's; Ann's calls target came after).
    assert listed(kpi=KPI, month="2026-11") == [("r3", "Deals won"), ("r2", "Deals won")]
    assert listed(kpi=KPI) == [("r3", "Deals won"), ("r2", "Deals won"), ("r1", "Deals won")]
    assert listed(team="North") == [("r1", "Calls"), ("r2", "Deals won"), ("r1", "Deals won")]
    assert listed(rep="r1", month="2026-10") == [("r1", "Deals won")]
    bad = client.get("/targets", params={"month": "November"})
    assert bad.status_code == 400 and "not a month" in bad.text
