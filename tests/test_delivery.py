"""Notices reach people on real local servers: SMTP (aiosmtpd), Telegram's Bot API, Slack,
Teams and a signed webhook (plain HTTP servers on 127.0.0.1); each key once per channel;
a failing channel is tried again and its failure kept in the delivery log."""

from __future__ import annotations

import base64
import hashlib
import hmac
import sqlite3
import time
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest

from saleskpi.domain.notices import Attachment, Notice
from saleskpi.domain.settings import Settings
from saleskpi.service.auth import add_user
from saleskpi.service.contacts import set_contact
from saleskpi.service.delivery import deliver
from saleskpi.store.state.contacts import ContactRecord
from tests.servers import Mailbox, recorder, smtp_server

TOKEN = "123456:SECRET-bot-token"
HOOK_SECRET = "whsec-test-0123456789"
PDF = Attachment("digest.pdf", "application/pdf", b"%PDF-1.4 pretend\x00\xff")
XLSX = Attachment("digest.xlsx",
                  "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                  b"PK\x03\x04 pretend workbook")


def _settings(tmp_path: Path, **values: Any) -> Settings:
    values = {"delivery_backoff_seconds": 0, **values}
    return Settings(_env_file=None, workspace=tmp_path / "ws", **values)


def _user(settings: Settings, name: str, role: str = "rep", **contact: Any) -> int:
    extra = {"rep_id": f"r-{name}"} if role == "rep" else {}
    if role == "team_lead":
        extra = {"team": "North"}
    if role == "rep":
        extra["team"] = "North"
    user = add_user(settings, name, "password-123", role, **extra)
    set_contact(settings, ContactRecord(user.user_id, contact.get("email"),
                                        contact.get("telegram"),
                                        tuple(contact.get("channels", ()))))
    return user.user_id


def _notice(recipient: str, key: str = "alert:1", **values: Any) -> Notice:
    fields: dict[str, Any] = {"kind": "alert", "subject": "Deal stuck: Acme",
                              "body": "Acme has been in Proposal for 12 days.",
                              "link": "/reps/r1", "attachments": ()}
    fields.update(values)
    return Notice(recipient=recipient, key=key, **fields)


def _log(settings: Settings) -> list[tuple[Any, ...]]:
    with sqlite3.connect(settings.workspace / "state.sqlite") as db:
        return db.execute("SELECT notice_key, recipient, channel, status, attempts, last_error "
                          "FROM deliveries ORDER BY id").fetchall()


def _mail_settings(tmp_path: Path, box: Mailbox, **values: Any) -> Settings:
    return _settings(tmp_path, smtp_host=box.host, smtp_port=box.port, smtp_starttls=False,
                     smtp_from="kpi@example.com", public_url="https://kpi.example.com",
                     **values)


def test_an_email_arrives_with_its_attachments_and_link(tmp_path: Path) -> None:
    with smtp_server() as box:
        settings = _mail_settings(tmp_path, box)
        _user(settings, "anna", email="anna@example.com")
        outcomes = deliver(settings, [_notice("anna", attachments=(PDF, XLSX))])
    assert [(o.channel, o.status, o.attempts) for o in outcomes] == [("email", "sent", 1)]
    assert box.envelopes == [("kpi@example.com", ["anna@example.com"])]
    mail = box.messages[0]
    assert mail["Subject"] == "Deal stuck: Acme"
    assert mail["X-Saleskpi-Key"] == "alert:1"
    text = mail.get_body(preferencelist=("plain",)).get_content()
    assert "Acme has been in Proposal for 12 days." in text
    assert "https://kpi.example.com/reps/r1" in text
    files = {part.get_filename(): part.get_content() for part in mail.iter_attachments()}
    assert files == {"digest.pdf": PDF.data, "digest.xlsx": XLSX.data}
    assert _log(settings) == [("alert:1", "anna", "email", "sent", 1, None)]


def test_the_same_key_is_sent_once_per_channel(tmp_path: Path) -> None:
    with smtp_server() as box:
        settings = _mail_settings(tmp_path, box)
        _user(settings, "anna", email="anna@example.com")
        first = deliver(settings, [_notice("anna")])
        again = deliver(settings, [_notice("anna"), _notice("anna")])
        other = deliver(settings, [_notice("anna", key="alert:2")])
    assert [o.status for o in first] == ["sent"]
    assert [o.status for o in again] == ["already_sent", "already_sent"]
    assert [o.status for o in other] == ["sent"]
    assert len(box.messages) == 2
    assert [row[0] for row in _log(settings)] == ["alert:1", "alert:2"]


def _multipart(request: Any) -> dict[str, Any]:
    """Fields of a multipart/form-data body, parsed by the standard library."""
    head = f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode()
    message = message_from_bytes(head + request.body, policy=policy.HTTP)
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        fields[name] = (part.get_filename(), part.get_payload(decode=True))
    return fields


def test_telegram_gets_the_message_then_each_document(tmp_path: Path) -> None:
    with recorder() as api:
        settings = _settings(tmp_path, telegram_bot_token=TOKEN, telegram_api_url=api.url)
        _user(settings, "anna", telegram="-1001234567")
        outcomes = deliver(settings, [_notice("anna", attachments=(PDF, XLSX))])
    assert [(o.channel, o.status) for o in outcomes] == [("telegram", "sent")]
    paths = [r.path for r in api.requests]
    assert paths == [f"/bot{TOKEN}/sendMessage", f"/bot{TOKEN}/sendDocument",
                     f"/bot{TOKEN}/sendDocument"]
    text = api.requests[0].json()
    assert text["chat_id"] == "-1001234567"
    assert text["text"].startswith("Deal stuck: Acme\n\nAcme has been in Proposal")
    assert text["text"].endswith("/reps/r1")
    documents = [_multipart(r) for r in api.requests[1:]]
    assert [d["chat_id"][1] for d in documents] == [b"-1001234567", b"-1001234567"]
    assert [d["document"] for d in documents] == [("digest.pdf", PDF.data),
                                                  ("digest.xlsx", XLSX.data)]


def test_slack_and_teams_webhooks_by_person_team_or_company(tmp_path: Path) -> None:
    with recorder() as hooks:
        settings = _settings(
            tmp_path, public_url="https://kpi.example.com",
            slack_webhooks={"North": f"{hooks.url}/slack/north", "*": f"{hooks.url}/slack/all",
                            "@boss": f"{hooks.url}/slack/boss"},
            teams_webhooks={"*": f"{hooks.url}/teams"})
        _user(settings, "anna", channels=["slack", "teams"])  # a rep of North
        _user(settings, "boss", role="head", channels=["slack"])
        _user(settings, "hanna", role="head", channels=["slack"])
        deliver(settings, [_notice(n, subject=f"For {n} <b>&</b>") for n in
                           ("anna", "boss", "hanna")])
    by_path = {r.path: r.json() for r in hooks.requests}
    assert sorted(by_path) == ["/slack/all", "/slack/boss", "/slack/north", "/teams"]
    north = by_path["/slack/north"]
    assert north["text"] == "For anna &lt;b&gt;&amp;&lt;/b&gt;"  # Slack's escaping
    block = north["blocks"][0]["text"]
    assert block["type"] == "mrkdwn"
    assert "Acme has been in Proposal" in block["text"]
    assert "<https://kpi.example.com/reps/r1|" in block["text"]
    assert "For hanna" in by_path["/slack/all"]["text"]
    card = by_path["/teams"]["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["content"]["type"] == "AdaptiveCard"
    assert card["content"]["body"][0]["text"] == "For anna <b>&</b>"
    assert card["content"]["actions"][0]["url"] == "https://kpi.example.com/reps/r1"


def test_the_webhook_is_signed_and_the_signature_verifies(tmp_path: Path) -> None:
    with recorder() as receiver:
        settings = _settings(tmp_path, webhook_url=f"{receiver.url}/hook",
                             webhook_secret=HOOK_SECRET)
        _user(settings, "anna", channels=["webhook"])
        before = int(time.time())
        outcomes = deliver(settings, [_notice("anna", attachments=(PDF,))])
    assert [o.status for o in outcomes] == ["sent"]
    (request,) = receiver.requests
    stamp = request.headers["X-Saleskpi-Timestamp"]
    assert before <= int(stamp) <= int(time.time())
    # What a receiver does: HMAC-SHA256 of "timestamp.body" with the shared secret.
    expected = "sha256=" + hmac.new(HOOK_SECRET.encode(), stamp.encode() + b"." + request.body,
                                    hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers["X-Saleskpi-Signature"], expected)
    assert request.headers["X-Saleskpi-Key"] == "alert:1"
    data = request.json()
    assert (data["key"], data["recipient"], data["subject"]) == ("alert:1", "anna",
                                                                 "Deal stuck: Acme")
    assert base64.b64decode(data["attachments"][0]["data"]) == PDF.data
    # A body changed on the way no longer matches.
    forged = hmac.new(HOOK_SECRET.encode(), stamp.encode() + b"." + request.body + b" ",
                      hashlib.sha256).hexdigest()
    assert request.headers["X-Saleskpi-Signature"] != "sha256=" + forged


def test_a_failing_channel_is_tried_again_and_the_failure_is_kept(tmp_path: Path) -> None:
    pauses: list[float] = []
    with recorder(answers=[500, 200]) as flaky, recorder(answers=[503] * 10) as down:
        settings = _settings(tmp_path, slack_webhooks={"*": f"{flaky.url}/s"},
                             teams_webhooks={"*": f"{down.url}/t"}, delivery_retries=3,
                             delivery_backoff_seconds=0.01)
        _user(settings, "anna", channels=["slack", "teams"])
        outcomes = deliver(settings, [_notice("anna")], sleep=pauses.append)
        assert len(flaky.requests) == 2  # 500, then 200
        assert len(down.requests) == 4  # the first try and three more
    assert [(o.channel, o.status, o.attempts) for o in outcomes] == [
        ("slack", "sent", 2), ("teams", "failed", 4)]
    assert outcomes[1].error is not None and outcomes[1].error.startswith("HTTP 503")
    assert len(pauses) == 1 + 3 and all(p > 0 for p in pauses)
    log = _log(settings)
    assert log[0][2:5] == ("slack", "sent", 2) and log[0][5].startswith("HTTP 500")
    assert log[1][2:5] == ("teams", "failed", 4) and log[1][5].startswith("HTTP 503")
    # Delivered again later (the server is back): the failed channel only.
    with recorder() as back:
        settings = _settings(tmp_path, slack_webhooks={"*": f"{back.url}/s"},
                             teams_webhooks={"*": f"{back.url}/t"})
        again = deliver(settings, [_notice("anna")])
        assert len(back.requests) == 1
    assert [(o.channel, o.status) for o in again] == [("slack", "already_sent"),
                                                     ("teams", "sent")]
    assert _log(settings)[1][2:5] == ("teams", "sent", 5)


def test_telegram_429_waits_as_long_as_telegram_asks(tmp_path: Path) -> None:
    pauses: list[float] = []
    busy = (429, '{"ok": false, "error_code": 429, "parameters": {"retry_after": 7}}')
    with recorder(answers=[busy]) as api:
        settings = _settings(tmp_path, telegram_bot_token=TOKEN, telegram_api_url=api.url)
        _user(settings, "anna", telegram="42")
        outcomes = deliver(settings, [_notice("anna")], sleep=pauses.append)
    assert [o.status for o in outcomes] == ["sent"]
    assert pauses and pauses[0] >= 7


def test_errors_never_carry_secrets(tmp_path: Path) -> None:
    # A server that echoes the address asked (which holds the bot's token).
    with recorder(answers=[(400, f'{{"ok": false, "description": "bad /bot{TOKEN}/x"}}')]) \
            as api:
        settings = _settings(tmp_path, telegram_bot_token=TOKEN, telegram_api_url=api.url)
        _user(settings, "anna", telegram="42")
        (outcome,) = deliver(settings, [_notice("anna")])
    assert outcome.status == "failed" and outcome.attempts == 1  # a 400 is not retried
    assert outcome.error is not None and "***" in outcome.error
    assert TOKEN not in str(_log(settings))


def test_what_cannot_be_sent_says_why(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    _user(settings, "anna", channels=["email", "webhook", "slack"])
    _user(settings, "bob")  # no contact at all
    outcomes = deliver(settings, [_notice("anna"), _notice("bob"), _notice("ghost")])
    assert [(o.recipient, o.channel, o.status) for o in outcomes] == [
        ("anna", "email", "failed"), ("anna", "webhook", "failed"),
        ("anna", "slack", "failed"), ("bob", None, "no_channel"),
        ("ghost", None, "unknown_recipient")]
    errors = [o.error or "" for o in outcomes[:3]]
    assert "saleskpi contacts set anna --email" in errors[0]
    assert "webhook_url" in errors[1]
    assert "slack_webhooks" in errors[2]
    assert [row[3:5] for row in _log(settings)] == [("failed", 0)] * 3


def test_unreachable_smtp_is_tried_again_then_failed(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = _settings(tmp_path, smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False,
                         smtp_from="kpi@example.com", delivery_retries=2)
    _user(settings, "anna", email="anna@example.com")
    (outcome,) = deliver(settings, [_notice("anna")], sleep=lambda _s: None)
    assert (outcome.status, outcome.attempts) == ("failed", 3)
    assert outcome.error is not None and "SMTP" in outcome.error


@pytest.mark.parametrize(("email", "chat", "channels", "field"), [
    ("not-an-address", None, [], "e-mail"),
    (None, "12ab", [], "Telegram chat"),
    (None, None, ["pigeon"], "unknown channel"),
])
def test_bad_contacts_are_refused_naming_the_field(tmp_path: Path, email: str | None,
                                                   chat: str | None, channels: list[str],
                                                   field: str) -> None:
    from saleskpi.domain.errors import InvalidQuery

    settings = _settings(tmp_path)
    with pytest.raises(InvalidQuery, match=field):
        set_contact(settings, ContactRecord(1, email, chat, tuple(channels)))
