"""Notifications: where I receive them (/notifications), and what was delivered (/deliveries).

/notifications is everybody's own: an e-mail address, a Telegram chat, the channels
chosen, and a test message to check them. /deliveries is the delivery log for
managers: every notice, recipient and channel, failures first in colour, with the
error the channel gave (``views.reports``; the same as ``saleskpi report deliveries``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form
from starlette.responses import RedirectResponse, Response

from saleskpi.domain.errors import HTTP_STATUS, SalesKpiError
from saleskpi.service import contacts as channels_of
from saleskpi.service.channels import CHANNELS
from saleskpi.service.delivery import deliver
from saleskpi.surfaces.reports.send import test_notice
from saleskpi.surfaces.web.deps import ManagerPageDep, Page, PageDep
from saleskpi.surfaces.web.http import WebRoute
from saleskpi.surfaces.web.i18n import _
from saleskpi.surfaces.web.tables import (
    PAGE_PARAM,
    Cell,
    Column,
    DataTable,
    Row,
    number_cell,
    requested_page,
    text_cell,
)
from saleskpi.views.reports import (
    ContactParams,
    DeliveriesParams,
    SetContactParams,
    contact,
    deliveries,
    set_contact,
)

router = APIRouter(route_class=WebRoute)
SESSION_FLASH = "web_flash"
PAGE_SIZE = 100
Field = Annotated[str, Form(max_length=400)]


def channel_names() -> dict[str, str]:
    return {"email": _("E-mail"), "telegram": _("Telegram"), "slack": _("Slack"),
            "teams": _("Microsoft Teams"), "webhook": _("Webhook (signed)")}


def status_names() -> dict[str, str]:
    return {"sent": _("sent"), "failed": _("failed"), "sending": _("sending")}


# -- my notifications -----------------------------------------------------------------------
def _notifications(page: Page, *, error: str = "", status: int = 200) -> Response:
    mine = contact(page.service, page.user, ContactParams())
    record = channels_of.contact(page.service.settings, page.user.user_id)
    # Each chosen channel's state: works, or why not (no address, not set up).
    found = channels_of.routes(page.service.settings, page.user, record)
    states = [(channel_names()[r.channel], r.problem) for r in found]
    flash = page.request.session.pop(SESSION_FLASH, "")
    return page.render("notifications.html", status=status, mine=mine, channels=CHANNELS,
                       channel_names=channel_names(), states=states, error=error,
                       flash=flash if isinstance(flash, str) else "",
                       title=_("My notifications"))


@router.get("/notifications")
def notifications_page(page: PageDep) -> Response:
    return _notifications(page)


@router.post("/notifications")
def save_notifications(page: PageDep, csrf: Field = "", email: Field = "",
                       telegram: Field = "",
                       channel: Annotated[list[str] | None, Form()] = None) -> Response:
    page.check_csrf(csrf)
    try:
        set_contact(page.service, page.user, SetContactParams(
            email=email, telegram_chat_id=telegram, channels=(channel or [])[:len(CHANNELS)]))
    except SalesKpiError as exc:
        return _notifications(page, error=exc.message, status=HTTP_STATUS[exc.kind])
    page.request.session[SESSION_FLASH] = _("Saved: notices reach you as shown below.")
    return RedirectResponse("/notifications", status_code=303)


@router.post("/notifications/test")
def send_test(page: PageDep, csrf: Field = "") -> Response:
    page.check_csrf(csrf)
    outcomes = deliver(page.service.settings, [test_notice(page.user)])
    names = channel_names()
    done = [names.get(o.channel or "", o.channel or "") for o in outcomes if o.status == "sent"]
    failed = [f"{names.get(o.channel or '', o.channel or '')}: {o.error}" for o in outcomes
              if o.status == "failed"]
    if not outcomes or outcomes[0].channel is None:
        message = _("You have no channel yet: give an e-mail address or a Telegram chat.")
    else:
        message = _("Test message sent by: {channels}.", channels=", ".join(done) or "—")
        if failed:
            message += " " + _("Failed: {failures}.", failures="; ".join(failed))
    page.request.session[SESSION_FLASH] = message
    return RedirectResponse("/notifications", status_code=303)


# -- the delivery log -----------------------------------------------------------------------
def deliveries_table(page: Page, only_failed: bool) -> tuple[DataTable, int]:
    status: Literal["failed"] | None = "failed" if only_failed else None
    number = requested_page(page.request.query_params.get(PAGE_PARAM))
    view = deliveries(page.service, page.user, DeliveriesParams(
        status=status, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE))
    last = max(1, -(-view.page.total_rows // PAGE_SIZE))
    if number > last:  # an old link past the end: the last page, as the pager shows it
        view = deliveries(page.service, page.user, DeliveriesParams(
            status=status, limit=PAGE_SIZE, offset=(last - 1) * PAGE_SIZE))
    columns = [Column("when", _("When")), Column("recipient", _("User")),
               Column("channel", _("Channel")), Column("kind", _("Kind")),
               Column("subject", _("Subject")), Column("status", _("Status")),
               Column("attempts", _("Tries"), numeric=True, unit="count"),
               Column("error", _("Last error"))]
    kinds = {"alert": _("alert"), "report": _("report"), "contest": _("contest"),
             "test": _("test")}
    names, statuses = channel_names(), status_names()
    rows = []
    for entry in view.deliveries:
        when = entry.updated_at
        rows.append(Row([
            Cell(when.isoformat(), page.fmt.date(when.date()) + when.strftime(" %H:%M UTC")),
            text_cell(entry.recipient, verbatim=True),
            Cell(entry.channel, names.get(entry.channel, entry.channel)),
            Cell(entry.kind, kinds.get(entry.kind, entry.kind)),
            text_cell(entry.subject, verbatim=True),
            Cell(entry.status, statuses.get(entry.status, entry.status),
                 mark="worse" if entry.status == "failed" else None),
            number_cell(entry.attempts, "count", page.fmt),
            # The channel's own words (an SMTP or HTTP answer): shown as they are.
            text_cell(entry.last_error, verbatim=True)],
            kind="failed" if entry.status == "failed" else "item"))
    table = DataTable("deliveries", _("Deliveries"), columns, rows,
                      note=_("Newest first. A failed delivery is tried again the next time "
                             "the same notice is sent; tries count every attempt."))
    table.pager = page.pager(view.page.total_rows, PAGE_SIZE)
    return table, view.failed


@router.get("/deliveries")
def deliveries_page(page: ManagerPageDep) -> Response:
    only_failed = page.request.query_params.get("status") == "failed"
    table, failed = deliveries_table(page, only_failed)
    return page.render("deliveries.html", tables=[table], deliveries=table, failed=failed,
                       only_failed=only_failed, title=_("Deliveries"))
