"""Alerts reach people: with a channel set up, an evaluation that fires sends through
the delivery service (a real SMTP server on 127.0.0.1) once per event, as the scheduler
of ``saleskpi serve`` and the after-import hook send (``notice_sender``); without a
channel the notices wait, unmarked, for the first evaluation that can send them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from saleskpi.domain.settings import Settings, save_workspace_settings
from saleskpi.service.alerting import evaluate_alerts, notice_sender
from saleskpi.service.auth import list_users
from saleskpi.service.contacts import set_contact
from saleskpi.store.state.contacts import ContactRecord
from tests.alerts_world import SLA, build_company, copy_company, kyiv, write_rules
from tests.servers import smtp_server


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_company(tmp_path_factory.mktemp("alert-mail") / "ws")


def _mail_to(settings: Settings, **emails: str) -> None:
    ids = {u.username: u.user_id for u in list_users(settings)}
    for username, email in emails.items():
        set_contact(settings, ContactRecord(ids[username], email))


def _told(settings: Settings) -> list[tuple[str, str | None]]:
    with sqlite3.connect(settings.workspace / "state.sqlite") as con:
        return list(con.execute("SELECT subject, notified_at FROM alert_states"))


def test_a_firing_alert_is_mailed_once_in_the_readers_language(company: Path,
                                                               tmp_path: Path) -> None:
    with smtp_server() as box:
        copy_company(company, tmp_path / "ws")
        save_workspace_settings(Settings(workspace=tmp_path / "ws", _env_file=None),
                                smtp_host=box.host, smtp_port=box.port,
                                smtp_starttls=False, smtp_from="kpi@example.com",
                                delivery_backoff_seconds=0)
        settings = Settings(workspace=tmp_path / "ws", _env_file=None)
        # The head (English) and North's lead (Ukrainian) hear of North's lead L3; South's
        # lead has an address too but L3 is not hers.
        _mail_to(settings, head="head@example.com", lead_n="north@example.com",
                 lead_s="south@example.com")
        write_rules(settings, SLA)
        report = evaluate_alerts(settings, kyiv("2026-10-06 09:06"),
                                 notice_sender(settings))
        assert report.errors == [] and [c.subject for c in report.changes] == ["lead:crm:L3"]
        by_address = {m["To"]: m for m in box.messages}
        assert set(by_address) == {"head@example.com", "north@example.com"}
        assert "L3" in by_address["head@example.com"].get_body(
            preferencelist=("plain",)).get_content()
        north = by_address["north@example.com"]
        assert any(ch in north["Subject"] + north.get_body(
            preferencelist=("plain",)).get_content() for ch in "іїєґ")  # Ukrainian text
        # The same event at the next evaluation: nothing more is sent.
        evaluate_alerts(settings, kyiv("2026-10-06 09:07"), notice_sender(settings))
        assert len(box.messages) == 2


def test_without_a_channel_notices_wait_until_one_is_set_up(company: Path,
                                                            tmp_path: Path) -> None:
    settings = copy_company(company, tmp_path / "ws")
    write_rules(settings, SLA)
    assert notice_sender(settings) is None  # no channel set up
    evaluate_alerts(settings, kyiv("2026-10-06 09:06"), notice_sender(settings))
    assert _told(settings) == [("lead:crm:L3", None)]  # firing, told nobody yet
    with smtp_server() as box:
        save_workspace_settings(settings, smtp_host=box.host, smtp_port=box.port,
                                smtp_starttls=False, smtp_from="kpi@example.com",
                                delivery_backoff_seconds=0)
        settings = Settings(workspace=tmp_path / "ws", _env_file=None)
        _mail_to(settings, head="head@example.com")
        evaluate_alerts(settings, kyiv("2026-10-06 09:10"), notice_sender(settings))
        assert [m["To"] for m in box.messages] == ["head@example.com"]
    [(subject, told)] = _told(settings)
    assert subject == "lead:crm:L3" and told is not None
