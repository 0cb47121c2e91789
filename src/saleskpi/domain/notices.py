"""What the product tells a person without being asked: one notice per recipient.

Alerts, contests and scheduled reports produce notices; the delivery service
(`saleskpi.service.delivery`) sends them through the recipient's channels. The
text is already in the recipient's language: a notice is never translated later.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Attachment:
    filename: str  # e.g. "saleskpi-2026-12-02.xlsx"
    content_type: str  # e.g. "application/pdf"
    data: bytes


@dataclass(frozen=True)
class Notice:
    recipient: str  # a username of the workspace
    kind: str  # "alert", "report", "contest"
    key: str  # the same key is the same event: a channel sends it once
    subject: str
    body: str  # plain text, several lines
    link: str | None = None  # a path of the web product, e.g. "/reps/r1"
    attachments: tuple[Attachment, ...] = field(default=())
