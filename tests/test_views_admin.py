"""Catalogue, reps, users, tokens, imports and sync status: one JSON on the CLI and REST.

Each REST answer is compared with the CLI's ``--format json`` on the same workspace,
and both with what was counted by hand from the fixtures below (or read from the
files with hand-written SQL), never with the code under test.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from fastapi.testclient import TestClient

from saleskpi.domain.settings import Settings
from saleskpi.service.auth import add_user
from saleskpi.service.core import SalesKpiService
from saleskpi.surfaces.server import create_app
from tests.conftest import CliResult

REPS = """id,name,team
r1,Ann,North
r2,Bob,North
r3,Cid,South
"""
DEALS = """id,rep_id,status,amount,closed_at
d1,r1,won,100,2024-01-10
d2,r1,lost,10,2024-01-11
d3,r2,won,50,2024-01-12
d4,r3,won,70,2024-01-13
d5,r3,won,30,2024-02-13
d6,r2,open,40,
"""
# By hand: 4 won (d1 d3 d4 d5), 5 closed (won or lost), 6 deals.
WON, CLOSED, ALL_DEALS = 4, 5, 6
USER_KPIS = """kpis:
  - key: won_twice
    kind: derived
    name: {en: Won deals twice, ru: Дважды выигранные}
    formula: deals_won * 2
"""
ROLES = {
    "admin": {"role": "admin"},
    "head": {"role": "head"},
    "lead_north": {"role": "team_lead", "team": "North"},
    "rep_r1": {"role": "rep", "rep_id": "r1"},
}
PASSWORD = "correct horse battery"
BUILTIN = Path(__file__).resolve().parents[1] / "src" / "saleskpi" / "catalog" / "builtin.yaml"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("admin")
    data = root / "data"
    data.mkdir()
    (data / "reps.csv").write_text(REPS, encoding="utf-8")
    (data / "deals.csv").write_text(DEALS, encoding="utf-8")
    settings = Settings(workspace=root / "ws")
    settings.workspace.mkdir()
    (settings.workspace / "kpis.yaml").write_text(USER_KPIS, encoding="utf-8")
    assert SalesKpiService(settings).import_path(data, mapping=None, source=None,
                                                 dry_run=False).ok
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


@pytest.fixture(scope="module")
def rep_token(app: Any) -> str:
    client, csrf = client_for(app, "rep_r1")
    response = client.post("/api/v1/tokens", headers={"X-CSRF-Token": csrf},
                           json={"name": "rep script"})
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


def cli_json(run_cli: Any, workspace: Path, *args: object) -> Any:
    result: CliResult = run_cli(workspace, *args, "--format", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    return result.json()


def count_deals(settings: Settings) -> int:
    with duckdb.connect(str(settings.analytics_path), read_only=True) as con:
        rows = con.execute("SELECT count(*) FROM deals").fetchall()
    return int(rows[0][0])


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["type"] == f"urn:saleskpi:error:{code}"
    assert body["status"] == status and body["error"] == code
    assert body["detail"] and body["detail"] == body["message"]
    return body


# -- the catalogue ----------------------------------------------------------------------
def test_catalogue_rest_equals_cli(app: Any, settings: Settings, run_cli: Any) -> None:
    client, _csrf = client_for(app, "lead_north")
    api = client.get("/api/v1/catalog").json()
    cli = cli_json(run_cli, settings.workspace, "kpis")
    assert api["kpis"] == cli["kpis"] and api["lang"] == cli["lang"] == "en"
    builtin = yaml.safe_load(BUILTIN.read_text(encoding="utf-8"))["kpis"]
    assert [k["key"] for k in api["kpis"]] == [k["key"] for k in builtin] + ["won_twice"]
    assert api["page"] == {"total_rows": len(builtin) + 1, "limit": 1000, "offset": 0}
    by_key = {k["key"]: k for k in api["kpis"]}
    win_rate = next(k for k in builtin if k["key"] == "win_rate")
    assert by_key["win_rate"] == {
        "key": "win_rate", "name": "Win rate", "kind": "ratio", "unit": "ratio",
        "group": "funnel", "description": win_rate["description"]["en"],
        "higher_is_better": True, "user_defined": False, "origin": "builtin"}
    assert by_key["won_twice"]["user_defined"] is True
    assert by_key["won_twice"]["origin"] == "kpis.yaml"
    # The reader's language: names and descriptions from the catalogue's own text.
    russian = client.get("/api/v1/catalog", params={"lang": "ru", "limit": 2,
                                                    "offset": 1}).json()
    assert [k["name"] for k in russian["kpis"]] == [k["name"]["ru"] for k in builtin[1:3]]
    assert russian["page"]["total_rows"] == len(builtin) + 1


def test_explain_gives_the_definition_and_sql_that_counts(app: Any, settings: Settings,
                                                          run_cli: Any) -> None:
    client, _csrf = client_for(app, "rep_r1")
    response = client.get("/api/v1/catalog/win_rate")
    assert response.status_code == 200, response.text
    api = response.json()
    assert api == cli_json(run_cli, settings.workspace, "kpis", "win_rate")
    assert (api["kind"], api["unit"], api["higher_is_better"]) == ("ratio", "ratio", True)
    assert api["depends_on"] == ["deals_won"]
    roles = [(m["role"], m["kpi"], m["entity"], m["where"]) for m in api["measures"]]
    assert roles == [("numerator", "deals_won", "deals", ["status == 'won'"]),
                     ("denominator", None, "deals", ["status in ('won', 'lost')"])]
    # The SQL is what the engine runs: over all time it counts the hand-counted deals.
    (compiled,) = api["sql"]
    assert compiled["columns"] == {"m0": "deals.count(*)", "m1": "deals.count(*)"}
    with duckdb.connect(str(settings.analytics_path), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        assert con.execute(compiled["sql"]).fetchall() == [(WON, CLOSED)]
    derived = client.get("/api/v1/catalog/won_twice").json()
    assert derived["formula"] == "deals_won * 2" and derived["user_defined"] is True
    assert derived["depends_on"] == ["deals_won"]
    missing = assert_problem(client.get("/api/v1/catalog/win_rat"), 404, "unknown_kpi")
    assert "win_rate" in missing["detail"]


def test_catalogue_edits_are_for_managers(app: Any, rep_token: str) -> None:
    script = TestClient(app)
    bearer = {"Authorization": f"Bearer {rep_token}"}
    definition = {"kind": "derived", "name": {"en": "X"}, "formula": "deals_won"}
    assert_problem(script.put("/api/v1/catalog/x_kpi", headers=bearer, json=definition),
                   403, "forbidden")
    assert_problem(script.delete("/api/v1/catalog/won_twice", headers=bearer), 403,
                   "forbidden")
    client, csrf = client_for(app, "head")
    saved = client.put("/api/v1/catalog/x_kpi", headers={"X-CSRF-Token": csrf},
                       json=definition)
    assert saved.status_code == 200 and saved.json() == {"ok": True, "key": "x_kpi"}
    listed = client.get("/api/v1/catalog").json()["kpis"]
    assert [k["key"] for k in listed if k["user_defined"]] == ["won_twice", "x_kpi"]
    gone = client.delete("/api/v1/catalog/x_kpi", headers={"X-CSRF-Token": csrf})
    assert gone.json() == {"ok": True, "key": "x_kpi"}
    assert_problem(client.delete("/api/v1/catalog/win_rate", headers={"X-CSRF-Token": csrf}),
                   404, "not_found")


# -- reps, users, tokens ----------------------------------------------------------------
def test_reps_rest_equals_cli_and_is_scoped(app: Any, settings: Settings, run_cli: Any,
                                            rep_token: str) -> None:
    client, _csrf = client_for(app, "head")
    api = client.get("/api/v1/reps").json()
    cli = cli_json(run_cli, settings.workspace, "reps")
    assert api["people"] == cli["people"]
    assert api["possible_duplicates"] == cli["possible_duplicates"] == []
    assert [(p["person"], p["name"], p["matched_by"]) for p in api["people"]] == [
        ("r1", "Ann", "id"), ("r2", "Bob", "id"), ("r3", "Cid", "id")]
    assert api["people"][0]["members"] == [{"source": "files", "id": "r1", "name": "Ann",
                                            "email": None}]
    lead, _csrf = client_for(app, "lead_north")
    assert [p["person"] for p in lead.get("/api/v1/reps").json()["people"]] == ["r1", "r2"]
    mine = TestClient(app).get("/api/v1/reps", headers={"Authorization": f"Bearer {rep_token}"})
    assert [p["person"] for p in mine.json()["people"]] == ["r1"]
    assert mine.json()["page"]["total_rows"] == 1


def test_users_rest_equals_cli_and_only_managers(app: Any, settings: Settings, run_cli: Any,
                                                 rep_token: str) -> None:
    client, csrf = client_for(app, "head")
    api = client.get("/api/v1/users").json()
    cli = cli_json(run_cli, settings.workspace, "user", "list")
    assert api["users"] == cli["users"]
    assert [(u["username"], u["role"], u["rep_id"], u["team"]) for u in api["users"]
            if u["username"] in ROLES] == [
        ("admin", "admin", None, None), ("head", "head", None, None),
        ("lead_north", "team_lead", None, "North"), ("rep_r1", "rep", "r1", None)]
    bearer = {"Authorization": f"Bearer {rep_token}"}
    script = TestClient(app)
    assert_problem(script.get("/api/v1/users", headers=bearer), 403, "forbidden")
    assert_problem(script.post("/api/v1/users", headers=bearer, json={
        "username": "sneaky", "password": "long enough pw", "role": "admin"}), 403,
        "forbidden")
    # A head may add users but not admins; a bad role is named.
    assert_problem(client.post("/api/v1/users", headers={"X-CSRF-Token": csrf}, json={
        "username": "boss2", "password": "long enough pw", "role": "admin"}), 403, "forbidden")
    assert_problem(client.post("/api/v1/users", headers={"X-CSRF-Token": csrf}, json={
        "username": "x", "password": "long enough pw", "role": "king"}), 400, "bad_role")
    created = client.post("/api/v1/users", headers={"X-CSRF-Token": csrf}, json={
        "username": "rep_r3", "password": "long enough pw", "role": "rep", "rep_id": "r3"})
    assert created.status_code == 201, created.text
    assert {k: v for k, v in created.json().items() if k != "id"} == {
        "username": "rep_r3", "role": "rep", "rep_id": "r3", "team": None, "lang": "en",
        "disabled": False}


def test_a_new_users_rep_and_team_are_checked_against_the_data(
        app: Any, settings: Settings, run_cli: Any, tmp_path: Path) -> None:
    """A misspelt rep or team would make a user who sees nothing: refused with the
    closest, on the API and the CLI alike; a rep may be named by name (stored as the
    rep's id). Before any data is imported there is nothing to check against."""
    client, csrf = client_for(app, "head")
    headers = {"X-CSRF-Token": csrf}
    body = assert_problem(client.post("/api/v1/users", headers=headers, json={
        "username": "typo", "password": "long enough pw", "role": "rep", "rep_id": "r33"}),
        400, "unknown_rep")
    assert "did you mean r3?" in body["detail"]
    body = assert_problem(client.post("/api/v1/users", headers=headers, json={
        "username": "typo", "password": "long enough pw", "role": "team_lead",
        "team": "Nort"}), 400, "unknown_team")
    assert "North" in body["detail"]
    by_name = client.post("/api/v1/users", headers=headers, json={
        "username": "bob_by_name", "password": "long enough pw", "role": "rep",
        "rep_id": "Bob"})
    assert by_name.status_code == 201, by_name.text
    assert by_name.json()["rep_id"] == "r2"
    result = run_cli(settings.workspace, "user", "add", "typo2", "--role", "rep", "--rep",
                     "r9", "--password", "long enough pw")
    assert result.returncode == 2 and "unknown rep 'r9'" in result.stderr
    result = run_cli(settings.workspace, "user", "add", "lead_south", "--role",
                     "team_lead", "--team", "South", "--password", "long enough pw")
    assert result.returncode == 0, result.stderr
    names = {u["username"] for u in cli_json(run_cli, settings.workspace, "user", "list")
             ["users"]}
    assert {"bob_by_name", "lead_south"} <= names and not {"typo", "typo2"} & names
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli(empty, "user", "add", "early", "--role", "rep", "--rep", "r1",
                     "--password", "long enough pw")
    assert result.returncode == 0, result.stderr


def test_tokens_list_names_never_secrets(app: Any, rep_token: str) -> None:
    script = TestClient(app)
    response = script.get("/api/v1/tokens", headers={"Authorization": f"Bearer {rep_token}"})
    assert response.status_code == 200, response.text
    assert [t["name"] for t in response.json()["tokens"]] == ["rep script"]
    created = dt.datetime.fromisoformat(response.json()["tokens"][0]["created"])
    assert abs(dt.datetime.now(dt.UTC) - created) < dt.timedelta(hours=1)
    assert rep_token not in response.text and "hash" not in response.text
    head, _csrf = client_for(app, "head")
    assert "rep script" not in head.get("/api/v1/tokens").text


# -- imports ----------------------------------------------------------------------------
NEW_DEALS = (b"id,rep_id,status,amount,closed_at\n"
             b"d10,r2,won,5,2024-03-01\nd11,r3,lost,7,2024-03-02\n")


def test_import_dry_run_then_confirm_once(app: Any, settings: Settings, run_cli: Any,
                                          tmp_path: Path) -> None:
    client, csrf = client_for(app, "head")
    headers = {"X-CSRF-Token": csrf}
    before = count_deals(settings)
    assert before == ALL_DEALS
    dry = client.post("/api/v1/imports", headers=headers,
                      files=[("files", ("deals.csv", NEW_DEALS, "text/csv"))])
    assert dry.status_code == 200, dry.text
    report = dry.json()
    assert report["dry_run"] is True and report["ok"] is True
    assert report["entities"]["deals"]["inserted"] == 2
    token = report["confirm"]
    assert isinstance(token, str) and len(token) >= 16
    assert count_deals(settings) == before  # a dry run writes nothing
    # The CLI's dry run of the same file prints the same report (without a token).
    folder = tmp_path / "upload"
    folder.mkdir()
    (folder / "deals.csv").write_bytes(NEW_DEALS)
    cli = cli_json(run_cli, settings.workspace, "import", folder, "--dry-run")
    assert cli["confirm"] is None
    assert {**report, "confirm": None} == cli
    # Only the uploader confirms; then the rows are there; the token works once.
    other, other_csrf = client_for(app, "admin")
    assert_problem(other.post(f"/api/v1/imports/{token}/confirm",
                              headers={"X-CSRF-Token": other_csrf}), 403, "forbidden")
    done = client.post(f"/api/v1/imports/{token}/confirm", headers=headers)
    assert done.status_code == 200, done.text
    assert done.json()["dry_run"] is False and done.json()["confirm"] is None
    assert done.json()["entities"]["deals"]["inserted"] == 2
    assert count_deals(settings) == before + 2
    with duckdb.connect(str(settings.analytics_path), read_only=True) as con:
        assert con.execute("SELECT id, rep_id, status, amount FROM deals "
                           "WHERE id IN ('d10', 'd11') ORDER BY id").fetchall() == [
            ("d10", "r2", "won", 5), ("d11", "r3", "lost", 7)]
    again = client.post(f"/api/v1/imports/{token}/confirm", headers=headers)
    assert_problem(again, 409, "already_imported")
    assert count_deals(settings) == before + 2
    assert_problem(client.post("/api/v1/imports/not-a-real-token-at-all/confirm",
                               headers=headers), 404, "no_pending_import")


def test_a_confirmation_killed_mid_import_may_be_confirmed_again(app: Any,
                                                                 settings: Settings) -> None:
    """The claim names its process; once that process is gone (kill -9 during the import,
    whose journaled write the next open settles) the uploader may confirm again."""
    client, csrf = client_for(app, "head")
    headers = {"X-CSRF-Token": csrf}
    before = count_deals(settings)
    dry = client.post("/api/v1/imports", headers=headers, files=[(
        "files", ("deals.csv", b"id,rep_id,status,amount,closed_at\n"
                               b"d20,r2,won,5,2024-03-01\nd21,r3,lost,7,2024-03-02\n",
                  "text/csv"))])
    assert dry.status_code == 200, dry.text
    token = dry.json()["confirm"]
    root = settings.workspace / "uploads" / token
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead = root / f"claimed-{int(gone.stdout)}.json"
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (root / "pending.json").rename(root / f"claimed-{live.pid}.json")
        # Its importer still runs: refused, as a second confirmation always was.
        assert_problem(client.post(f"/api/v1/imports/{token}/confirm", headers=headers),
                       409, "already_imported")
        (root / f"claimed-{live.pid}.json").rename(dead)
    finally:
        live.kill()
        live.wait()
    done = client.post(f"/api/v1/imports/{token}/confirm", headers=headers)
    assert done.status_code == 200, done.text
    assert done.json()["entities"]["deals"]["inserted"] == 2
    assert count_deals(settings) == before + 2
    assert_problem(client.post(f"/api/v1/imports/{token}/confirm", headers=headers),
                   409, "already_imported")


def test_bad_uploads_are_clear_problems(app: Any, settings: Settings, rep_token: str) -> None:
    client, csrf = client_for(app, "head")
    headers = {"X-CSRF-Token": csrf}
    uploads = settings.workspace / "uploads"
    staged_before = set(uploads.iterdir()) if uploads.is_dir() else set()
    wrong = assert_problem(client.post("/api/v1/imports", headers=headers, files=[
        ("files", ("tool.exe", b"MZ", "application/octet-stream"))]), 400, "bad_file")
    assert "tool.exe" in wrong["detail"]
    unknown = assert_problem(client.post("/api/v1/imports", headers=headers,
                                         params={"mapping": "../../etc/passwd"},
                                         files=[("files", ("deals.csv", NEW_DEALS, "text/csv"))]),
                             400, "bad_mapping")
    assert "maven-crm" in unknown["detail"]  # the known mappings are named
    # Data with errors: the report says where, and there is nothing to confirm.
    broken = client.post("/api/v1/imports", headers=headers, files=[
        ("files", ("deals.csv", b"id,rep_id,status\nd12,r1,won\n", "text/csv"))])
    assert broken.status_code == 200, broken.text
    assert broken.json()["ok"] is False and broken.json()["confirm"] is None
    assert {e["column"] for e in broken.json()["errors"]} >= {"closed_at"}
    # None of these uploads is left waiting in the workspace.
    assert (set(uploads.iterdir()) if uploads.is_dir() else set()) == staged_before
    assert_problem(TestClient(app).post(
        "/api/v1/imports", headers={"Authorization": f"Bearer {rep_token}"},
        files=[("files", ("deals.csv", NEW_DEALS, "text/csv"))]), 403, "forbidden")


# -- sync status ------------------------------------------------------------------------
@pytest.fixture
def synced(tmp_path: Path) -> Iterator[Settings]:
    """A workspace that synced the fake Pipedrive and imported a file as amocrm's source."""
    from saleskpi.service.syncs import run_sync
    from saleskpi.sources.connectors.base import ClientOptions
    from saleskpi.sources.connectors.credentials import CredentialStore
    from tests.fakes.pipedrive import TOKEN, FakePipedrive

    settings = Settings(workspace=tmp_path / "ws")
    add_user(settings, "head", PASSWORD, "head")
    add_user(settings, "rep_r1", PASSWORD, "rep", rep_id="r1")
    data = tmp_path / "data"
    data.mkdir()
    (data / "reps.csv").write_text(REPS, encoding="utf-8")
    assert SalesKpiService(settings).import_path(data, mapping=None, source="amocrm",
                                                 dry_run=False).ok
    for fake in FakePipedrive(page_limit=100).serve():
        CredentialStore(settings).put("pipedrive", {"base_url": fake.url, "api_token": TOKEN,
                                                    "webhook_user": "u",
                                                    "webhook_password": "p" * 12})
        run_sync(settings, "pipedrive", options=ClientOptions(rate_limit=1000, backoff=0.01))
    yield settings


def test_sync_status_rest_equals_cli(synced: Settings, run_cli: Any) -> None:
    app = create_app(synced)
    client, _csrf = client_for(app, "head")
    response = client.get("/api/v1/sync/status")
    assert response.status_code == 200, response.text
    api = response.json()
    assert api == cli_json(run_cli, synced.workspace, "sync", "--status")
    by_crm = {s["crm"]: s for s in api["crms"]}
    assert sorted(by_crm) == ["amocrm", "bitrix24", "hubspot", "pipedrive"]
    assert [c for c, s in by_crm.items() if s["connected"]] == ["pipedrive"]
    # What the sync saved, read from the state database by hand.
    with sqlite3.connect(synced.workspace / "state.sqlite") as con:
        cursor, updated = con.execute(
            "SELECT cursor, updated_at FROM sync_state WHERE crm = 'pipedrive'").fetchone()
    assert by_crm["pipedrive"]["cursor"] == json.loads(cursor) != {}
    assert dt.datetime.fromisoformat(by_crm["pipedrive"]["last_sync"]) == \
        dt.datetime.fromisoformat(updated).replace(tzinfo=dt.UTC)
    assert by_crm["hubspot"] == {"crm": "hubspot", "connected": False, "last_sync": None,
                                 "cursor": {}, "last_run": None}
    # The file imported as amocrm's source: 3 reps (REPS), in the import log.
    run = by_crm["amocrm"]["last_run"]
    assert run["ok"] is True and run["entities"]["reps"]["inserted"] == 3
    assert by_crm["amocrm"]["connected"] is False and by_crm["amocrm"]["last_sync"] is None
    only = client.get("/api/v1/sync/status", params={"crm": "pipedrive"}).json()
    assert only["crms"] == [by_crm["pipedrive"]]
    assert_problem(client.get("/api/v1/sync/status", params={"crm": "salesforce"}), 400,
                   "unknown_crm")
    rep, _csrf = client_for(app, "rep_r1")
    assert_problem(rep.get("/api/v1/sync/status"), 403, "forbidden")
