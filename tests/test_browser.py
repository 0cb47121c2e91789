"""The dashboard in a real browser: headless Chromium (Playwright) against the real server.

A small demo company (``generate_company(0.3, seed=7)``, 11 reps in two teams, plus a
rep named ``<script>alert(1)</script>``) is imported into a fresh workspace; users of
every role sign in through the login form and open every page they may open. The
figures the pages show (``data-kpi``/``data-rep``/``data-value`` cells) must equal the
REST API's JSON for the same filters, fetched with the same browser session, and
``SalesKpiService.scorecard`` computed in-process before the server started.

Screenshots of every page for every role, of the overview on a phone, and of the
one-line forms and the targets' page links at 1280 and 375 px are saved in
``test-artifacts/screenshots/``. The README's pictures are taken from the demo by
``tools/readme_screenshots.py``.

Chromium is the Debian package at /usr/bin/chromium (Playwright's own browsers are not
downloaded); without it the module is skipped.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pandas as pd
import pytest
import yaml

from tests.chromium import launched_chromium, require_chromium

require_chromium()
uvicorn = pytest.importorskip("uvicorn")

from saleskpi.domain.contests import parse_definition  # noqa: E402
from saleskpi.domain.query import KpiQuery, Scope, plain_number  # noqa: E402
from saleskpi.domain.settings import Settings, save_workspace_settings  # noqa: E402
from saleskpi.service import contests  # noqa: E402
from saleskpi.service.alerting import evaluate_alerts  # noqa: E402
from saleskpi.service.auth import add_user  # noqa: E402
from saleskpi.service.bonus import write_example_plans  # noqa: E402
from saleskpi.service.compare import DEFAULT_KPIS  # noqa: E402
from saleskpi.service.core import SalesKpiService  # noqa: E402
from saleskpi.sources.demo import generate_company  # noqa: E402
from saleskpi.sources.ingest.run import import_frames  # noqa: E402
from saleskpi.store.targets import TargetStore  # noqa: E402
from saleskpi.surfaces.server import create_app  # noqa: E402
from saleskpi.surfaces.web.overview import HEADLINE  # noqa: E402
from saleskpi.surfaces.web.rep import REP_KPIS  # noqa: E402
from tests.servers import serve  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "test-artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
END = dt.date(2026, 10, 1)  # the demo data ends the day before
LAST_MONTH = {"from": "2026-09-01", "to": "2026-09-30"}
# The README's view: a quarter, against the quarter before and the plan.
LAST_QUARTER = {"from": "2026-07-01", "to": "2026-09-30"}
PASSWORD = "browser-test-password"
SCRIPT = "<script>alert(1)</script>"
SCRIPT_REP = "RX1"
ROLES = ("admin", "head", "team_lead", "rep")
MANAGER_PAGES = ("/import", "/targets", "/targets/grid", "/deliveries")
# Figures are checked for one role of each scope (an admin sees what the head sees).
FIGURE_ROLES = ("head", "team_lead", "rep")
COMPARE_VIEWS = ("all", "team")
# The fresh workspace's first contest (the server fixture makes it): every rep, on points.
CONTEST = 1
STUCK_RULE = {"name": "stuck-week", "kind": "deal_stuck", "owner": "b_head",
              "recipients": {"roles": ["head", "team_lead"]}, "days": 7}


@dataclass
class Company:
    """Who is who in the demo company the tests run on."""

    team: str  # the team lead's team; the script rep and the rep user are in it
    other_team: str
    rep: str  # the rep user's rep id
    teammate: str  # another rep of ``team``
    outsider: str  # a rep of ``other_team``
    reps_of_team: set[str]
    all_reps: set[str]


@dataclass
class Expected:
    """Scorecards computed in-process, before the server started, per (role, view)."""

    headline: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    by_rep: dict[tuple[str, str], dict[str, dict[str, Any]]] = field(default_factory=dict)
    rep_page: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class Server:
    url: str
    settings: Settings
    company: Company
    expected: Expected
    users: dict[str, str]  # role -> username
    # What the filter boxes should suggest, from the imported frames: (value, label).
    suggested: dict[str, list[tuple[str, str]]] = field(default_factory=dict)


# -- the workspace and the server -------------------------------------------------------
def _with_script_rep(frames: dict[str, pd.DataFrame], team: str) -> None:
    """A rep whose name is markup, in ``team``, owning a few of a teammate's closed deals."""
    reps = frames["reps"]
    lead = reps.loc[(reps["team"] == team) & (reps["role"] == "team_lead"), "id"].iloc[0]
    row = {column: None for column in reps.columns}
    row.update(id=SCRIPT_REP, name=SCRIPT, email="script@demo-sales.example", team=team,
               manager_id=lead, hired_at=pd.Timestamp("2024-01-15"), role="rep")
    frames["reps"] = pd.concat([reps, pd.DataFrame([row]).astype(reps.dtypes.to_dict())],
                               ignore_index=True)
    deals = frames["deals"]
    donor = reps.loc[(reps["team"] == team) & (reps["role"] == "rep"), "id"].iloc[-1]
    moved = deals.index[(deals["rep_id"] == donor) & deals["closed_at"].notna()][:6]
    deals.loc[moved, "rep_id"] = SCRIPT_REP


def _company(frames: dict[str, pd.DataFrame]) -> Company:
    reps, deals = frames["reps"], frames["deals"]
    teams = sorted(t for t in reps["team"].dropna().unique())
    team, other = teams[0], teams[1]
    won = deals.loc[deals["status"] == "won"].groupby("rep_id").size()
    sellers = reps.loc[(reps["role"] == "rep") & reps["left_at"].isna()]
    in_team = [r for r in sellers.loc[sellers["team"] == team, "id"] if r != SCRIPT_REP]
    rep = max(in_team, key=lambda r: (won.get(r, 0), r))
    return Company(
        team=team, other_team=other, rep=rep,
        teammate=next(r for r in in_team if r != rep),
        outsider=str(sellers.loc[sellers["team"] == other, "id"].iloc[0]),
        reps_of_team=set(reps.loc[reps["team"] == team, "id"]),
        all_reps=set(reps["id"]))


def _scope(role: str, company: Company) -> Scope:
    if role == "team_lead":
        return Scope(teams=frozenset({company.team}))
    if role == "rep":
        return Scope(rep_ids=frozenset({company.rep}))
    return Scope()


def views(company: Company) -> dict[str, dict[str, str]]:
    """The filters each page is checked with: everything (pages default to month to
    date), last month, one team's month."""
    return {"all": {"range": "all"}, "month": dict(LAST_MONTH),
            "team": {**LAST_MONTH, "team": company.team}}


def _query(kpis: tuple[str, ...], view: dict[str, str], *, by: tuple[str, ...] = (),
           where: tuple[tuple[str, tuple[str, ...]], ...] = ()) -> KpiQuery:
    start = dt.date.fromisoformat(view["from"]) if "from" in view else None
    end = dt.date.fromisoformat(view["to"]) if "to" in view else None
    slices = tuple((dim, (view[dim],)) for dim in ("team", "rep") if dim in view)
    return KpiQuery(kpis, by, "all", start, end, (*slices, *where))


def _values(row: Any, kpis: tuple[str, ...]) -> dict[str, Any]:
    return {key: plain_number(row.values[key].value) for key in kpis}


def _expected(settings: Settings, company: Company) -> Expected:
    service = SalesKpiService(settings)
    expected = Expected()
    known: dict[Scope, str] = {}  # admin and head share one scope: computed once
    for role in ROLES:
        scope = _scope(role, company)
        if scope in known:
            for key in [k for k in expected.headline if k[0] == known[scope]]:
                expected.headline[role, key[1]] = expected.headline[key]
            for key in [k for k in expected.by_rep if k[0] == known[scope]]:
                expected.by_rep[role, key[1]] = expected.by_rep[key]
            continue
        known[scope] = role
        for name, view in views(company).items():
            card = service.scorecard(_query(HEADLINE, view), scope)
            expected.headline[role, name] = _values(card.rows[0], HEADLINE)
            if name in COMPARE_VIEWS:
                card = service.scorecard(_query(DEFAULT_KPIS, view, by=("rep",)), scope)
                expected.by_rep[role, name] = {r.keys["rep"]: _values(r, DEFAULT_KPIS)
                                               for r in card.rows}
    for rep in (company.rep, SCRIPT_REP):
        card = service.scorecard(_query(REP_KPIS, {}, by=("rep",), where=(("rep", (rep,)),)))
        expected.rep_page[rep] = _values(card.rows[0], REP_KPIS)
    return expected


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workspace = tmp_path_factory.mktemp("browser") / "ws"
    save_workspace_settings(Settings(workspace=workspace), timezone="Europe/Kyiv",
                            currency="USD")
    settings = Settings(workspace=workspace)
    frames = generate_company(0.3, seed=7, end=END, timezone=settings.timezone,
                              currency=settings.currency)
    company = _company(frames)
    _with_script_rep(frames, company.team)
    company.reps_of_team.add(SCRIPT_REP)
    company.all_reps.add(SCRIPT_REP)
    report = import_frames(settings, frames, source="demo")
    assert report.ok, report.errors
    write_example_plans(settings)  # the bonus page has bonuses to show
    users = {role: f"b_{role}" for role in ROLES}
    for role, username in users.items():
        add_user(settings, username, PASSWORD, role,
                 rep_id=company.rep if role == "rep" else None,
                 team=company.team if role == "team_lead" else None)
    expected = _expected(settings, company)
    made = contests.create(SalesKpiService(settings), parse_definition({
        "name": "Quarter points", "description": "A weekend away for the winner",
        "points": [{"kpi": "calls", "points": 1}, {"kpi": "meetings", "points": 5},
                   {"kpi": "deals_won", "points": 20}],
        "start": LAST_QUARTER["from"], "end": LAST_QUARTER["to"],
        "members": sorted(company.all_reps), "head_to_head": True}), actor=users["head"])
    assert made.id == CONTEST
    # Alerts to show on /alerts: deals stuck a week, evaluated once on the data's last day.
    (workspace / "alerts.yaml").write_text(yaml.safe_dump({"rules": [STUCK_RULE]}),
                                           encoding="utf-8")
    report = evaluate_alerts(settings, dt.datetime.combine(END, dt.time(10), dt.UTC), None)
    assert report.errors == [] and report.changes

    names = dict(zip(frames["products"]["id"], frames["products"]["name"], strict=True))
    used = {*names, *frames["deals"]["product_id"].dropna(),
            *frames["revenue"]["product_id"].dropna()}
    segments = {*frames["leads"]["segment"].dropna(), *frames["accounts"]["segment"].dropna()}
    suggested = {"product": [(p, names.get(p, "")) for p in sorted(used)],
                 "segment": [(s, "") for s in sorted(segments)]}
    with serve(create_app(settings)) as url:
        yield Server(url, settings, company, expected, users, suggested)


# -- the browser ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched_chromium() as chromium:
        yield chromium


@dataclass
class Session:
    """One signed-in browser tab, failing on any dialog, script error or console error."""

    role: str
    page: Any
    base: str
    problems: list[str] = field(default_factory=list)
    # A test that means to confirm (a deletion) says so; any other dialog is a problem.
    accept_confirm: bool = False
    confirmed: list[str] = field(default_factory=list)

    def on_dialog(self, dialog: Any) -> None:
        if self.accept_confirm and dialog.type == "confirm":
            self.confirmed.append(dialog.message)
            dialog.accept()
            return
        self.problems.append(f"a {dialog.type} dialog opened: {dialog.message!r}")
        dialog.dismiss()

    def open(self, path: str, params: dict[str, str] | None = None, *,
             status: int = 200) -> Any:
        target = self.base + path + (f"?{urlencode(params)}" if params else "")
        response = self.page.goto(target, wait_until="load")
        assert response is not None and response.status == status, (
            f"{self.role} {path}: HTTP {response and response.status}, not {status}")
        self.check()
        return response

    def check(self) -> None:
        problems, self.problems[:] = list(self.problems), []
        assert not problems, problems

    def shoot(self, name: str) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{self.role}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def api(self, kpis: tuple[str, ...], view: dict[str, str], *,
            by: tuple[str, ...] = ()) -> dict[str, Any]:
        """/api/v1/scorecard with the page's filters and the browser's own session."""
        params = [("kpi", k) for k in kpis] + [("by", b) for b in by]
        params += [(k, v) for k, v in view.items() if k in ("from", "to", "range")]
        params += [("where", f"{dim}={view[dim]}") for dim in ("team", "rep") if dim in view]
        response = self.page.request.get(f"{self.base}/api/v1/scorecard?{urlencode(params)}")
        assert response.status == 200, response.text()
        data: dict[str, Any] = response.json()
        return data

    def cells(self, table: str) -> list[dict[str, Any]]:
        """The KPI cells of one table: kpi, rep, period, row kind, value (number or None)."""
        cells: list[dict[str, Any]] = self.page.eval_on_selector_all(
            f'table[data-table="{table}"] [data-kpi]',
            """cells => cells.map(c => ({kpi: c.dataset.kpi, rep: c.dataset.rep || null,
                period: c.dataset.period || null, row: c.closest('tr').dataset.row,
                value: c.dataset.value === '' ? null : Number(c.dataset.value),
                text: c.innerText}))""")
        return cells


def _sign_in(browser: Any, server: Server, role: str, viewport: dict[str, int]) -> Session:
    context = browser.new_context(viewport=viewport, locale="en-GB")
    page = context.new_page()
    session = Session(role, page, server.url)
    page.on("dialog", session.on_dialog)
    page.on("pageerror", lambda error: session.problems.append(f"script error: {error}"))
    page.on("console", lambda message: session.problems.append(
        f"console {message.type}: {message.text}")
        if message.type == "error" and not message.text.startswith("Failed to load resource")
        else None)
    # A failed download (a style sheet, the script, the icon) is a problem; the page's own
    # status is checked by open().
    page.on("response", lambda response: session.problems.append(
        f"HTTP {response.status} for {response.url}")
        if response.status >= 400 and response.request.resource_type != "document"
        else None)
    # Signing in starts from any page: the server sends the browser to the form and back.
    page.goto(server.url + "/compare")
    assert page.url.startswith(server.url + "/login?next="), page.url
    page.fill('input[name="username"]', server.users[role])
    page.fill('input[name="password"]', PASSWORD)
    with page.expect_navigation():
        page.click('form[action^="/login"] button[type="submit"]')
    assert page.url == server.url + "/compare", page.url
    assert page.locator(".who").inner_text() == server.users[role]
    session.check()
    return session


@pytest.fixture(scope="module")
def sessions(browser: Any, server: Server) -> Iterator[dict[str, Session]]:
    opened = {role: _sign_in(browser, server, role, DESKTOP) for role in ROLES}
    yield opened
    for session in opened.values():
        session.page.context.close()


def pages_of(role: str, company: Company) -> dict[str, str]:
    """Every page a role may open, by a short name for the screenshot."""
    pages = {"overview": "/", "funnel": "/funnel", "forecast": "/forecast",
             "compare": "/compare",
             "leaderboard": "/leaderboard", "catalog": "/catalog", "alerts": "/alerts"}
    pages["rep"] = f"/reps/{company.rep}"
    # The last whole month of the demo, and one rep's bonus explained with the what-if.
    pages["bonus"] = "/bonus?pay_period=2026-09"
    pages["bonus-rep"] = f"/bonus?rep={quote(company.rep)}&pay_period=2026-09"
    pages |= {"contests": "/contests", "contest": f"/contests/{CONTEST}"}
    pages["notifications"] = "/notifications"
    if role in ("admin", "head"):
        pages |= {"rep-script": f"/reps/{SCRIPT_REP}", "import": "/import",
                  "targets": "/targets", "targets-grid": "/targets/grid",
                  "deliveries": "/deliveries"}
    return pages


def _approx(value: Any) -> Any:
    return None if value is None else pytest.approx(value, rel=1e-9, abs=1e-9)


# -- every page, every role -----------------------------------------------------------
@pytest.mark.parametrize("role", ROLES)
def test_every_page_opens_without_an_error(sessions: dict[str, Session], server: Server,
                                           role: str) -> None:
    session = sessions[role]
    for name, path in pages_of(role, server.company).items():
        session.open(path)
        page = session.page
        assert page.locator("section.problem").count() == 0, f"{path}: an error page"
        assert page.locator("h1").count() == 1 and page.locator("h1").inner_text().strip()
        assert "Traceback" not in page.content()
        current = page.locator('nav a[aria-current="page"]')
        if not path.startswith("/reps/") or role == "rep":  # only a rep has "My page"
            assert current.count() == 1, f"{path}: the menu does not mark the page"
        session.shoot(name)


@pytest.mark.parametrize("role", ["team_lead", "rep"])
def test_managers_pages_are_refused(sessions: dict[str, Session], role: str) -> None:
    session = sessions[role]
    nav = session.page.locator("nav")
    for path in MANAGER_PAGES:
        session.open(path, status=403)
        assert session.page.locator("section.problem h1").inner_text() == "Not allowed"
        assert nav.locator(f'a[href="{path}"]').count() == 0  # not offered in the menu
    session.open("/catalog")
    assert session.page.locator("details.editor").count() == 0  # read only


def _alert_subjects(session: Session) -> list[str]:
    """The alerts the page lists, as the REST API names them: the deals' ids."""
    return sorted(session.page.eval_on_selector_all(
        'table[data-table="alerts"] tbody tr > :first-child',
        "cells => cells.map(c => c.innerText.split(' ')[1])"))


@pytest.mark.parametrize("role", ["head", "team_lead", "rep"])
def test_the_alerts_page_lists_what_the_api_lists(sessions: dict[str, Session],
                                                  role: str) -> None:
    session = sessions[role]
    session.open("/alerts")
    response = session.page.request.get(session.base + "/api/v1/alerts")
    assert response.status == 200
    api = sorted(a["subject"].split(":")[2] for a in response.json()["alerts"])
    assert _alert_subjects(session) == api
    if role == "head":
        assert len(api) >= 3
    # The editor is the managers' only.
    assert (session.page.locator("#editor").count() == 1) == (role == "head")


def test_the_rule_editor_shows_one_kind_and_backtests_a_draft(
        sessions: dict[str, Session]) -> None:
    session = sessions["head"]
    session.open("/alerts")
    page = session.page
    page.click("#editor summary")
    stuck = page.locator('fieldset[data-kind="deal_stuck"]')
    leads = page.locator('fieldset[data-kind="lead_not_contacted"]')
    assert leads.is_visible() and not stuck.is_visible()  # a new rule: leads first
    page.select_option('form.rule-editor select[name="kind"]', "deal_stuck")
    assert stuck.is_visible() and not leads.is_visible()
    page.fill('form.rule-editor input[name="name"]', "stuck-fortnight")
    page.fill('form.rule-editor input[name="owner"]', "b_head")
    page.fill('form.rule-editor input[name="days"]', "14")
    page.fill('form.rule-editor input[name="bt_from"]', "2026-08-01")
    page.fill('form.rule-editor input[name="bt_to"]', "2026-08-31")
    with page.expect_navigation():
        page.click('button[data-action="backtest-draft"]')
    session.check()
    shown = int(page.locator("p.backtest-count").get_attribute("data-firings") or "-1")
    api = page.request.post(session.base + "/api/v1/alerts/backtest", headers={
        "X-CSRF-Token": page.locator('input[name="csrf"]').first.get_attribute("value")},
        data={"definition": {**STUCK_RULE, "name": "stuck-fortnight", "days": 14},
                         "from": "2026-08-01", "to": "2026-08-31"})
    assert api.status == 200, api.text()
    assert shown == api.json()["firings"] > 0
    assert page.locator('table[data-table="backtest"] tbody tr').count() == shown
    session.shoot("alerts-backtest")


def test_a_rep_cannot_open_another_reps_page(sessions: dict[str, Session],
                                             server: Server) -> None:
    session, company = sessions["rep"], server.company
    for other in (company.teammate, company.outsider, SCRIPT_REP, "nobody"):
        session.open(f"/reps/{quote(other)}", status=404)
        assert session.page.locator("section.problem h1").inner_text() == "Not found"
        assert session.page.locator("table.data").count() == 0
    session.shoot("rep-of-another-rep")
    session.open(f"/reps/{company.rep}")  # their own page opens


def test_a_team_lead_cannot_open_another_teams_rep(sessions: dict[str, Session],
                                                   server: Server) -> None:
    session, company = sessions["team_lead"], server.company
    session.open(f"/reps/{company.outsider}", status=404)
    assert session.page.locator("section.problem h1").inner_text() == "Not found"
    session.shoot("rep-of-another-team")
    for rep in (company.rep, company.teammate, SCRIPT_REP):
        session.open(f"/reps/{quote(rep)}")
        assert session.page.locator("h1").get_attribute("data-rep") == rep


# -- the same figures as the API and the service -------------------------------------
@pytest.mark.parametrize("role", FIGURE_ROLES)
@pytest.mark.parametrize("view", ["all", "month", "team"])
def test_overview_figures(sessions: dict[str, Session], server: Server, role: str,
                          view: str) -> None:
    session = sessions[role]
    params = views(server.company)[view]
    session.open("/", params)
    shown = {c["kpi"]: c["value"] for c in session.cells("headline")}
    assert list(shown) == list(HEADLINE)
    api = session.api(HEADLINE, params)["rows"][0]
    service = server.expected.headline[role, view]
    for key in HEADLINE:
        assert shown[key] == api[key]["value"], (key, shown[key], api[key])
        assert shown[key] == _approx(service[key]), (key, shown[key], service[key])
    assert shown["deals_won"] is not None and shown["deals_won"] > 0
    # The filter bar shows the filters the figures are for.
    form = session.page.locator("form.filters")
    assert form.locator('input[name="from"]').input_value() == params.get("from", "")
    assert form.locator('select[name="team"]').input_value() == params.get("team", "")


@pytest.mark.parametrize("role", FIGURE_ROLES)
@pytest.mark.parametrize("view", COMPARE_VIEWS)
def test_compare_figures(sessions: dict[str, Session], server: Server, role: str,
                         view: str) -> None:
    session, company = sessions[role], server.company
    params = views(company)[view]
    session.open("/compare", params)
    cells = [c for c in session.cells("comparison") if c["row"] == "item"]
    api = {row["rep"]: row for row in session.api(DEFAULT_KPIS, params, by=("rep",))["rows"]}
    service = server.expected.by_rep[role, view]
    shown = {c["rep"] for c in cells}
    assert shown == set(api) == set(service)
    visible = {"team_lead": company.reps_of_team, "rep": {company.rep}}.get(
        role, company.all_reps)
    assert shown <= visible
    if role == "rep":
        assert shown == {company.rep}
    for cell in cells:
        rep, key = cell["rep"], cell["kpi"]
        assert cell["value"] == api[rep][key]["value"], (rep, key, cell, api[rep][key])
        assert cell["value"] == _approx(service[rep][key]), (rep, key, cell)


@pytest.mark.parametrize("role", ["head", "team_lead"])
def test_leaderboard_figures(sessions: dict[str, Session], server: Server,
                             role: str) -> None:
    session = sessions[role]
    session.open("/leaderboard", {"kpi": "revenue"})
    cells = session.cells("leaderboard")
    api = {row["rep"]: row["revenue"]["value"]
           for row in session.api(("revenue",), {}, by=("rep",))["rows"]}
    assert {c["rep"] for c in cells} == set(api)
    for cell in cells:
        assert cell["value"] == api[cell["rep"]], cell
    values = [c["value"] for c in cells if c["value"] is not None]
    assert values == sorted(values, reverse=True)  # ranked, the best first
    # Choosing another KPI applies it at once (app.js), with the filters kept.
    with session.page.expect_navigation():
        session.page.select_option('select[name="kpi"]', "deals_won")
    assert "kpi=deals_won" in session.page.url
    assert {c["kpi"] for c in session.cells("leaderboard")} == {"deals_won"}
    session.check()


@pytest.mark.parametrize("role", FIGURE_ROLES)
def test_rep_page_figures(sessions: dict[str, Session], server: Server, role: str) -> None:
    session, rep = sessions[role], server.company.rep
    session.open(f"/reps/{rep}", {"range": "all"})
    cells = session.cells("rep_kpis")
    assert cells and {c["rep"] for c in cells} == {rep}
    api = session.api(REP_KPIS, {"rep": rep, "range": "all"}, by=("rep",))["rows"][0]
    for cell in cells:
        key = cell["kpi"]
        assert cell["value"] == api[key]["value"], (key, cell, api[key])
        assert cell["value"] == _approx(server.expected.rep_page[rep][key]), (key, cell)


# -- a name is text, never markup ------------------------------------------------------
def test_a_script_name_is_shown_as_text(sessions: dict[str, Session], server: Server) -> None:
    session = sessions["head"]
    page = session.page
    session.open("/compare", {"range": "all"})
    link = page.locator(f'tr[data-rep="{SCRIPT_REP}"] th a')
    assert link.inner_text() == SCRIPT
    assert link.get_attribute("href") == f"/reps/{SCRIPT_REP}"
    figures = {c["kpi"]: c["value"] for c in session.cells("comparison")
               if c["rep"] == SCRIPT_REP}
    assert figures["deals_won"] == server.expected.by_rep["head", "all"][SCRIPT_REP][
        "deals_won"]
    session.open("/", {"rep": SCRIPT_REP})
    option = page.locator(f'select[name="rep"] option[value="{SCRIPT_REP}"]')
    assert option.inner_text() == SCRIPT and option.evaluate("o => o.selected")
    session.open("/leaderboard", {"range": "all"})
    # The rep's name links to their page (the figure beside it to its records).
    assert page.locator(f'tr[data-rep="{SCRIPT_REP}"] a[href^="/reps/"]').inner_text() == SCRIPT
    # The chart's label is cut at 20 characters; the bar's tooltip holds the whole name.
    label = page.locator("svg text", has_text=SCRIPT[:10])
    assert label.count() == 1
    shown = label.text_content() or ""
    assert shown.endswith("…") and SCRIPT.startswith(shown[:-1]) and len(shown) <= 20
    assert page.locator("svg rect title", has_text=SCRIPT).count() == 1
    session.open(f"/reps/{SCRIPT_REP}")
    assert page.locator("h1").inner_text() == SCRIPT
    assert page.title().startswith(SCRIPT)
    for path in ("/compare", "/leaderboard", f"/reps/{SCRIPT_REP}", "/?rep=" + SCRIPT_REP):
        session.open(path)
        scripts = page.eval_on_selector_all(
            "script", "s => s.map(e => e.getAttribute('src') || e.textContent)")
        assert scripts == ["/static/app.js"], (path, scripts)  # no injected script
    session.shoot("script-name")
    session.check()  # no alert() dialog ever opened, no script error


# -- phone ------------------------------------------------------------------------------
@pytest.mark.parametrize("dim", ["product", "segment"])
def test_a_filter_box_suggests_the_values_the_data_holds(sessions: dict[str, Session],
                                                        server: Server, dim: str) -> None:
    """Typing in the funnel's product box offers the products (their names as labels),
    asked of the API once the box is used; picking a product's name filters as its id."""
    session = sessions["rep"]
    session.open("/funnel")
    options = session.page.locator(f"#values-{dim} option")
    assert options.count() == 0  # not asked with the page
    session.page.locator(f"input[name={dim}]").focus()
    options.first.wait_for(state="attached", timeout=10_000)
    shown = session.page.eval_on_selector_all(
        f"#values-{dim} option", "els => els.map(e => [e.value, e.label === e.value ? '' "
        ": e.label])")
    assert [tuple(pair) for pair in shown] == server.suggested[dim]
    session.check()


def test_overview_on_a_phone(browser: Any, server: Server) -> None:
    session = _sign_in(browser, server, "head", PHONE)
    try:
        session.open("/", LAST_QUARTER)
        page = session.page
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the page is {width}px wide on a 390px screen"
        nav = page.locator("nav.nav")
        assert not nav.is_visible()  # the menu folds behind its button
        page.click("label.nav-button")
        assert nav.is_visible() and nav.locator('a[href^="/compare"]').is_visible()
        page.click("label.nav-button")
        assert page.locator('table[data-table="headline"]').is_visible()
        session.shoot("overview-phone")
        session.check()
    finally:
        session.page.context.close()


def test_overview_for_the_readme(sessions: dict[str, Session]) -> None:
    """The head of sales' overview of a quarter, with changes against the last one."""
    session = sessions["head"]
    session.open("/", LAST_QUARTER)
    headline = session.page.locator('table[data-table="headline"]')
    assert headline.locator("td[data-mark]").count() > 0  # changes against the last quarter
    session.shoot("overview-readme")


# -- signing out ----------------------------------------------------------------------
def test_signing_in_wrongly_then_out(browser: Any, server: Server) -> None:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    try:
        page.goto(server.url + "/login")
        page.fill('input[name="username"]', server.users["rep"])
        page.fill('input[name="password"]', "not the password")
        page.click('form[action^="/login"] button[type="submit"]')
        assert page.locator('p.error[role="alert"]').inner_text() == (
            "Wrong username or password.")
        assert page.locator('input[name="username"]').input_value() == server.users["rep"]
        page.fill('input[name="password"]', PASSWORD)
        with page.expect_navigation():
            page.click('form[action^="/login"] button[type="submit"]')
        assert page.url == server.url + "/"
        with page.expect_navigation():
            page.click("form.logout button")
        assert page.url == server.url + "/login"
        page.goto(server.url + "/")
        assert page.url.startswith(server.url + "/login?next=")
        response = page.request.get(server.url + "/api/v1/me")
        assert response.status == 401, json.dumps(response.json())
    finally:
        context.close()


# -- one-line forms (the leaderboard's KPI, the rep page's goal) ----------------------
NARROW_PHONE = {"width": 375, "height": 812}
INLINE_CONTROLS = "label, select, input:not([type=hidden]), button"


def _box(locator: Any) -> dict[str, float]:
    box: dict[str, float] | None = locator.bounding_box()
    assert box is not None, "not rendered"
    return box


@pytest.mark.parametrize("viewport", [DESKTOP, NARROW_PHONE], ids=["desktop", "phone-375"])
def test_inline_forms_fit_the_screen(browser: Any, server: Server,
                                     viewport: dict[str, int]) -> None:
    """``form.filters.inline``: every control inside the screen, beside or under its label."""
    session = _sign_in(browser, server, "head", viewport)
    width = viewport["width"]
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        for name, path in (("leaderboard", "/leaderboard"),
                           ("planner", f"/reps/{server.company.rep}")):
            session.open(path)
            page = session.page
            form = page.locator("form.filters.inline")
            assert form.count() == 1, path
            form.scroll_into_view_if_needed()
            page.screenshot(path=str(SHOTS / f"inline-{name}-{width}.png"), full_page=False)
            scroll = page.evaluate("document.documentElement.scrollWidth")
            assert scroll <= width, f"{path}: the page is {scroll}px wide on {width}px"
            # One box: the form's border and background around all of its controls, not
            # an inline box broken into fragments around them.
            fragments = form.evaluate("f => f.getClientRects().length")
            assert fragments == 1, f"{path}: the form is drawn in {fragments} pieces"
            outer = _box(form)
            assert outer["x"] >= 0 and outer["x"] + outer["width"] <= width + 0.5, (path, outer)
            controls = form.locator(INLINE_CONTROLS)
            for i in range(controls.count()):
                control = controls.nth(i)
                box = _box(control)
                what = f"{path}: {control.evaluate('e => e.outerHTML')[:80]} at {box}"
                assert box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, what
                # Inside the form's own box (its border and background), not beside it.
                assert box["x"] >= outer["x"] - 0.5, what
                assert box["x"] + box["width"] <= outer["x"] + outer["width"] + 0.5, what
                assert box["y"] >= outer["y"] - 0.5, what
                assert box["y"] + box["height"] <= outer["y"] + outer["height"] + 0.5, what
            label, field_ = form.locator("label").first, form.locator("label select, "
                                                                        "label input").first
            button = form.locator("button")
            label_box, field_box, button_box = _box(label), _box(field_), _box(button)
            # The field sits under its label's text, in the label's box.
            assert field_box["y"] > label_box["y"], (path, label_box, field_box)
            assert field_box["x"] + field_box["width"] <= label_box["x"] + label_box[
                "width"] + 0.5, (path, label_box, field_box)
            # A usable field: not squeezed below its text, nor stretched across a desktop.
            assert field_box["width"] >= 120, (path, field_box)
            if width >= 1000:
                assert field_box["width"] <= 0.6 * width, (path, field_box)
                # One row: the button beside the field, level with it.
                assert button_box["x"] >= field_box["x"] + field_box["width"], (path, button_box)
                assert abs((button_box["y"] + button_box["height"]) -
                           (field_box["y"] + field_box["height"])) <= 4, (path, button_box)
            session.check()
    finally:
        session.page.context.close()


# -- long tables: pages ---------------------------------------------------------------
@pytest.mark.parametrize("viewport", [DESKTOP, NARROW_PHONE], ids=["desktop", "phone-375"])
def test_targets_pages(browser: Any, server: Server, viewport: dict[str, int]) -> None:
    """The targets list, 100 a page: the count, page links that work and fit the screen."""
    total = len(TargetStore(server.settings.state_url).list())
    assert total > 200, "the demo company should have several pages of targets"
    session = _sign_in(browser, server, "head", viewport)
    width = viewport["width"]
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        session.open("/targets", {"from": "2026-09-01"})
        page = session.page
        pager = page.locator('#targets nav.pager').first
        assert pager.get_attribute("data-total") == str(total)
        assert pager.locator(".count").inner_text() == f"1–100 of {total:,}"
        assert page.locator('table[data-table="targets"] tbody tr').count() == 100
        with page.expect_navigation():
            pager.locator('a[rel="next"]').click()
        assert "page=2" in page.url and "from=2026-09-01" in page.url  # the filters kept
        pager = page.locator('#targets nav.pager').first
        assert pager.locator('[aria-current="page"]').inner_text() == "2"
        assert pager.locator(".count").inner_text() == f"101–200 of {total:,}"
        pager.scroll_into_view_if_needed()
        for i in range(pager.locator("a, span").count()):
            box = _box(pager.locator("a, span").nth(i))
            assert box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, box
        scroll = page.evaluate("document.documentElement.scrollWidth")
        assert scroll <= width, f"the page is {scroll}px wide on {width}px"
        page.screenshot(path=str(SHOTS / f"targets-page-2-{width}.png"), full_page=False)
        session.check()
    finally:
        session.page.context.close()


# -- any screen: nothing cut off, charts readable, the first column in place -----------
WIDE = {"width": 1366, "height": 900}
SCREENS = {"1366": WIDE, "390": PHONE}
# Every element drawn beyond the viewport's left or right edge, unless it is inside an
# element that scrolls sideways (overflow-x auto or scroll): what a reader cannot reach.
CUT_OFF = """() => {
  const width = document.documentElement.clientWidth, found = [];
  const scrolls = e => { for (let p = e.parentElement; p && p !== document.body;
                              p = p.parentElement) {
      const o = getComputedStyle(p).overflowX; if (o === 'auto' || o === 'scroll') return true; }
    return false; };
  for (const e of document.querySelectorAll('body *')) {
    const r = e.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    if (r.left >= -0.5 && r.right <= width + 0.5) continue;
    if (getComputedStyle(e).position === 'absolute' && getComputedStyle(e).opacity === '0')
      continue;  // the menu's hidden checkbox
    if (!scrolls(e)) found.push(`${e.tagName.toLowerCase()}.${e.className} ` +
      `${Math.round(r.left)}–${Math.round(r.right)}px: ` +
      (e.textContent || '').trim().slice(0, 40));
  }
  return found; }"""
# Each visible text of a chart: its size on the screen, and how far inside the SVG it is.
CHART_TEXT = """() => [...document.querySelectorAll('figure.chart svg text')]
  .filter(t => t.getClientRects().length).map(t => {
    const svg = t.ownerSVGElement, box = svg.getBoundingClientRect(),
          r = t.getBoundingClientRect();
    return {text: t.textContent, px: parseFloat(getComputedStyle(t).fontSize) *
            svg.getScreenCTM().a, left: r.left - box.left, right: box.right - r.right}; })"""


def _layout_pages(role: str, company: Company) -> dict[str, tuple[str, dict[str, str]]]:
    """Every page of a role, with a quarter's filters where the page has figures."""
    pages = {name: (path, dict(LAST_QUARTER) if name in ("overview", "funnel", "compare",
                                                          "leaderboard", "rep") else {})
             for name, path in pages_of(role, company).items()}
    pages["leaderboard-months"] = ("/leaderboard", {**LAST_QUARTER, "period": "month"})
    pages["rows"] = ("/rows", {"kpi": "win_rate", **LAST_QUARTER})
    return pages


@pytest.mark.slow
@pytest.mark.parametrize("screen", SCREENS)
@pytest.mark.parametrize("role", ROLES)
def test_nothing_is_cut_off_on_any_page(browser: Any, server: Server, role: str,
                                        screen: str) -> None:
    """At 1366×900 and 390×844, for each role: no element beyond the screen except in a
    sideways scroller, chart text of 10 px or more and inside its chart; screenshots."""
    viewport = SCREENS[screen]
    session = _sign_in(browser, server, role, viewport)
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        for name, (path, params) in _layout_pages(role, server.company).items():
            session.open(path, params)
            page = session.page
            cut = page.evaluate(CUT_OFF)
            assert not cut, f"{screen} {role} {path}: cut off: {cut[:5]}"
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= viewport["width"], f"{path}: the page is {width}px wide"
            for text in page.evaluate(CHART_TEXT):
                assert text["px"] >= 10 - 0.01, f"{screen} {path}: chart text {text}"
                assert text["left"] >= -0.5 and text["right"] >= -0.5, (
                    f"{screen} {path}: chart text cut off: {text}")
            page.screenshot(path=str(SHOTS / f"screen-{screen}-{role}-{name}.png"),
                            full_page=True)
            session.check()
    finally:
        session.page.context.close()


@pytest.mark.slow
@pytest.mark.parametrize("screen", SCREENS)
def test_the_first_column_stays_while_a_table_scrolls(browser: Any, server: Server,
                                                      screen: str) -> None:
    session = _sign_in(browser, server, "head", SCREENS[screen])
    try:
        session.open("/compare", dict(LAST_QUARTER))
        page = session.page
        scroller = page.locator("#comparison .scroll")
        first = page.locator('table[data-table="comparison"] tbody tr[data-row="item"] th').first
        second = page.locator('table[data-table="comparison"] tbody tr[data-row="item"] td').first
        before, cell_before = _box(first), _box(second)
        moved = scroller.evaluate("s => { s.scrollLeft = 400; return s.scrollLeft; }")
        assert moved > 0, "the comparison does not scroll sideways: it is not wider"
        page.wait_for_timeout(100)
        after, cell_after = _box(first), _box(second)
        assert abs(after["x"] - before["x"]) < 1, (before, after)  # the rep stays
        assert cell_after["x"] < cell_before["x"] - 100  # the figures moved under it
        page.screenshot(path=str(SHOTS / f"compare-scrolled-{screen}.png"), full_page=False)
        session.check()
    finally:
        session.page.context.close()


@pytest.mark.slow
def test_a_figure_opens_the_records_behind_it(browser: Any, server: Server) -> None:
    """Overview → a KPI's number → /rows: as many records as the number, in scope."""
    for role in ("head", "rep"):
        session = _sign_in(browser, server, role, WIDE)
        try:
            session.open("/", dict(LAST_MONTH))
            page = session.page
            cell = page.locator('table[data-table="headline"] td[data-kpi="deals_won"]')
            value = int(float(cell.get_attribute("data-value") or "0"))
            assert value > 0
            with page.expect_navigation():
                cell.locator("a").click()
            assert page.url.startswith(server.url + "/rows?")
            assert page.locator(".subtitle").get_attribute("data-total") == str(value)
            shown = page.locator('table[data-table="rows"] tbody tr').count()
            assert shown == min(value, 100)
            page.screenshot(path=str(SHOTS / f"rows-{role}.png"), full_page=True)
            session.check()
        finally:
            session.page.context.close()


@pytest.mark.slow
def test_the_language_switch_in_a_browser(browser: Any, server: Server) -> None:
    session = _sign_in(browser, server, "team_lead", PHONE)
    page = session.page
    try:
        session.open("/compare")
        page.click("label.nav-button")
        with page.expect_navigation():
            page.click('form.languages button[value="uk"]')
        assert page.url.endswith("/compare")
        assert page.locator("html").get_attribute("lang") == "uk"
        assert page.locator("h1").inner_text() == "Порівняння менеджерів"
        page.screenshot(path=str(SHOTS / "compare-uk-390.png"), full_page=True)
        session.open("/")
        assert page.locator("html").get_attribute("lang") == "uk"  # kept
    finally:
        token = page.locator('form.languages input[name="csrf"]').first.get_attribute("value")
        page.request.post(server.url + "/preferences/language",
                          form={"csrf": token or "", "lang": "en", "next": "/"})
        page.context.close()


# -- a contest on a TV ----------------------------------------------------------------------
TV_SCREENS = {"1920": {"width": 1920, "height": 1080}, "1366": WIDE, "390": PHONE}
# Each text of the board: its size, and whether it runs out of its box.
TV_TEXT = """() => [...document.querySelectorAll('.tv-head h1, .tv-name, .tv-score, .tv-rank')]
  .map(e => ({cls: e.className, text: e.textContent.trim(),
              px: parseFloat(getComputedStyle(e).fontSize),
              overflows: e.scrollWidth > e.clientWidth + 0.5
                         || e.scrollHeight > e.clientHeight + 0.5}))"""


@pytest.mark.parametrize("screen", TV_SCREENS)
@pytest.mark.parametrize("role", ["head", "rep"])
def test_contest_tv_is_readable_and_fits_the_screen(browser: Any, server: Server, role: str,
                                                    screen: str) -> None:
    """The TV mode in Chromium: the places of the REST API's standings in its order, no
    menu, a reload every ``refresh`` seconds; at 1920×1080 letters of 40 px or more and
    the whole board in sight without scrolling (at 1366×900 too); nothing cut off or
    running out of its box on any screen, the phone's included."""
    viewport = TV_SCREENS[screen]
    session = _sign_in(browser, server, role, viewport)
    try:
        session.open(f"/contests/{CONTEST}/tv", {"refresh": "120"})
        page = session.page
        api = page.request.get(f"{server.url}/api/v1/contests/{CONTEST}")
        assert api.status == 200, api.text()
        entries = api.json()["standings"]["entries"]
        shown = page.eval_on_selector_all(".tv-place", "e => e.map(x => x.dataset.key)")
        # Twelve reps (eleven and the script one): the TV's twelve places show them all.
        assert shown == [e["key"] for e in entries] and len(shown) == 12
        assert page.locator("nav").count() == 0 and page.locator(".tv-more").count() == 0
        assert page.locator('meta[http-equiv="refresh"]').get_attribute("content") == "120"
        cut = page.evaluate(CUT_OFF)
        assert not cut, f"{screen} {role}: cut off: {cut[:5]}"
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= viewport["width"], f"the TV page is {width}px wide"
        texts = page.evaluate(TV_TEXT)
        assert not [t for t in texts if t["overflows"]], texts
        if screen != "390":
            height = page.evaluate("document.documentElement.scrollHeight")
            assert height <= viewport["height"], f"{screen}: the board needs scrolling ({height}px)"
        smallest = min(t["px"] for t in texts if t["cls"] in ("tv-name", "tv-score"))
        assert smallest >= {"1920": 40, "1366": 32, "390": 16}[screen], smallest
        page.screenshot(path=str(SHOTS / f"contest-tv-{screen}-{role}.png"), full_page=True)
        session.check()
    finally:
        session.page.context.close()


# -- the targets grid: paste, save, copy, delete -------------------------------------------
PLAN_COLUMN = 4  # the headline table: KPI, value, previous, change, plan, ...
HEADLINE_PLAN = """([kpi, column]) => {
  const cell = document.querySelector(`table[data-table="headline"] td[data-kpi="${kpi}"]`);
  const value = cell.closest('tr').children[column].dataset.value;
  return value === '' ? null : Number(value); }"""
# The targets list: rep -> the plan's raw value (the sixth cell: id, KPI, for, from, to, plan).
LISTED = """() => Object.fromEntries([...document.querySelectorAll(
  'table[data-table="targets"] tbody tr')].map(r => [r.dataset.rep, Number(
  r.children[5].dataset.value)]))"""


def _month(day: dt.date) -> str:
    return day.isoformat()[:7]


def _grid_values(page: Any, rows: int, column: int) -> list[str]:
    return [page.locator(f'input[name="c.{i}.{column}"]').input_value() for i in range(rows)]


def _flash(page: Any) -> str:
    text: str = page.locator('p.ok[role="status"]').inner_text()
    return text


@pytest.mark.slow
def test_the_targets_grid_editor(browser: Any, server: Server) -> None:
    """Paste a block from a spreadsheet into the grid, save: the targets list and the
    overview's plans are the pasted numbers; copy last month; delete the targets ticked."""
    from zoneinfo import ZoneInfo

    from saleskpi.domain.periods import shift_months

    team = server.company.team
    this = dt.datetime.now(ZoneInfo(server.settings.timezone)).date().replace(day=1)
    last, following = shift_months(this, -1), shift_months(this, 1)
    state = server.settings.workspace / "state.sqlite"
    planned = "SELECT count(*) FROM targets WHERE kpi = 'deals_won' AND period_start >= ?"
    with sqlite3.connect(state) as con:
        (before,) = con.execute(planned, (last.isoformat(),)).fetchone()
    assert before == 0, "the demo's targets end before last month: the grid starts empty"
    session = _sign_in(browser, server, "head", WIDE)
    page = session.page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    try:
        grid = {"kpi": "deals_won", "start": _month(last), "months": "3", "team": team}
        session.open("/targets/grid", grid)
        reps = page.eval_on_selector_all('table[data-table="target_grid"] tbody tr',
                                         "rows => rows.map(r => r.dataset.rep)")
        assert len(reps) >= 3 and set(reps) <= server.company.reps_of_team
        # The block as a spreadsheet copies it: last month, then this month, a line per rep.
        block = "".join(f"{10 + i}\t{20 + 2 * i}\r\n" for i in range(len(reps)))
        page.evaluate("text => navigator.clipboard.writeText(text)", block)
        page.locator('input[name="c.0.0"]').click()
        page.keyboard.press("Control+V")
        assert _grid_values(page, len(reps), 0) == [str(10 + i) for i in range(len(reps))]
        assert _grid_values(page, len(reps), 1) == [str(20 + 2 * i) for i in range(len(reps))]
        assert _grid_values(page, len(reps), 2) == [""] * len(reps)  # next month untouched
        assert page.locator("table.grid-editor input.changed").count() == 2 * len(reps)
        page.screenshot(path=str(SHOTS / "targets-grid-pasted.png"), full_page=True)
        with page.expect_navigation():
            page.click('form.grid-form button[type="submit"]')
        assert _flash(page) == f"Saved: {2 * len(reps)} new, 0 replaced, 0 deleted, " \
                               "0 unchanged."
        assert _grid_values(page, len(reps), 1) == [str(20 + 2 * i) for i in range(len(reps))]

        # The targets list and the overview's plans: the pasted numbers.
        listed = {"kpi": "deals_won", "team": team, "month": _month(this)}
        session.open("/targets", listed)
        assert page.evaluate(LISTED) == {rep: 20 + 2 * i for i, rep in enumerate(reps)}
        this_month = sum(20 + 2 * i for i in range(len(reps)))
        for params, plan in (({"team": team}, this_month), ({}, this_month),
                             ({"rep": reps[1]}, 22)):
            session.open("/", params)  # month to date: this month's plans
            assert page.evaluate(HEADLINE_PLAN, ["deals_won", PLAN_COLUMN]) == plan, params

        # Copy last month into this month, replacing what was pasted.
        session.open("/targets/grid", grid)
        copy = page.locator("form[data-copy-month]")
        assert copy.locator('select[name="to"]').input_value() == _month(this)
        copy.locator('input[name="replace"]').check()
        with page.expect_navigation():
            copy.locator("button").click()
        assert re.fullmatch(rf"Copied \w+ \d{{4}} to \w+ \d{{4}}: 0 new, {len(reps)} "
                            r"replaced, 0 kept as set\.", _flash(page)), _flash(page)
        assert _grid_values(page, len(reps), 1) == [str(10 + i) for i in range(len(reps))]
        session.open("/", {"team": team})
        copied = sum(10 + i for i in range(len(reps)))
        assert page.evaluate(HEADLINE_PLAN, ["deals_won", PLAN_COLUMN]) == copied

        # Delete: every target of this month ticked at once, then last month's one by one.
        session.accept_confirm = True
        session.open("/targets", listed)
        page.check("input[data-select-all]")
        ticked = page.locator('input[type=checkbox][form="delete-targets"]:checked')
        assert ticked.count() == len(reps)
        with page.expect_navigation():
            page.click('form#delete-targets button[type="submit"]')
        assert session.confirmed == ["Delete the ticked targets?"]
        assert _flash(page) == f"{len(reps)} targets deleted."
        assert "month=" in page.url and page.locator("#targets p.empty").count() == 1
        session.open("/targets", {**listed, "month": _month(last)})
        for box in page.locator('input[type=checkbox][form="delete-targets"]').all():
            box.check()
        with page.expect_navigation():
            page.click('form#delete-targets button[type="submit"]')
        assert _flash(page) == f"{len(reps)} targets deleted."
        with sqlite3.connect(state) as con:
            assert con.execute(planned, (last.isoformat(),)).fetchone() == (0,)
            deleted = con.execute(
                "SELECT count(*) FROM target_changes WHERE action = 'deleted' AND "
                "actor = ? AND kpi = 'deals_won' AND period_start >= ?",
                (server.users["head"], last.isoformat())).fetchone()
        assert deleted == (2 * len(reps),)  # each deletion has its audit line
        session.open("/targets/grid", grid)
        assert _grid_values(page, len(reps), 1) == [""] * len(reps)
        assert following > this
        page.screenshot(path=str(SHOTS / "targets-grid-1366.png"), full_page=True)
        session.check()
    finally:
        page.context.close()
