"""Scheduled reports, the delivery log and where people receive notices.

The schedules and the log are for managers (admin, head of sales); anybody may read
and change where they themselves receive notices, a manager anybody's.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

from saleskpi.domain.errors import Forbidden, NotFound
from saleskpi.domain.i18n import _
from saleskpi.service import contacts
from saleskpi.service.auth import list_users
from saleskpi.service.core import SalesKpiService
from saleskpi.service.delivery import delivery_log
from saleskpi.service.principal import Principal
from saleskpi.service.report_schedules import (
    load_schedules,
    next_run,
    recipients,
    reports_path,
)
from saleskpi.views.base import PageInfo, Paging, ViewModel, paged, require_manager


# -- schedules ---------------------------------------------------------------------------
class ScheduleEntry(BaseModel):
    name: str
    digest: str = Field(description="daily or weekly.")
    cron: str = Field(description="minute hour day month weekday, in the company's time zone.")
    to: list[str] = Field(description="Roles or usernames, as written.")
    recipients: list[str] = Field(description="The enabled users they mean now.")
    next_run: str = Field(description="When it runs next (ISO 8601, company time).")


class SchedulesView(ViewModel):
    file: str = Field(description="The workspace's reports.yaml.")
    from_file: bool = Field(description="false: the file is absent and the defaults apply.")
    timezone: str
    schedules: list[ScheduleEntry]


def schedules(service: SalesKpiService, caller: Principal) -> SchedulesView:
    require_manager(caller)
    settings = service.settings
    now = dt.datetime.now(dt.UTC)
    found = []
    for schedule in load_schedules(settings):
        try:
            names = [p.username for p in recipients(service, schedule.to)]
        except NotFound:
            names = []
        found.append(ScheduleEntry(
            name=schedule.name, digest=schedule.digest, cron=schedule.cron,
            to=list(schedule.to), recipients=names,
            next_run=next_run(schedule, now, settings.timezone).isoformat()))
    path = reports_path(settings)
    return SchedulesView(file=str(path), from_file=path.is_file(),
                         timezone=settings.timezone, schedules=found)


# -- the delivery log -----------------------------------------------------------------------
class DeliveriesParams(Paging):
    status: Literal["sent", "failed", "sending"] | None = Field(
        default=None, description="Only deliveries in this state.")


class DeliveryEntry(BaseModel):
    id: int
    key: str = Field(description="The notice's key: the same key is the same event.")
    kind: str = Field(description="alert, report, contest, test.")
    recipient: str
    channel: str
    subject: str
    status: str = Field(description="sent, failed, or sending (in flight).")
    attempts: int = Field(description="Tries in all, over every delivery of the key.")
    last_error: str | None = Field(description="The last failure (kept after a retry "
                                   "succeeded).")
    created_at: dt.datetime
    updated_at: dt.datetime
    sent_at: dt.datetime | None


class DeliveriesView(ViewModel):
    deliveries: list[DeliveryEntry]
    failed: int = Field(description="Failed deliveries in the whole log.")
    page: PageInfo


def deliveries(service: SalesKpiService, caller: Principal,
               params: DeliveriesParams) -> DeliveriesView:
    """The delivery log, newest first: what went to whom, by which channel, what failed."""
    require_manager(caller)
    limit = params.limit or 100
    rows, total = delivery_log(service.settings, limit=limit, offset=params.offset,
                               status=params.status)
    _rows, failed = delivery_log(service.settings, limit=1, status="failed")
    entries = [DeliveryEntry(id=r.id, key=r.notice_key, kind=r.kind, recipient=r.recipient,
                             channel=r.channel, subject=r.subject, status=r.status,
                             attempts=r.attempts, last_error=r.last_error,
                             created_at=r.created_at, updated_at=r.updated_at,
                             sent_at=r.sent_at) for r in rows]
    view: DeliveriesView = DeliveriesView(
        deliveries=entries, failed=failed,
        page=PageInfo(total_rows=total, limit=limit, offset=params.offset)).with_source(rows)
    return view


# -- contacts --------------------------------------------------------------------------------
class ContactParams(BaseModel):
    username: str | None = Field(default=None, description="Whose (default: the caller's).")


class ContactView(ViewModel):
    username: str
    email: str | None
    telegram_chat_id: str | None
    channels: list[str] = Field(description="Chosen channels; empty: every channel with an "
                                "address (e-mail, Telegram).")
    receives_by: list[str] = Field(description="The channels notices go by now.")


class SetContactParams(ContactParams):
    email: str | None = Field(default=None, description="E-mail address (empty: none).")
    telegram_chat_id: str | None = Field(
        default=None, description="Telegram chat id (the bot tells it on /start) or @channel.")
    channels: list[str] = Field(default_factory=list, description="email, telegram, slack, "
                                "teams, webhook (empty: every one with an address).")


class ContactsView(ViewModel):
    contacts: list[ContactView]
    page: PageInfo


def _whose(service: SalesKpiService, caller: Principal, username: str | None) -> Principal:
    name = username or caller.username
    if name != caller.username and not caller.can_manage:
        raise Forbidden(_("only an admin or the head of sales may see or change another "
                          "user's contacts"))
    for user in list_users(service.settings):
        if user.username == name:
            return user
    raise NotFound(_("no user {name!r}", name=name), code="unknown_user")


def _contact_view(username: str, record: contacts.ContactRecord) -> ContactView:
    return ContactView(username=username, email=record.email,
                       telegram_chat_id=record.telegram_chat_id, channels=list(record.channels),
                       receives_by=list(contacts.chosen_channels(record)))


def contact(service: SalesKpiService, caller: Principal, params: ContactParams) -> ContactView:
    user = _whose(service, caller, params.username)
    return _contact_view(user.username, contacts.contact(service.settings, user.user_id))


def set_contact(service: SalesKpiService, caller: Principal,
                params: SetContactParams) -> ContactView:
    """Replace where the user receives notices (every field: what is not given is cleared)."""
    user = _whose(service, caller, params.username)
    record = contacts.set_contact(service.settings, contacts.ContactRecord(
        user.user_id, params.email, params.telegram_chat_id, tuple(params.channels)))
    return _contact_view(user.username, record)


def all_contacts(service: SalesKpiService, caller: Principal, params: Paging) -> ContactsView:
    require_manager(caller)
    users = list_users(service.settings)
    shown, page = paged(users, params)
    return ContactsView(contacts=[_contact_view(u.username,
                                                contacts.contact(service.settings, u.user_id))
                                  for u in shown], page=page)
