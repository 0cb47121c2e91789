"""Schemathesis over every route of the OpenAPI spec, in-process: no answer is a 5xx.

The app runs as ``saleskpi serve`` builds it (CSRF checks and sign-in throttling
on), called through ASGI without a network. Each generated request carries a fresh
API token of the role under test, so a request that revokes the caller's own token
or disables a user does not blind the ones after it. The budget is small enough for
every CI run; the longer search of SECURITY.md is the same test with more examples:

    SALESKPI_SCHEMATHESIS_EXAMPLES=60 python -m pytest tests/test_schemathesis.py
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from saleskpi.domain.settings import Settings
from saleskpi.service.auth import add_user, list_users, new_token, set_disabled
from saleskpi.service.bonus import write_example_plans
from saleskpi.service.core import SalesKpiService
from saleskpi.surfaces.server import create_app

REPS = """id,name,team
r1,Ann,North
r2,Bob,North
r3,Cid,South
"""
DEALS = """id,rep_id,status,amount,closed_at,created_at
d1,r1,won,100,2024-01-10,2024-01-02
d2,r1,lost,10,2024-01-11,2024-01-03
d3,r2,won,50,2024-01-12,2024-01-04
d4,r3,won,70,2024-01-13,2024-01-05
d5,r3,open,30,,2024-02-13
"""
PASSWORD = "correct horse battery"
USERS = {
    "admin": {"role": "admin"},
    "head": {"role": "head"},
    "rep_r1": {"role": "rep", "rep_id": "r1"},
}
# Examples per route, generation mode and role: 623 requests per role at 10 (~35 s CPU).
# SALESKPI_SCHEMATHESIS_EXAMPLES=100 runs the longer search recorded in SECURITY.md.
EXAMPLES = int(os.environ.get("SALESKPI_SCHEMATHESIS_EXAMPLES", "10"))


@pytest.fixture(scope="module")
def workspace_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("schemathesis")
    data = root / "data"
    data.mkdir()
    (data / "reps.csv").write_text(REPS, encoding="utf-8")
    (data / "deals.csv").write_text(DEALS, encoding="utf-8")
    settings_ = Settings(workspace=root / "ws")
    report = SalesKpiService(settings_).import_path(data, mapping=None, source=None,
                                                    dry_run=False)
    assert report.ok, report.errors
    write_example_plans(settings_)  # the bonus routes compute bonuses, not an empty list
    for name, spec in USERS.items():
        add_user(settings_, name, PASSWORD, spec["role"], rep_id=spec.get("rep_id"),
                 team=spec.get("team"))
    return settings_


@pytest.fixture(scope="module")
def app(workspace_settings: Settings) -> Any:
    return create_app(workspace_settings)


@pytest.fixture(scope="module")
def api_schema(app: Any) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def fresh_token(settings_: Settings, username: str) -> str:
    """A new token of ``username``, who exists and is enabled again if a request
    before deleted or disabled them."""
    found = {u.username: u for u in list_users(settings_)}
    if username not in found:
        spec = USERS[username]
        found[username] = add_user(settings_, username, PASSWORD, spec["role"],
                                   rep_id=spec.get("rep_id"), team=spec.get("team"))
    # Enabling needs no rights check (only disabling does): the user enables themselves.
    set_disabled(settings_, found[username], username, False)
    return new_token(settings_, found[username].user_id, "schemathesis")[1]


SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck), phases=[Phase.generate])


@dataclass
class Run:
    operations: int = 0
    requests: int = 0
    server_errors: list[str] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)


def fuzz_every_route(api_schema: Any, settings_: Settings, username: str) -> Run:
    """Valid and invalid requests to every operation of the spec, as ``username``.

    A 5xx is noted, not raised, so one run lists every route that fails.
    """
    run = Run()
    for result in api_schema.get_all_operations():
        operation = result.ok()
        run.operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @SETTINGS
            @given(case=operation.as_strategy(generation_mode=mode))
            def ask(case: Any) -> None:
                token = fresh_token(settings_, username)
                run.requests += 1
                try:
                    response = case.call(headers={"Authorization": f"Bearer {token}"})
                except Exception as exc:  # the app's error (the test client re-raises it)
                    status, text = 500, repr(exc)
                else:
                    # Bytes, not .text: a download (the payroll XLSX, a PDF) is no UTF-8.
                    status = response.status_code
                    text = response.content.decode("utf-8", "replace")
                run.statuses[status] += 1
                if status >= 500:
                    run.server_errors.append(
                        f"{case.method} {case.formatted_path} ({mode.value}) as {username}: "  # noqa: B023
                        f"{status}\n  {case.as_curl_command()}\n  {text[:300]}")

            try:
                ask()
            except Unsatisfiable:
                # Nothing to make invalid: an operation without parameters or body.
                assert mode is GenerationMode.NEGATIVE, operation.label
    return run


@pytest.mark.parametrize("username", ["admin", "rep_r1"])
def test_no_route_answers_a_server_error(api_schema: Any, workspace_settings: Settings,
                                         username: str) -> None:
    run = fuzz_every_route(api_schema, workspace_settings, username)
    print(f"schemathesis as {username}: {run.operations} operations, {run.requests} "
          f"requests, {len(run.server_errors)} server errors; statuses {dict(run.statuses)}")
    assert run.operations >= 30 and run.requests >= run.operations * EXAMPLES
    assert not run.server_errors, "\n".join(run.server_errors)


def test_the_spec_covers_every_api_route(app: Any) -> None:
    """Schemathesis sees only what the spec lists: every API route must be in it."""
    listed = {(m.upper(), p) for p, ops in app.openapi()["paths"].items() for m in ops}
    routed = {(m, r.path) for r in app.routes if getattr(r, "include_in_schema", False)
              for m in getattr(r, "methods", ()) if m != "HEAD"}
    api = {(m, p) for m, p in routed if p.startswith(("/api/", "/webhooks/", "/health"))}
    assert api and api <= listed, api - listed


# What Schemathesis found (each a 500 before): ids and offsets past 64 bits reached
# SQLite ("Python int too large to convert to SQLite INTEGER") or DuckDB (an INT128
# OFFSET). Now each is a 422 naming the parameter.
BIG = 10**30
FOUND = [
    ("DELETE", f"/api/v1/users/{BIG}", "path.user_id"),
    ("PATCH", f"/api/v1/users/{BIG}", "path.user_id"),
    ("DELETE", f"/api/v1/tokens/{-BIG}", "path.token_id"),
    ("DELETE", f"/api/v1/targets/{BIG}", "path.target_id"),
    ("DELETE", f"/api/v1/targets?id={BIG}", "query.id.0"),
    ("GET", f"/api/v1/rows?kpi=revenue&offset={BIG}", "query.offset"),
    ("GET", f"/api/v1/scorecard?kpi=revenue&offset={BIG}", "query.offset"),
    ("GET", f"/api/v1/funnel?offset={BIG}", "query.offset"),
    # numpy's ValueError for a negative seed ("expected non-negative integer").
    ("GET", f"/api/v1/forecast/deals?seed={-BIG}", "query.seed"),
    ("GET", "/api/v1/forecast/deals?seed=-1", "query.seed"),
]


@pytest.mark.parametrize(("method", "path", "where"), FOUND)
def test_ids_and_offsets_past_64_bits_are_invalid_requests(
        app: Any, workspace_settings: Settings, method: str, path: str, where: str) -> None:
    token = fresh_token(workspace_settings, "admin")
    client = TestClient(app, raise_server_exceptions=False)
    response = client.request(method, path, headers={"Authorization": f"Bearer {token}"},
                              json={"disabled": True} if method == "PATCH" else None)
    assert response.status_code == 422, response.text
    assert where in [d["where"] for d in response.json()["details"]], response.json()
    # The largest 64-bit id is still a question: it has no answer (404), not a crash.
    largest = path.replace(str(-BIG), str(2**63 - 1)).replace(str(BIG), str(2**63 - 1)
                                                              ).replace("=-1", "=0")
    assert client.request(method, largest, headers={"Authorization": f"Bearer {token}"},
                          json={"disabled": True} if method == "PATCH" else None
                          ).status_code in (200, 404)


def test_a_views_parameters_out_of_bounds_are_an_invalid_request(
        workspace_settings: Settings) -> None:
    """Where a route misses a bound its view has (the funnel's offset did), the view's
    check answers: 422 with the details, not a 500."""
    from saleskpi.views.base import Paging

    app = create_app(workspace_settings)

    @app.get("/api/v1/test-paging")
    def paging(offset: int) -> dict[str, int]:
        return {"offset": Paging(offset=offset).offset}

    client = TestClient(app, raise_server_exceptions=False)
    response = client.get(f"/api/v1/test-paging?offset={2**64}")
    assert response.status_code == 422, response.text
    assert response.json()["details"][0]["where"] == "offset"
    assert client.get("/api/v1/test-paging?offset=5").json() == {"offset": 5}
