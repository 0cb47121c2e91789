"""The web and REST side of notices and reports: my notifications, the delivery log with
its failures, a test message, PDFs of pages (?format=pdf) and the /api/v1/reports routes.
Real SMTP and HTTP servers on 127.0.0.1; figures against hand-written SQL."""

from __future__ import annotations

import datetime as dt
import io
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from pypdf import PdfReader

from saleskpi.service.auth import issue_token, list_users
from saleskpi.service.delivery import deliver
from saleskpi.service.report_schedules import DEFAULT_SCHEDULES
from saleskpi.surfaces.server import create_app
from tests.servers import recorder, smtp_server
from tests.test_delivery import _notice
from tests.test_digests import AT, REPS, Company, company, hand_revenue  # noqa: F401

PASSWORD = "password-123"


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field"
    return match.group(1)


def _sign_in(app: Any, username: str) -> TestClient:
    client = TestClient(app)
    token = _csrf(client.get("/login").text)
    done = client.post("/login", data={"username": username, "password": PASSWORD,
                                       "csrf": token}, follow_redirects=False)
    assert done.status_code == 303, done.text
    return client


def _pdf_text(data: bytes) -> str:
    return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)


def _token(company: Company, username: str) -> dict[str, str]:  # noqa: F811
    user = next(u for u in list_users(company.settings) if u.username == username)
    return {"Authorization": f"Bearer {issue_token(company.settings, user.user_id, 'test')}"}


@pytest.fixture(scope="module")
def app(company: Company) -> Any:  # noqa: F811
    return create_app(company.settings)


def test_i_set_where_i_receive_notices(app: Any) -> None:
    client = _sign_in(app, "lead")
    page = client.get("/notifications")
    assert page.status_code == 200 and 'name="email"' in page.text
    bad = client.post("/notifications", data={"csrf": _csrf(page.text), "email": "nope"})
    assert bad.status_code == 400 and "is not an address like" in bad.text
    forged = client.post("/notifications", data={"csrf": "forged", "email": "x@y.z"})
    assert forged.status_code == 403
    saved = client.post("/notifications", data={
        "csrf": _csrf(page.text), "email": "olena@example.com", "telegram": "42",
        "channel": ["email", "slack"]}, follow_redirects=False)
    assert saved.status_code == 303
    shown = client.get("/notifications").text
    assert 'value="olena@example.com"' in shown and 'value="42"' in shown
    assert 'value="slack" checked' in shown and 'value="telegram" checked' not in shown
    # Slack has no URL for the team or the company: the page says so.
    assert 'data-channel-state="problem"' in shown and "slack_webhooks" in shown
    api = client.get("/api/v1/contacts/me").json()
    assert (api["email"], api["channels"], api["receives_by"]) == (
        "olena@example.com", ["email", "slack"], ["email", "slack"])
    # Somebody else's contacts are a manager's business.
    assert client.get("/api/v1/contacts/boss").status_code == 403


def test_a_test_message_arrives_and_the_page_says_by_what(company: Company) -> None:  # noqa: F811
    with smtp_server() as box:
        settings = company.settings.model_copy(update={
            "smtp_host": box.host, "smtp_port": box.port, "smtp_starttls": False,
            "smtp_from": "kpi@example.com"})
        client = _sign_in(create_app(settings), "boss")
        page = client.get("/notifications").text
        sent = client.post("/notifications/test", data={"csrf": _csrf(page)})
    assert sent.status_code == 200  # followed back to the page
    assert "Test message sent by: E-mail." in sent.text
    (mail,) = box.messages
    assert (mail["To"], mail["Subject"]) == ("boss@example.com", "saleskpi: a test message")


def test_the_delivery_log_shows_failures_with_their_error(app: Any,
                                                          company: Company) -> None:  # noqa: F811
    with recorder(answers=[500] * 5) as down:
        settings = company.settings.model_copy(update={
            "teams_webhooks": {"*": SecretStr(f"{down.url}/t")}, "delivery_retries": 1,
            "delivery_backoff_seconds": 0})
        from saleskpi.service.contacts import set_contact
        from saleskpi.store.state.contacts import ContactRecord

        quiet = next(u for u in list_users(settings) if u.username == "quiet")
        set_contact(settings, ContactRecord(quiet.user_id, channels=("teams",)))
        try:
            (outcome,) = deliver(settings, [_notice("quiet", key="web:failing")])
        finally:
            set_contact(settings, ContactRecord(quiet.user_id))
    assert (outcome.status, outcome.attempts) == ("failed", 2)
    boss = _sign_in(app, "boss")
    page = boss.get("/deliveries?status=failed")
    assert page.status_code == 200
    row = re.search(r'<tr class="row-failed".*?</tr>', page.text, re.S)
    assert row is not None
    assert "quiet" in row.group(0) and "Microsoft Teams" in row.group(0)
    assert "HTTP 500" in row.group(0)
    assert 'data-failed="' in page.text
    api = boss.get("/api/v1/reports/deliveries", params={"status": "failed"}).json()
    entry = next(d for d in api["deliveries"] if d["key"] == "web:failing")
    assert (entry["status"], entry["attempts"], entry["channel"]) == ("failed", 2, "teams")
    assert entry["last_error"].startswith("HTTP 500")
    assert _sign_in(app, "ann").get("/deliveries").status_code == 403
    assert _sign_in(app, "ann").get("/api/v1/reports/deliveries").status_code == 403


def test_any_page_as_pdf_holds_the_callers_figures_only(app: Any,
                                                        company: Company) -> None:  # noqa: F811
    days = {"from": AT.replace(day=1).isoformat(), "to": AT.isoformat()}
    boss = _sign_in(app, "boss").get("/leaderboard", params={**days, "kpi": "revenue",
                                                             "format": "pdf"})
    assert boss.headers["content-type"] == "application/pdf"
    text = _pdf_text(boss.content)
    assert all(name in text for name, _team in REPS.values())
    assert "7 770" in text or "7,770" in text  # Bob's month, as the page writes money
    ann = _sign_in(app, "ann")
    mine = _pdf_text(ann.get("/", params={**days, "format": "pdf"}).content)
    assert "Bob Sydorenko" not in mine and "Cid Moroz" not in mine
    one = ann.get("/", params={**days, "export": "headline", "format": "pdf"})
    assert one.headers["content-type"] == "application/pdf"
    assert ann.get("/", params={"export": "nothing", "format": "pdf"}).status_code == 404


def test_the_reports_api(app: Any, company: Company) -> None:  # noqa: F811
    ann = TestClient(app, headers=_token(company, "ann"))
    digest = ann.get("/api/v1/reports/digest", params={"at": AT.isoformat()}).json()
    revenue = next(t for t in digest["totals"] if t["kpi"] == "revenue")
    assert revenue["month"]["value"] == hand_revenue(company.settings, AT.replace(day=1), AT,
                                                     ("r1",))
    assert digest["scope"]["level"] == "rep" and digest["reps"] == []
    assert ann.post("/api/v1/reports/send", json={"to": ["ann"]}).status_code == 403
    assert ann.get("/api/v1/reports/schedules").status_code == 403
    pdf = ann.get("/api/v1/reports/pdf/overview",
                  params={"from": AT.replace(day=1).isoformat(), "to": AT.isoformat()})
    assert pdf.headers["content-type"] == "application/pdf"
    assert "Cid Moroz" not in _pdf_text(pdf.content)
    boss = TestClient(app, headers=_token(company, "boss"))
    schedules = boss.get("/api/v1/reports/schedules").json()
    assert [s["name"] for s in schedules["schedules"]] == [s.name for s in DEFAULT_SCHEDULES]
    assert schedules["schedules"][0]["recipients"] == ["boss", "lead"]
    assert dt.datetime.fromisoformat(schedules["schedules"][0]["next_run"]).hour == 8
    unknown = boss.post("/api/v1/reports/send", json={"to": ["nobody"]})
    assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_recipient"
    sent = boss.post("/api/v1/reports/send", json={"to": ["quiet"], "at": AT.isoformat()})
    assert sent.json() == {"sent": [{"recipient": "quiet", "error": None, "deliveries": [
        {"channel": None, "status": "no_channel", "attempts": 0, "error": None}]}]}
    assert boss.get("/api/v1/reports/pdf/nowhere").status_code == 422
