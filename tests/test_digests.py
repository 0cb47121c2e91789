"""Scheduled digests (issue 14, item 7): each person's own figures, by e-mail to a real SMTP
server on 127.0.0.1, with the PDF and the XLSX attached; every figure is checked against
SQL written by hand over the analytics file, and a rep's digest against leaks."""

from __future__ import annotations

import datetime as dt
import io
import zoneinfo
from dataclasses import dataclass
from typing import Any

import duckdb
import pytest
from openpyxl import load_workbook
from pypdf import PdfReader

from saleskpi.domain.settings import Settings
from saleskpi.service.auth import add_user
from saleskpi.service.contacts import set_contact
from saleskpi.service.core import SalesKpiService
from saleskpi.store.state.contacts import ContactRecord
from saleskpi.surfaces.reports.send import recipients, send_digests
from saleskpi.views.digests import DigestParams
from tests.servers import Mailbox, smtp_server

ZONE = "Europe/Kyiv"
AT = dt.date(2026, 3, 19)  # the digest's last day (a Thursday)
# Won deals: (id, rep, amount, closed at, UTC). d5 closes on 19 March in UTC but on the
# 20th in Kyiv: outside the digest. d6 is February's. d7 was lost.
DEALS = [
    ("d1", "r1", 1100, "2026-03-02T09:00:00Z"), ("d2", "r1", 2300, "2026-03-19T08:00:00Z"),
    ("d3", "r2", 7770, "2026-03-10T12:00:00Z"), ("d4", "r3", 5550, "2026-03-18T20:00:00Z"),
    ("d5", "r2", 999, "2026-03-19T22:30:00Z"), ("d6", "r3", 4040, "2026-02-27T10:00:00Z"),
]
LOST = [("d7", "r1", 600, "2026-03-05T10:00:00Z")]
REPS = {"r1": ("Ann Petrenko", "North"), "r2": ("Bob Sydorenko", "North"),
        "r3": ("Cid Moroz", "South")}


@dataclass
class Company:
    settings: Settings
    service: SalesKpiService


def utc_midnight(day: dt.date) -> dt.datetime:
    local = dt.datetime.combine(day, dt.time(), tzinfo=zoneinfo.ZoneInfo(ZONE))
    return local.astimezone(dt.UTC).replace(tzinfo=None)


def hand_revenue(settings: Settings, first: dt.date, last: dt.date,
                 reps: tuple[str, ...]) -> float:
    """Revenue by hand: won deals' amounts closed in [first, last] (company days)."""
    with duckdb.connect(str(settings.analytics_path), read_only=True) as con:
        (total,) = con.execute(
            "SELECT coalesce(sum(amount), 0) FROM deals WHERE status = 'won' "
            "AND rep_id IN (SELECT unnest($reps)) AND closed_at >= $start AND closed_at < $end",
            {"reps": list(reps), "start": utc_midnight(first),
             "end": utc_midnight(last + dt.timedelta(days=1))}).fetchone()
    return float(total)


def hand_won(settings: Settings, first: dt.date, last: dt.date, reps: tuple[str, ...]) -> int:
    with duckdb.connect(str(settings.analytics_path), read_only=True) as con:
        (count,) = con.execute(
            "SELECT count(*) FROM deals WHERE status = 'won' AND rep_id IN (SELECT unnest($r)) "
            "AND closed_at >= $s AND closed_at < $e",
            {"r": list(reps), "s": utc_midnight(first),
             "e": utc_midnight(last + dt.timedelta(days=1))}).fetchone()
    return int(count)


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory, run_cli: Any) -> Company:
    root = tmp_path_factory.mktemp("digests")
    workspace, data = root / "ws", root / "data"
    workspace.mkdir()
    data.mkdir()
    (workspace / "settings.yaml").write_text(f"timezone: {ZONE}\ncurrency: UAH\n",
                                             encoding="utf-8")
    (data / "reps.csv").write_text("id,name,team\n" + "".join(
        f"{rep},{name},{team}\n" for rep, (name, team) in REPS.items()), encoding="utf-8")
    lines = ["id,rep_id,status,amount,created_at,closed_at"]
    lines += [f"{i},{rep},won,{amount},2026-02-01T00:00:00,{at}" for i, rep, amount, at in DEALS]
    lines += [f"{i},{rep},lost,{amount},2026-02-01T00:00:00,{at}" for i, rep, amount, at in LOST]
    (data / "deals.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert run_cli(workspace, "import", data).returncode == 0
    for args in (("revenue", "10000", "--rep", "r1"), ("revenue", "20000", "--rep", "r2"),
                 ("revenue", "9000", "--rep", "r3")):
        done = run_cli(workspace, "target", "set", *args, "--start", "2026-03-01")
        assert done.returncode == 0, done.stderr
    settings = Settings(_env_file=None, workspace=workspace)
    people = [("boss", "head", {}, "en"), ("lead", "team_lead", {"team": "North"}, "en"),
              ("ann", "rep", {"rep_id": "r1", "team": "North"}, "uk"),
              ("quiet", "rep", {"rep_id": "r2", "team": "North"}, "en")]
    for name, role, extra, lang in people:
        user = add_user(settings, name, "password-123", role, lang=lang, **extra)
        if name != "quiet":  # quiet has no contact: gets nothing
            set_contact(settings, ContactRecord(user.user_id, f"{name}@example.com"))
    return Company(settings, SalesKpiService(settings))


def _mailing(company: Company, box: Mailbox) -> SalesKpiService:
    settings = company.settings.model_copy(update={
        "smtp_host": box.host, "smtp_port": box.port, "smtp_starttls": False,
        "smtp_from": "kpi@example.com", "public_url": "https://kpi.example.com"})
    return SalesKpiService(settings)


def _send(company: Company, who: str, key: str, digest: str = "daily") -> Any:
    with smtp_server() as box:
        service = _mailing(company, box)
        sent = send_digests(service, recipients(service, [who]),
                            DigestParams(digest=digest, at=AT), key)
    return box, sent


def _attachments(mail: Any) -> dict[str, bytes]:
    return {part.get_filename(): part.get_content() for part in mail.iter_attachments()}


def _sheets(data: bytes) -> dict[str, list[tuple[Any, ...]]]:
    book = load_workbook(io.BytesIO(data))
    return {sheet.title: list(sheet.iter_rows(values_only=True)) for sheet in book.worksheets}


def _pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_the_head_gets_the_company_and_every_rep_with_pdf_and_xlsx(company: Company) -> None:
    box, sent = _send(company, "boss", "test:head")
    assert [(o.channel, o.status) for s in sent for o in s.outcomes] == [("email", "sent")]
    (mail,) = box.messages
    assert mail["To"] == "boss@example.com"
    assert mail["Subject"] == "Daily digest for the company, Mar 19, 2026"
    files = _attachments(mail)
    assert sorted(files) == ["saleskpi-daily-2026-03-19.pdf", "saleskpi-daily-2026-03-19.xlsx"]
    everyone = tuple(REPS)
    month = hand_revenue(company.settings, AT.replace(day=1), AT, everyone)
    yesterday = hand_revenue(company.settings, AT, AT, everyone)
    assert (month, yesterday) == (1100 + 2300 + 7770 + 5550, 2300)  # the SQL agrees by eye
    sheets = _sheets(files["saleskpi-daily-2026-03-19.xlsx"])
    totals = {row[0]: row[1:] for row in sheets["Totals"][1:]}
    assert totals["Revenue"] == (month, yesterday)
    assert totals["Deals won"] == (hand_won(company.settings, AT.replace(day=1), AT, everyone),
                                   hand_won(company.settings, AT, AT, everyone))
    reps = sheets["Reps"]
    column = reps[0].index("Revenue")
    by_rep = {row[0]: row[column] for row in reps[1:]}
    assert by_rep == {name: hand_revenue(company.settings, AT.replace(day=1), AT, (rep,))
                      for rep, (name, _team) in REPS.items()}
    plan = sheets["Plan"]
    header = plan[0]
    actual = {row[1]: row[header.index("Actual")] for row in plan[1:] if row[0] == "Revenue"}
    assert actual["Ann Petrenko"] == hand_revenue(company.settings, AT.replace(day=1), AT,
                                                  ("r1",))
    text = _pdf_text(files["saleskpi-daily-2026-03-19.pdf"])
    for name, _team in REPS.values():
        assert name in text
    assert "16 720" in text  # the company's month to date, as the PDF writes it
    body = mail.get_body(preferencelist=("plain",)).get_content()
    assert "Revenue: 16 720 UAH (yesterday: 2 300 UAH)" in body
    assert "https://kpi.example.com/" in body


def test_a_reps_digest_holds_nothing_outside_the_rep(company: Company) -> None:
    box, _sent = _send(company, "ann", "test:rep")
    (mail,) = box.messages
    files = _attachments(mail)
    pdf = _pdf_text(files["saleskpi-daily-2026-03-19.pdf"])
    sheets = _sheets(files["saleskpi-daily-2026-03-19.xlsx"])
    cells = [str(v) for rows in sheets.values() for row in rows for v in row if v is not None]
    body = mail.get_body(preferencelist=("plain",)).get_content()
    own = hand_revenue(company.settings, AT.replace(day=1), AT, ("r1",))
    assert own == 3400
    everything = "\n".join([mail["Subject"], body, pdf, *cells])
    # Ann's own figures are there; nobody else's name, and no figure of theirs or of a sum
    # that includes them (the team's, the company's), in any form.
    assert "Ann Petrenko" in everything and "3 400" in body and "3400" in cells
    others = {
        "names": ["Bob Sydorenko", "Cid Moroz", "South"],
        "figures": ["7770", "7 770", "5550", "5 550", "11170", "11 170", "16720", "16 720",
                    "20000", "20 000", "9000", "9 000"],
    }
    for word in others["names"] + others["figures"]:
        assert word not in everything, word
    assert list(sheets) == ["saleskpi", "Підсумки", "План"]  # no sheet of reps
    # Ann reads Ukrainian: her digest is in it, the PDF's Cyrillic included.
    assert mail["Subject"].startswith("Щоденний звіт")
    assert "Виручка" in pdf


def test_a_team_lead_gets_the_team_and_its_reps_only(company: Company) -> None:
    box, _sent = _send(company, "lead", "test:lead", digest="weekly")
    (mail,) = box.messages
    files = _attachments(mail)
    sheets = _sheets(files["saleskpi-weekly-2026-03-19.xlsx"])
    week = (AT - dt.timedelta(days=6), AT)
    totals = {row[0]: row[1:] for row in sheets["Totals"][1:]}
    north = ("r1", "r2")
    assert totals["Revenue"] == (hand_revenue(company.settings, AT.replace(day=1), AT, north),
                                 hand_revenue(company.settings, *week, north))
    reps = [row[0] for row in sheets["Reps"][1:]]
    assert reps == ["Ann Petrenko", "Bob Sydorenko"]
    assert "Cid Moroz" not in _pdf_text(files["saleskpi-weekly-2026-03-19.pdf"])
    assert mail["Subject"] == "Weekly digest for team North, Mar 13, 2026 – Mar 19, 2026"


def test_the_same_key_is_mailed_once_and_nobody_without_a_contact(company: Company) -> None:
    with smtp_server() as box:
        service = _mailing(company, box)
        people = recipients(service, ["rep"])  # ann and quiet
        first = send_digests(service, people, DigestParams(at=AT), "test:once")
        again = send_digests(service, people, DigestParams(at=AT), "test:once")
    assert [(s.recipient, [o.status for o in s.outcomes]) for s in first] == [
        ("ann", ["sent"]), ("quiet", ["no_channel"])]
    assert [o.status for s in again for o in s.outcomes] == ["already_sent", "no_channel"]
    assert len(box.messages) == 1
