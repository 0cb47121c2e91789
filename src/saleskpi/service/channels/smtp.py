"""E-mail over SMTP (the standard library's ``smtplib`` and ``email``), attachments included.

STARTTLS (port 587) by default, or TLS from the start (``smtp_ssl``, port 465); a
login only when ``smtp_user`` is set. A 4xx answer, a refused or dropped connection
are tried again; a 5xx (a wrong password, a refused address) is final.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from saleskpi.domain.i18n import _
from saleskpi.service.channels.base import MAX_DETAIL, ChannelError, Message, Outbox
from saleskpi.sources.connectors.pacing import TryAgain


def compose(outbox: Outbox, message: Message, to: str) -> EmailMessage:
    settings = outbox.settings
    notice = message.notice
    mail = EmailMessage()
    mail["From"] = settings.smtp_from or settings.smtp_user
    mail["To"] = to
    mail["Subject"] = notice.subject
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = make_msgid(domain="saleskpi")
    # The key lets a mail filter (or a person) see two mails are the same event.
    mail["X-Saleskpi-Key"] = notice.key
    text = notice.body.rstrip() + "\n"
    if message.link:
        text += f"\n{message.link}\n"
    mail.set_content(text)
    for attachment in notice.attachments:
        main, _slash, sub = attachment.content_type.partition("/")
        mail.add_attachment(attachment.data, maintype=main, subtype=sub or "octet-stream",
                            filename=attachment.filename)
    return mail


def _deliver(outbox: Outbox, mail: EmailMessage) -> None:
    settings = outbox.settings
    timeout = settings.delivery_timeout_seconds
    try:
        client: smtplib.SMTP = (
            smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port, timeout=timeout,
                             context=ssl.create_default_context())
            if settings.smtp_ssl else smtplib.SMTP(settings.smtp_host, settings.smtp_port,
                                                   timeout=timeout))
        with client:
            if settings.smtp_starttls and not settings.smtp_ssl:
                client.starttls(context=ssl.create_default_context())
            if settings.smtp_user:
                password = settings.smtp_password
                client.login(settings.smtp_user,
                             password.get_secret_value() if password else "")
            client.send_message(mail)
    except smtplib.SMTPResponseException as exc:
        reason = _smtp_reason(outbox, exc.smtp_code, exc.smtp_error)
        if 400 <= exc.smtp_code < 500:
            raise TryAgain(reason) from None
        raise ChannelError(reason) from None
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _text in exc.recipients.values()]
        reasons = "; ".join(_smtp_reason(outbox, code, text)
                            for code, text in exc.recipients.values())
        if codes and all(400 <= c < 500 for c in codes):
            raise TryAgain(reasons) from None
        raise ChannelError(reasons) from None
    except smtplib.SMTPNotSupportedError as exc:
        raise ChannelError(outbox.safe(f"SMTP: {exc}")[:MAX_DETAIL]) from None
    except (smtplib.SMTPException, OSError) as exc:  # refused, dropped, timed out
        raise TryAgain(outbox.safe(f"SMTP: {type(exc).__name__}: {exc}")[:MAX_DETAIL]) \
            from None


def _smtp_reason(outbox: Outbox, code: int, text: bytes | str) -> str:
    words = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    return outbox.safe(f"SMTP {code}: {words}")[:MAX_DETAIL]


def send(outbox: Outbox, message: Message, address: str) -> None:
    settings = outbox.settings
    if not settings.smtp_host:
        raise ChannelError(_("e-mail is not set up: set smtp_host and smtp_from (see "
                             "docs/reports.md)"))
    if not (settings.smtp_from or settings.smtp_user):
        raise ChannelError(_("e-mail has no sender: set smtp_from"))
    mail = compose(outbox, message, address)
    outbox.tried(lambda: _deliver(outbox, mail))
