"""The REST API: the CLI's numbers, scoped to the caller, with clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from saleskpi.domain.settings import Settings
from saleskpi.service.auth import add_user
from saleskpi.service.core import SalesKpiService
from saleskpi.surfaces.server import create_app
from tests.conftest import CliResult

REPS = """id,name,team
r1,Ann <script>alert(1)</script>,North
r2,=Bob,North
r3,Cid,South
"""
DEALS = """id,rep_id,status,amount,closed_at
d1,r1,won,100,2024-01-10
d2,r1,lost,10,2024-01-11
d3,r2,won,50,2024-01-12
d4,r3,won,70,2024-01-13
d5,r3,won,30,2024-02-13
"""
ROLES = {
    "admin": {"role": "admin"},
    "head": {"role": "head"},
    "lead_north": {"role": "team_lead", "team": "North"},
    "rep_r1": {"role": "rep", "rep_id": "r1"},
}
PASSWORD = "correct horse battery"
# What each role may see of the reps.
VISIBLE = {"admin": {"r1", "r2", "r3"}, "head": {"r1", "r2", "r3"},
           "lead_north": {"r1", "r2"}, "rep_r1": {"r1"}}


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("api")
    data = root / "data"
    data.mkdir()
    (data / "reps.csv").write_text(REPS, encoding="utf-8")
    (data / "deals.csv").write_text(DEALS, encoding="utf-8")
    settings = Settings(workspace=root / "ws")
    report = SalesKpiService(settings).import_path(data, mapping=None, source=None,
                                                   dry_run=False)
    assert report.ok
    for name, spec in ROLES.items():
        add_user(settings, name, PASSWORD, spec["role"], rep_id=spec.get("rep_id"),
                 team=spec.get("team"))
    return settings


@pytest.fixture(scope="module")
def app(settings: Settings) -> Any:
    return create_app(settings)


def client_for(app: Any, username: str) -> tuple[TestClient, str]:
    client = TestClient(app)
    response = client.post("/api/v1/session", json={"username": username,
                                                    "password": PASSWORD})
    assert response.status_code == 200, response.text
    return client, response.json()["csrf"]


def test_scorecard_json_equals_the_cli(app: Any, settings: Settings, run_cli) -> None:
    client, _csrf = client_for(app, "head")
    response = client.get("/api/v1/scorecard", params=[
        ("kpi", "deals_won"), ("kpi", "revenue"), ("kpi", "win_rate"), ("by", "rep"),
        ("period", "month"), ("from", "2024-01-01"), ("to", "2024-02-29")])
    assert response.status_code == 200, response.text
    api = response.json()
    cli: CliResult = run_cli(settings.workspace, "kpi", "deals_won", "revenue", "win_rate",
                             "--by", "rep", "--period", "month", "--from", "2024-01-01",
                             "--to", "2024-02-29", "--format", "json")
    assert cli.returncode == 0, cli.stderr
    expected = json.loads(cli.stdout)
    assert api["rows"] == expected["rows"]
    assert api["totals"] == expected["totals"]
    assert api["page"] == {"total_rows": 6, "limit": 1000, "offset": 0}
    # r1 in January: 1 won of 2 closed, 100 revenue (counted from DEALS by hand).
    january = next(r for r in api["rows"] if r["rep"] == "r1" and r["period"] == "2024-01-01")
    assert january["win_rate"] == {"value": 0.5, "unit": "ratio", "numerator": 1,
                                   "denominator": 2, "ci_low": pytest.approx(0.0945, abs=1e-3),
                                   "ci_high": pytest.approx(0.9055, abs=1e-3)}


@pytest.mark.parametrize("username", list(ROLES))
@pytest.mark.parametrize("params", [
    [("by", "rep")],
    [("by", "rep"), ("where", "rep=r3")],
    [("by", "rep"), ("where", "rep=r1,r2,r3")],
    [("by", "team")],
    [("by", "team"), ("where", "team=South")],
    [],
])
def test_no_role_sees_data_outside_its_scope(app: Any, username: str,
                                             params: list[tuple[str, str]]) -> None:
    client, _csrf = client_for(app, username)
    response = client.get("/api/v1/scorecard", params=[("kpi", "revenue"), ("kpi", "deals_won"),
                                                       *params])
    assert response.status_code == 200, response.text
    data = response.json()
    visible = VISIBLE[username]
    revenue_by_rep = {"r1": 100, "r2": 50, "r3": 100}
    allowed_total = sum(revenue_by_rep[r] for r in visible)
    for row in data["rows"] + data["totals"]:
        assert row["revenue"]["value"] <= allowed_total
        if "rep" in row:
            assert row["rep"] in visible
            if row["revenue"]["value"]:
                assert row["revenue"]["value"] == revenue_by_rep[row["rep"]]
        if "team" in row and username == "lead_north":
            assert row["team"] in ("North", None) or row["revenue"]["value"] == 0


@pytest.mark.parametrize(("username", "status"), [("admin", 201), ("head", 201),
                                                  ("lead_north", 403), ("rep_r1", 403)])
def test_only_managers_create_users(app: Any, username: str, status: int) -> None:
    client, csrf = client_for(app, username)
    response = client.post("/api/v1/users", headers={"X-CSRF-Token": csrf},
                           json={"username": f"new_{username}", "password": "long enough pw",
                                 "role": "rep", "rep_id": "r2"})
    assert response.status_code == status, response.text
    assert client.get("/api/v1/users").status_code == (200 if status == 201 else 403)


def test_changes_need_the_csrf_token(app: Any) -> None:
    client, _csrf = client_for(app, "admin")
    response = client.post("/api/v1/users", json={"username": "x", "password": "long enough pw",
                                                  "role": "head"})
    assert response.status_code == 403
    assert response.json()["error"] == "csrf"


def test_api_token_for_scripts(app: Any) -> None:
    client, csrf = client_for(app, "rep_r1")
    token = client.post("/api/v1/tokens", headers={"X-CSRF-Token": csrf},
                        json={"name": "export"}).json()["token"]
    script = TestClient(app)
    response = script.get("/api/v1/scorecard", params={"kpi": "revenue", "by": "rep"},
                          headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert [r["rep"] for r in response.json()["rows"]] == ["r1"]
    bad = script.get("/api/v1/scorecard", params={"kpi": "revenue"},
                     headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and bad.json()["error"] == "bad_token"


def test_errors_are_machine_readable_without_traces(app: Any) -> None:
    anonymous = TestClient(app)
    assert anonymous.get("/api/v1/scorecard", params={"kpi": "revenue"}).json()["error"] == \
        "not_signed_in"
    client, _csrf = client_for(app, "head")
    response = client.get("/api/v1/scorecard", params={"kpi": "win_rat"})
    assert response.status_code == 400
    assert response.json()["error"] == "bad_query"
    assert "win_rate" in response.json()["message"]
    assert client.get("/api/v1/scorecard", params={"kpi": "revenue", "period": "x"}
                      ).json()["error"] == "bad_period"
    invalid = client.get("/api/v1/scorecard", params={"kpi": "revenue", "from": "soon"})
    assert invalid.status_code == 422 and invalid.json()["error"] == "invalid_request"
    assert "Traceback" not in invalid.text


def test_upload_dry_run_then_import(app: Any, tmp_path: Path) -> None:
    client, csrf = client_for(app, "head")
    files = [("files", ("deals.csv", b"id,rep_id,status,amount,closed_at\n"
                        b"d9,r2,won,5,2024-03-01\n", "text/csv"))]
    dry = client.post("/api/v1/imports", headers={"X-CSRF-Token": csrf}, files=files)
    assert dry.status_code == 200, dry.text
    assert dry.json()["dry_run"] and dry.json()["entities"]["deals"]["inserted"] == 1
    bad = client.post("/api/v1/imports", headers={"X-CSRF-Token": csrf}, files=[
        ("files", ("deals.csv", b"id,rep_id,status\nd10,nobody,won\n", "text/csv"))])
    report = bad.json()
    assert not report["ok"]
    assert {e["column"] for e in report["errors"]} >= {"closed_at"}


def test_catalogue_editor_validates_before_saving(app: Any, settings: Settings) -> None:
    client, csrf = client_for(app, "head")
    good = client.put("/api/v1/catalog/won_per_rep", headers={"X-CSRF-Token": csrf}, json={
        "kind": "derived", "name": {"en": "Won deals x2"}, "formula": "deals_won * 2"})
    assert good.status_code == 200, good.text
    bad = client.put("/api/v1/catalog/broken", headers={"X-CSRF-Token": csrf}, json={
        "kind": "ratio", "name": {"en": "B"}, "numerator": "deals_won", "denominator": "closd"})
    assert bad.status_code == 400
    assert "closd" in bad.json()["message"]
    value = client.get("/api/v1/scorecard", params={"kpi": "won_per_rep",
                                                    "range": "all"}).json()
    assert value["rows"][0]["won_per_rep"]["value"] == 8  # 4 won deals x 2
    assert client.delete("/api/v1/catalog/won_per_rep",
                         headers={"X-CSRF-Token": csrf}).status_code == 200


MANAGERS = {"admin", "head"}
EVERYONE = set(ROLES)
# Every route of the API: who may call it. Data routes are open to all roles but
# scoped (test_no_role_sees_data_outside_its_scope); the rest need a manager.
ROUTES: list[tuple[str, str, dict[str, Any], set[str]]] = [
    ("GET", "/api/v1/me", {}, EVERYONE),
    ("GET", "/api/v1/scorecard", {"params": {"kpi": "revenue"}}, EVERYONE),
    ("GET", "/api/v1/catalog", {}, EVERYONE),
    ("PUT", "/api/v1/catalog/matrix_kpi", {"json": {"kind": "derived", "name": {"en": "M"},
                                                     "formula": "deals_won"}}, MANAGERS),
    ("DELETE", "/api/v1/catalog/matrix_kpi", {}, MANAGERS),
    ("POST", "/api/v1/imports", {"files": [("files", ("reps.csv", b"id,name\nr9,Z\n",
                                                       "text/csv"))]}, MANAGERS),
    ("GET", "/api/v1/users", {}, MANAGERS),
    ("POST", "/api/v1/users", {"json": {"username": "matrix_{role}", "password": "long enough",
                                        "role": "rep", "rep_id": "r3"}}, MANAGERS),
    ("POST", "/api/v1/tokens", {"json": {"name": "matrix"}}, EVERYONE),
]


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r[0]} {r[1]}")
def test_route_by_role_matrix(app: Any, route: tuple[str, str, dict[str, Any], set[str]]) -> None:
    method, path, kwargs, allowed = route
    anonymous = TestClient(app).request(method, path, **kwargs)
    assert anonymous.status_code in (401, 403), f"anonymous got {anonymous.status_code}"
    for role in ("rep_r1", "lead_north", "head", "admin"):
        client, csrf = client_for(app, role)
        call = dict(kwargs)
        if "json" in call:
            call["json"] = {k: (v.format(role=role) if isinstance(v, str) else v)
                            for k, v in call["json"].items()}
        response = client.request(method, path, headers={"X-CSRF-Token": csrf}, **call)
        if role in allowed:
            assert response.status_code < 400 or response.status_code == 404, (
                role, response.status_code, response.text)
        else:
            assert response.status_code == 403, (role, response.status_code, response.text)
            assert response.json()["error"] == "forbidden"


def test_login_is_rate_limited(app: Any) -> None:
    """Runs last: it locks lead_north out for five minutes, even with the right password."""
    client = TestClient(app)
    codes = [client.post("/api/v1/session", json={"username": "lead_north",
                                                  "password": "wrong"}).status_code
             for _ in range(6)]
    assert codes[:5] == [401] * 5 and codes[5] == 429
    right = client.post("/api/v1/session", json={"username": "lead_north",
                                                 "password": PASSWORD})
    assert right.status_code == 429
