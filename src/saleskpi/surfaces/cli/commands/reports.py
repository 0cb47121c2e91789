"""Scheduled reports and notices: send digests now, list schedules, page PDFs, the delivery
log, and where each user receives notices (contacts)."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from saleskpi.domain.i18n import _
from saleskpi.surfaces.cli.app import ReportFormat, app, out, service, write
from saleskpi.surfaces.cli.options import (
    DATE,
    FromOption,
    LimitOption,
    OffsetOption,
    RangeOption,
    ToOption,
    WhereOption,
    day,
)

if TYPE_CHECKING:
    from saleskpi.service.principal import Principal
    from saleskpi.surfaces.reports.send import Sent

report_app = typer.Typer(help="Scheduled reports: digests by e-mail and Telegram, PDFs, the "
                         "delivery log.", no_args_is_help=True)
contacts_app = typer.Typer(help="Where each user receives notices: e-mail, Telegram, Slack, "
                           "Teams, webhook.", no_args_is_help=True)
app.add_typer(report_app, name="report")
app.add_typer(contacts_app, name="contacts")


class Digest(StrEnum):
    daily = "daily"
    weekly = "weekly"


AtOption = Annotated[dt.datetime | None, typer.Option(
    "--at", formats=DATE, help="The last day the digest covers (default: yesterday).")]
DigestOption = Annotated[Digest, typer.Option("--digest", "-d", help="daily or weekly.")]


def _user(name: str) -> Principal:
    from saleskpi.domain.errors import NotFound
    from saleskpi.service.auth import list_users

    for user in list_users(service().settings):
        if user.username == name:
            return user
    raise NotFound(_("no user {name!r}", name=name), code="unknown_user")


def _outcomes_table(sent: list[Sent]) -> Table:
    table = Table(header_style="bold")
    for column in (_("User"), _("Channel"), _("Status"), _("Tries"), _("Error")):
        table.add_column(column)
    for person in sent:
        if person.error:
            table.add_row(person.recipient, "—", _("not computed"), "0", person.error)
        for o in person.outcomes:
            table.add_row(o.recipient, o.channel or "—", o.status, str(o.attempts),
                          o.error or "")
    return table


def _sent_json(sent: list[Sent]) -> list[dict[str, object]]:
    return [{"recipient": s.recipient, "error": s.error,
             "deliveries": [{"channel": o.channel, "status": o.status, "attempts": o.attempts,
                             "error": o.error} for o in s.outcomes]} for s in sent]


@report_app.command("send")
def report_send(
    to: Annotated[list[str], typer.Option("--to", help="A username or a role (head, team_lead, "
                                          "rep, admin, all); repeatable.")],
    digest: DigestOption = Digest.daily,
    at: AtOption = None,
    format: Annotated[ReportFormat, typer.Option("--format", "-f")] = ReportFormat.table,
) -> None:
    """Send digests now, each computed in its recipient's own scope and language.

    Example: saleskpi report send --to team_lead --to anna --digest weekly
    """
    from saleskpi.surfaces.reports.send import recipients, send_digests
    from saleskpi.views.digests import DigestParams
    from saleskpi.views.text import to_json

    svc = service()
    people = recipients(svc, to)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    sent = send_digests(svc, people, DigestParams(digest=digest.value, at=day(at)),
                        f"report:manual:{stamp}")
    if format is ReportFormat.json:
        write(to_json(_sent_json(sent)))
        return
    out.print(_outcomes_table(sent))


@report_app.command("list")
def report_list(
    format: Annotated[ReportFormat, typer.Option("--format", "-f")] = ReportFormat.table,
) -> None:
    """The report schedules (reports.yaml, or the defaults) and when each runs next.

    Example: saleskpi report list
    """
    from saleskpi.views.base import LOCAL
    from saleskpi.views.reports import schedules
    from saleskpi.views.text import to_json

    view = schedules(service(), LOCAL)
    if format is ReportFormat.json:
        write(to_json(view.to_json()))
        return
    if not view.from_file:
        out.print(_("No {file}: the default schedules apply (see docs/reports.md).",
                    file=view.file), highlight=False)
    table = Table(header_style="bold")
    for column in (_("Schedule"), _("Digest"), _("When (cron)"), _("To"), _("Recipients"),
                   _("Next run")):
        table.add_column(column)
    for s in view.schedules:
        table.add_row(s.name, s.digest, s.cron, ", ".join(s.to), ", ".join(s.recipients) or "—",
                      s.next_run)
    out.print(table)
    out.print(_("Time zone: {zone}.", zone=view.timezone), highlight=False)


@report_app.command("preview")
def report_preview(
    username: Annotated[str, typer.Argument(help="Whose digest.")],
    digest: DigestOption = Digest.daily,
    at: AtOption = None,
    pdf: Annotated[Path | None, typer.Option("--pdf", help="Also write its PDF here.")] = None,
    xlsx: Annotated[Path | None, typer.Option("--xlsx", help="Also write its XLSX here.")]
    = None,
    format: Annotated[ReportFormat, typer.Option("--format", "-f")] = ReportFormat.table,
) -> None:
    """Show a user's digest as they would receive it, without sending anything.

    Example: saleskpi report preview anna --pdf anna.pdf
    """
    from saleskpi.surfaces.reports.digest import digest_notice
    from saleskpi.views.digests import DigestParams
    from saleskpi.views.text import to_json

    params = DigestParams(digest=digest.value, at=day(at))
    svc = service()
    person = _user(username)
    if format is ReportFormat.json:
        import contextvars

        from saleskpi.domain.i18n import set_language
        from saleskpi.views.digests import digest as digest_view

        def as_person() -> str:
            set_language(person.lang)
            return to_json(digest_view(svc, person, params).to_json())

        write(contextvars.copy_context().run(as_person))
        return
    notice = digest_notice(svc, person, params, "preview")
    for path, ending in ((pdf, ".pdf"), (xlsx, ".xlsx")):
        if path is not None:
            path.write_bytes(next(a.data for a in notice.attachments
                                  if a.filename.endswith(ending)))
    write(notice.subject + "\n\n" + notice.body)


@report_app.command("pdf")
def report_pdf(
    page: Annotated[str, typer.Argument(help="overview, leaderboard, compare, funnel, plans "
                                        "or rep.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The PDF file to write.")],
    start: FromOption = None,
    end: ToOption = None,
    range_name: RangeOption = None,
    where: WhereOption = None,
    kpi: Annotated[str, typer.Option("--kpi", help="The leaderboard's KPI.")] = "revenue",
    kpis: Annotated[list[str] | None, typer.Option("--kpis", help="The KPIs shown; "
                                                   "repeatable.")] = None,
    rep: Annotated[str | None, typer.Option("--rep", help="The rep page's rep id.")] = None,
    as_user: Annotated[str | None, typer.Option(
        "--as", help="Render it as this user sees it (their scope and language).")] = None,
) -> None:
    """Write a dashboard page's data as a PDF.

    Example: saleskpi report pdf leaderboard --kpi deals_won --range last_month -o board.pdf
    """
    import contextvars

    from saleskpi.domain.i18n import current_language, set_language
    from saleskpi.surfaces.documents.pdf import render_pdf
    from saleskpi.surfaces.reports.pages import PageParams, page_document
    from saleskpi.views.base import LOCAL

    svc = service()
    caller = _user(as_user) if as_user else LOCAL
    params = PageParams(start=day(start), end=day(end), range=range_name, where=where or [],
                        kpi=kpi, kpis=kpis or [], rep=rep)
    lang = caller.lang if as_user else current_language()

    def render() -> bytes:
        set_language(lang)
        return render_pdf(page_document(svc, caller, page, params))

    output.write_bytes(contextvars.copy_context().run(render))
    out.print(_("Wrote {path}.", path=str(output)), highlight=False)


class Status(StrEnum):
    sent = "sent"
    failed = "failed"
    sending = "sending"


@report_app.command("deliveries")
def report_deliveries(
    status: Annotated[Status | None, typer.Option("--status", help="Only sent, failed or "
                                                  "sending.")] = None,
    limit: LimitOption = None,
    offset: OffsetOption = 0,
    format: Annotated[ReportFormat, typer.Option("--format", "-f")] = ReportFormat.table,
) -> None:
    """The delivery log, newest first: every notice, recipient and channel; what failed, why.

    Example: saleskpi report deliveries --status failed
    """
    from saleskpi.views.base import LOCAL
    from saleskpi.views.reports import DeliveriesParams, deliveries
    from saleskpi.views.text import to_json

    view = deliveries(service(), LOCAL, DeliveriesParams(
        status=status.value if status else None, limit=limit or 100, offset=offset))
    if format is ReportFormat.json:
        write(to_json(view.to_json()))
        return
    table = Table(header_style="bold")
    for column in (_("When (UTC)"), _("User"), _("Channel"), _("Status"), _("Tries"),
                   _("Subject"), _("Error")):
        table.add_column(column)
    for d in view.deliveries:
        style = "red" if d.status == "failed" else None
        table.add_row(d.updated_at.strftime("%Y-%m-%d %H:%M"), d.recipient, d.channel,
                      d.status, str(d.attempts), d.subject, d.last_error or "", style=style)
    out.print(table)
    out.print(_("{shown} of {total}; failed in all: {failed}.", shown=len(view.deliveries),
                total=view.page.total_rows, failed=view.failed), highlight=False)


@report_app.command("test")
def report_test(username: Annotated[str, typer.Argument(help="Who gets it.")]) -> None:
    """Send a short test message to a user by each of their channels.

    Example: saleskpi report test anna
    """
    from saleskpi.service.delivery import deliver
    from saleskpi.surfaces.reports.send import Sent, test_notice

    svc = service()
    person = _user(username)
    outcomes = deliver(svc.settings, [test_notice(person)])
    out.print(_outcomes_table([Sent(person.username, outcomes)]))


# -- contacts --------------------------------------------------------------------------------
def _contact_rows(views: list[object]) -> Table:
    from saleskpi.views.reports import ContactView

    table = Table(header_style="bold")
    for column in (_("User"), _("E-mail"), _("Telegram chat"), _("Channels chosen"),
                   _("Receives by")):
        table.add_column(column)
    for view in views:
        assert isinstance(view, ContactView)
        table.add_row(view.username, view.email or "—", view.telegram_chat_id or "—",
                      ", ".join(view.channels) or _("(by address)"),
                      ", ".join(view.receives_by) or _("nothing"))
    return table


@contacts_app.command("list")
def contacts_list(
    limit: LimitOption = None,
    offset: OffsetOption = 0,
    format: Annotated[ReportFormat, typer.Option("--format", "-f")] = ReportFormat.table,
) -> None:
    """Every user's e-mail, Telegram chat and channels.

    Example: saleskpi contacts list
    """
    from saleskpi.views.base import LOCAL, Paging
    from saleskpi.views.reports import all_contacts
    from saleskpi.views.text import to_json

    view = all_contacts(service(), LOCAL, Paging(limit=limit, offset=offset))
    if format is ReportFormat.json:
        write(to_json(view.to_json()))
        return
    out.print(_contact_rows(list(view.contacts)))


@contacts_app.command("set")
def contacts_set(
    username: Annotated[str, typer.Argument(help="Whose contacts.")],
    email: Annotated[str | None, typer.Option("--email", help="E-mail address ('' : none).")]
    = None,
    telegram: Annotated[str | None, typer.Option(
        "--telegram", help="Telegram chat id (the bot tells it on /start) or @channel.")]
    = None,
    channels: Annotated[str | None, typer.Option(
        "--channels", help="Comma-separated: email, telegram, slack, teams, webhook ('': "
        "every channel with an address).")] = None,
) -> None:
    """Set where a user receives notices; options not given are kept.

    Example: saleskpi contacts set anna --email anna@example.com --channels email,slack
    """
    from saleskpi.views.base import LOCAL
    from saleskpi.views.reports import ContactParams, SetContactParams, contact, set_contact

    svc = service()
    now = contact(svc, LOCAL, ContactParams(username=username))
    view = set_contact(svc, LOCAL, SetContactParams(
        username=username, email=now.email if email is None else email,
        telegram_chat_id=now.telegram_chat_id if telegram is None else telegram,
        channels=now.channels if channels is None else
        [c for c in channels.split(",") if c.strip()]))
    out.print(_contact_rows([view]))
