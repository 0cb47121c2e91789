"""Schedules of reports.yaml (cron in the company's time zone), the job runner of
``saleskpi serve``, and the report job: due digests sent once, also across a restart."""

from __future__ import annotations

import datetime as dt
import threading
import time
import zoneinfo
from pathlib import Path
from typing import Any

import pytest

from saleskpi.domain.errors import InvalidQuery
from saleskpi.domain.settings import Settings
from saleskpi.service.core import SalesKpiService
from saleskpi.service.report_schedules import (
    DEFAULT_SCHEDULES,
    ReportSchedule,
    due_run,
    load_schedules,
    next_run,
)
from saleskpi.service.scheduler import JobRunner
from saleskpi.surfaces.reports.jobs import ReportJob
from tests.servers import smtp_server
from tests.test_digests import Company, company  # noqa: F401  (the digests' company)

KYIV = zoneinfo.ZoneInfo("Europe/Kyiv")


def _settings(tmp_path: Path, text: str | None = None) -> Settings:
    workspace = tmp_path / "ws"
    workspace.mkdir(exist_ok=True)
    if text is not None:
        (workspace / "reports.yaml").write_text(text, encoding="utf-8")
    return Settings(_env_file=None, workspace=workspace)


def test_without_a_file_the_defaults_apply(tmp_path: Path) -> None:
    assert load_schedules(_settings(tmp_path)) == list(DEFAULT_SCHEDULES)
    assert load_schedules(_settings(tmp_path, "schedules: []\n")) == []


def test_a_file_of_schedules(tmp_path: Path) -> None:
    text = ("schedules:\n"
            "  - {name: morning, digest: daily, cron: '30 7 * * 1-5', to: [head, olena]}\n"
            "  - {name: monday, digest: weekly, cron: '0 9 * * 1', to: rep}\n")
    assert load_schedules(_settings(tmp_path, text)) == [
        ReportSchedule("morning", "daily", "30 7 * * 1-5", ("head", "olena")),
        ReportSchedule("monday", "weekly", "0 9 * * 1", ("rep",))]


@pytest.mark.parametrize(("text", "words"), [
    ("schedules: {}\n", "schedules: expected a list"),
    ("schedules:\n  - {name: a, cron: '0 25 * * *', to: [head]}\n", "schedule 'a': cron"),
    ("schedules:\n  - {name: a, digest: hourly, cron: '0 8 * * *', to: [head]}\n",
     "schedule 'a': digest: 'hourly'"),
    ("schedules:\n  - {name: a, cron: '0 8 * * *'}\n", "schedule 'a': to:"),
    ("schedules:\n  - {cron: '0 8 * * *', to: [head]}\n", "schedule 1: name"),
    ("schedules:\n  - {name: a, cron: '0 8 * * *', to: [head]}\n"
     "  - {name: a, cron: '0 9 * * *', to: [rep]}\n", "two schedules have this name"),
    ("schedules: [\n", "not valid YAML"),
])
def test_a_bad_file_is_refused_naming_the_file_and_the_field(tmp_path: Path, text: str,
                                                             words: str) -> None:
    settings = _settings(tmp_path, text)
    with pytest.raises(InvalidQuery) as caught:
        load_schedules(settings)
    assert str(settings.workspace / "reports.yaml") in caught.value.message
    assert words in caught.value.message
    assert caught.value.code == "bad_schedule"


def test_runs_are_in_the_company_time_across_daylight_saving() -> None:
    daily = ReportSchedule("d", "daily", "0 8 * * *", ("head",))
    # Kyiv moves to summer time on 29 March 2026: 8:00 is 06:00 UTC before, 05:00 after.
    before = dt.datetime(2026, 3, 28, 12, 0, tzinfo=dt.UTC)
    first = next_run(daily, before, "Europe/Kyiv")
    second = next_run(daily, first, "Europe/Kyiv")
    assert first.astimezone(dt.UTC) == dt.datetime(2026, 3, 29, 5, 0, tzinfo=dt.UTC)
    assert second.astimezone(dt.UTC) == dt.datetime(2026, 3, 30, 5, 0, tzinfo=dt.UTC)
    assert (first.astimezone(KYIV).hour, second.astimezone(KYIV).hour) == (8, 8)
    # Runs missed while nothing checked (two days) collapse into the last one.
    since = dt.datetime(2026, 3, 27, 0, 0, tzinfo=dt.UTC)
    until = dt.datetime(2026, 3, 29, 9, 0, tzinfo=dt.UTC)
    assert due_run(daily, since, until, "Europe/Kyiv") == first
    assert due_run(daily, first, until, "Europe/Kyiv") is None


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def test_the_report_job_sends_each_run_once_even_after_a_restart(
        company: Company) -> None:  # noqa: F811
    (company.settings.workspace / "reports.yaml").write_text(
        "schedules:\n  - {name: morning, digest: daily, cron: '0 8 * * *', "
        "to: [head, rep]}\n", encoding="utf-8")
    try:
        with smtp_server() as box:
            settings = company.settings.model_copy(update={
                "smtp_host": box.host, "smtp_port": box.port, "smtp_starttls": False,
                "smtp_from": "kpi@example.com"})
            service = SalesKpiService(settings)
            clock = Clock(dt.datetime(2026, 3, 20, 7, 59, tzinfo=KYIV))
            job = ReportJob(service, clock=clock)
            assert job.run() == []  # 7:59: the 8:00 run has not come yet
            clock.now = dt.datetime(2026, 3, 20, 8, 0, 30, tzinfo=KYIV)
            sent = job.run()
            # boss (head) and ann (a rep with a contact); quiet has no contact.
            assert sorted((s.recipient, [o.status for o in s.outcomes]) for s in sent) == [
                ("ann", ["sent"]), ("boss", ["sent"]), ("quiet", ["no_channel"])]
            clock.now = dt.datetime(2026, 3, 20, 8, 2, tzinfo=KYIV)
            assert job.run() == []
            # A server started at 8:30 catches up on 8:00, but it was sent already.
            restarted = ReportJob(service, clock=Clock(dt.datetime(2026, 3, 20, 8, 30,
                                                                   tzinfo=KYIV)))
            again = restarted.run()
            assert sorted(o.status for s in again for o in s.outcomes) == [
                "already_sent", "already_sent", "no_channel"]
        assert sorted(m["To"] for m in box.messages) == ["ann@example.com",
                                                         "boss@example.com"]
        # The digest covers the last whole day before the run, in the company's time.
        assert all("19" in m["Subject"] for m in box.messages)
    finally:
        (company.settings.workspace / "reports.yaml").unlink()


def test_a_broken_reports_file_stops_nothing_else(company: Company,  # noqa: F811
                                                  caplog: pytest.LogCaptureFixture) -> None:
    (company.settings.workspace / "reports.yaml").write_text("schedules: 7\n", encoding="utf-8")
    try:
        job = ReportJob(company.service)
        assert job.run() == [] and job.run() == []
        assert sum("scheduled reports stopped" in r.message for r in caplog.records) == 1
    finally:
        (company.settings.workspace / "reports.yaml").unlink()


def test_the_job_runner_runs_wakes_survives_failures_and_stops() -> None:
    runner = JobRunner()
    ran: list[str] = []
    woken = threading.Event()

    def failing() -> None:
        ran.append("failing")
        raise RuntimeError("boom")

    runner.add("fast", 0.05, lambda: ran.append("fast"))
    runner.add("failing", 0.05, failing)
    runner.add("slow", 3600, woken.set)
    runner.start()
    try:
        deadline = time.monotonic() + 10
        while (runner.runs("fast") < 3 or runner.runs("failing") < 3) \
                and time.monotonic() < deadline:
            time.sleep(0.02)
        assert runner.runs("fast") >= 3 and runner.runs("failing") >= 3
        assert runner.jobs["failing"].failures >= 3  # it kept running
        assert not woken.is_set()
        runner.wake("slow")  # e.g. alerts after an import: at once, not in an hour
        assert woken.wait(5)
        later = threading.Event()
        runner.add("added", 0.01, later.set)  # registered while running
        assert later.wait(5)
        with pytest.raises(ValueError):
            runner.add("fast", 1, lambda: None)
    finally:
        runner.stop()
    time.sleep(0.2)
    count = runner.runs("fast")
    time.sleep(0.3)
    assert runner.runs("fast") == count  # stopped


def test_serve_runs_the_syncs_and_the_reports(tmp_path: Path, run_cli: Any) -> None:
    from saleskpi.surfaces.server import background_jobs, create_app

    settings = _settings(tmp_path)
    app = create_app(settings)
    runner = background_jobs(app, settings, sync_minutes=15)
    assert sorted(runner.jobs) == ["alerts", "reports", "sync"]
    assert app.state.jobs is runner
    assert runner.jobs["sync"].every_seconds == 15 * 60
    none = background_jobs(create_app(settings), settings, sync_minutes=0)
    assert sorted(none.jobs) == ["alerts", "reports"]
