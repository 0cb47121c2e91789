"""``saleskpi report`` and ``saleskpi contacts`` as a head of sales types them: a real SMTP
server on 127.0.0.1, PDFs read back, figures against hand-written SQL."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from pypdf import PdfReader

from tests.servers import smtp_server
from tests.test_digests import AT, ZONE, Company, company, hand_revenue  # noqa: F401


def _with_smtp(company: Company, host: str, port: int, more: str = "") -> None:  # noqa: F811
    (company.settings.workspace / "settings.yaml").write_text(
        f"timezone: {ZONE}\ncurrency: UAH\nsmtp_host: {host}\nsmtp_port: {port}\n"
        "smtp_starttls: false\nsmtp_from: kpi@example.com\n" + more, encoding="utf-8")


def test_contacts_are_set_listed_and_checked(run_cli: Any, company: Company) -> None:  # noqa: F811
    ws = company.settings.workspace
    done = run_cli(ws, "contacts", "set", "lead", "--telegram", "-100200300",
                   "--channels", "telegram,email")
    assert done.returncode == 0, done.stderr
    kept = run_cli(ws, "contacts", "set", "lead", "--email", "olena@example.com")
    assert kept.returncode == 0
    listed = {c["username"]: c for c in run_cli(ws, "contacts", "list", "--format",
                                                 "json").json()["contacts"]}
    assert (listed["lead"]["email"], listed["lead"]["telegram_chat_id"],
            listed["lead"]["channels"]) == ("olena@example.com", "-100200300",
                                            ["telegram", "email"])
    assert listed["quiet"]["receives_by"] == []
    bad = run_cli(ws, "contacts", "set", "lead", "--email", "olena at example")
    assert bad.returncode == 2 and "e-mail: 'olena at example' is not an address" in bad.stderr
    unknown = run_cli(ws, "contacts", "set", "lead", "--channels", "fax")
    assert unknown.returncode == 2 and "unknown channel 'fax'" in unknown.stderr
    nobody = run_cli(ws, "contacts", "set", "ghost", "--email", "g@example.com")
    assert nobody.returncode == 2 and "no user 'ghost'" in nobody.stderr


def test_send_now_mails_the_digest(run_cli: Any, company: Company) -> None:  # noqa: F811
    with smtp_server() as box:
        _with_smtp(company, box.host, box.port)
        sent = run_cli(company.settings.workspace, "report", "send", "--to", "boss",
                       "--to", "quiet", "--at", AT.isoformat(), "--format", "json")
    assert sent.returncode == 0, sent.stderr
    assert sent.json() == [
        {"recipient": "boss", "error": None, "deliveries": [
            {"channel": "email", "status": "sent", "attempts": 1, "error": None}]},
        {"recipient": "quiet", "error": None, "deliveries": [
            {"channel": None, "status": "no_channel", "attempts": 0, "error": None}]}]
    (mail,) = box.messages
    body = mail.get_body(preferencelist=("plain",)).get_content()
    month = hand_revenue(company.settings, AT.replace(day=1), AT, ("r1", "r2", "r3"))
    assert f"Revenue: {int(month):,} UAH".replace(",", " ") in body
    wrong = run_cli(company.settings.workspace, "report", "send", "--to", "nobody")
    assert wrong.returncode == 2 and "no user or role 'nobody'" in wrong.stderr


def test_preview_and_pdf_as_a_rep_see(run_cli: Any, company: Company,  # noqa: F811
                                      tmp_path: Path) -> None:
    ws = company.settings.workspace
    preview = run_cli(ws, "report", "preview", "ann", "--at", AT.isoformat(), "--format",
                      "json").json()
    revenue = next(t for t in preview["totals"] if t["kpi"] == "revenue")
    assert revenue["month"]["value"] == hand_revenue(company.settings, AT.replace(day=1), AT,
                                                     ("r1",))
    assert revenue["name"] == "Виручка"  # Ann reads Ukrainian
    text = run_cli(ws, "report", "preview", "ann", "--at", AT.isoformat(),
                   "--pdf", tmp_path / "ann.pdf")
    assert text.stdout.startswith("Щоденний звіт: Ann Petrenko")
    assert (tmp_path / "ann.pdf").read_bytes().startswith(b"%PDF")
    out = tmp_path / "board.pdf"
    days = ["--from", AT.replace(day=1).isoformat(), "--to", AT.isoformat()]
    assert run_cli(ws, "report", "pdf", "leaderboard", "-o", out, *days).returncode == 0
    board = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(out.read_bytes())).pages)
    assert "Bob Sydorenko" in board and "7 770 UAH" in board
    mine = tmp_path / "mine.pdf"
    assert run_cli(ws, "report", "pdf", "overview", "--as", "ann", "-o", mine,
                   *days).returncode == 0
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(mine.read_bytes())).pages)
    assert "Bob Sydorenko" not in text and "3 400 UAH" in text
    wrong = run_cli(ws, "report", "pdf", "dashboard", "-o", mine)
    assert wrong.returncode == 2 and "no page 'dashboard'" in wrong.stderr


def test_schedules_are_listed_and_a_bad_file_named(run_cli: Any,
                                                   company: Company) -> None:  # noqa: F811
    ws = company.settings.workspace
    (ws / "reports.yaml").write_text(
        "schedules:\n  - {name: morning, digest: daily, cron: '30 7 * * 1-5', "
        "to: [team_lead, ann]}\n", encoding="utf-8")
    try:
        view = run_cli(ws, "report", "list", "--format", "json").json()
        (entry,) = view["schedules"]
        assert (entry["name"], entry["recipients"]) == ("morning", ["ann", "lead"])
        assert entry["next_run"][11:16] == "07:30" and view["timezone"] == ZONE
        (ws / "reports.yaml").write_text("schedules:\n  - {name: x, cron: 'daily', to: [rep]}\n",
                                         encoding="utf-8")
        bad = run_cli(ws, "report", "list")
        assert bad.returncode == 2
        assert "reports.yaml, schedule 'x': cron: 'daily' is not a cron expression" in \
            " ".join(bad.stderr.split())
    finally:
        (ws / "reports.yaml").unlink()


def test_the_delivery_log_from_the_command_line(run_cli: Any,
                                                company: Company) -> None:  # noqa: F811
    ws = company.settings.workspace
    # E-mail to a port nobody listens on: tried, failed, logged.
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _with_smtp(company, "127.0.0.1", port, "delivery_retries: 1\ndelivery_backoff_seconds: 0\n")
    failed = run_cli(ws, "report", "test", "boss")
    assert failed.returncode == 0 and "failed" in failed.stdout
    log = run_cli(ws, "report", "deliveries", "--status", "failed", "--format", "json").json()
    entry = next(d for d in log["deliveries"] if d["kind"] == "test")
    assert (entry["recipient"], entry["channel"], entry["status"], entry["attempts"]) == (
        "boss", "email", "failed", 2)
    assert "SMTP" in entry["last_error"] and log["failed"] >= 1
    table = run_cli(ws, "report", "deliveries", "--status", "failed")
    assert "boss" in table.stdout and "failed in all" in table.stdout
    assert json.loads(run_cli(ws, "report", "deliveries", "--format", "json").stdout)["page"]
