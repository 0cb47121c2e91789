"""REST v1: scheduled reports, digests, page PDFs, the delivery log and contacts.

The same JSON as ``saleskpi report ... --format json`` and ``saleskpi contacts``.
Sending and the log are for managers; anybody reads their own digest and sets where
they receive notices (``/contacts/me``).
"""

from __future__ import annotations

import contextvars
import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field
from starlette.responses import Response

from saleskpi.domain.i18n import set_language
from saleskpi.service.auth import Principal
from saleskpi.surfaces.http.deps import ServiceDep, UserDep, csrf_header
from saleskpi.surfaces.http.params import Limit, Offset
from saleskpi.views.base import DEFAULT_LIMIT, Paging, require_manager
from saleskpi.views.digests import DigestParams, DigestView, digest
from saleskpi.views.reports import (
    ContactParams,
    ContactsView,
    ContactView,
    DeliveriesParams,
    DeliveriesView,
    SchedulesView,
    SetContactParams,
    all_contacts,
    contact,
    deliveries,
    schedules,
    set_contact,
)

router = APIRouter(prefix="/api/v1")


def manager_caller(user: UserDep) -> Principal:
    require_manager(user)
    return user


ManagerCaller = Annotated[Principal, Depends(manager_caller)]
Username = Annotated[str, Path(min_length=1, max_length=100)]


@router.get("/reports/schedules", response_model=SchedulesView)
def report_schedules(user: ManagerCaller, svc: ServiceDep) -> dict[str, Any]:
    """The report schedules (reports.yaml or the defaults) and their next runs (`saleskpi
    report list --format json`): managers."""
    return schedules(svc, user).to_json()


@router.get("/reports/digest", response_model=DigestView, response_model_by_alias=True)
def my_digest(user: UserDep, svc: ServiceDep,
              digest_name: Annotated[Literal["daily", "weekly"], Query(alias="digest")]
              = "daily",
              at: Annotated[dt.date | None, Query(description="The last day covered "
                                                  "(default: yesterday).")] = None
              ) -> dict[str, Any]:
    """Your own digest as JSON, in your scope: what the e-mail would hold."""
    params = DigestParams(digest=digest_name, at=at)

    def as_caller() -> dict[str, Any]:
        set_language(user.lang)
        return digest(svc, user, params).to_json()

    return contextvars.copy_context().run(as_caller)


class SendRequest(BaseModel):
    to: list[str] = Field(min_length=1, max_length=100,
                          description="Usernames or roles (head, team_lead, rep, admin, all).")
    digest: Literal["daily", "weekly"] = "daily"
    at: dt.date | None = Field(default=None, description="The last day covered (default: "
                               "yesterday).")


class SentDelivery(BaseModel):
    channel: str | None
    status: str = Field(description="sent, failed, already_sent, no_channel, "
                        "unknown_recipient.")
    attempts: int
    error: str | None


class SentDigest(BaseModel):
    recipient: str
    error: str | None = Field(description="Why the digest could not be computed.")
    deliveries: list[SentDelivery]


class SentView(BaseModel):
    sent: list[SentDigest]


@router.post("/reports/send", response_model=SentView,
             dependencies=[Depends(csrf_header)])
def send_now(body: SendRequest, user: ManagerCaller, svc: ServiceDep) -> dict[str, Any]:
    """Send digests now (`saleskpi report send`): managers. Each is computed in its
    recipient's scope and language, and sent by their channels."""
    from saleskpi.surfaces.reports.send import recipients, send_digests

    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    sent = send_digests(svc, recipients(svc, body.to),
                        DigestParams(digest=body.digest, at=body.at), f"report:api:{stamp}")
    return {"sent": [{"recipient": s.recipient, "error": s.error, "deliveries": [
        {"channel": o.channel, "status": o.status, "attempts": o.attempts, "error": o.error}
        for o in s.outcomes]} for s in sent]}


@router.get("/reports/pdf/{page}", response_class=Response,
            responses={200: {"content": {"application/pdf": {}},
                             "description": "The page's data as a PDF."}})
def page_pdf(page: Literal["overview", "leaderboard", "compare", "funnel", "plans", "rep"],
             user: UserDep, svc: ServiceDep,
             start: Annotated[dt.date | None, Query(alias="from")] = None,
             end: Annotated[dt.date | None, Query(alias="to")] = None,
             range_name: Annotated[str | None, Query(alias="range", max_length=20)] = None,
             where: Annotated[list[str] | None, Query(max_length=20)] = None,
             kpi: Annotated[str, Query(max_length=200)] = "revenue",
             kpis: Annotated[list[str] | None, Query(max_length=50)] = None,
             rep: Annotated[str | None, Query(max_length=200)] = None) -> Response:
    """A dashboard page's data as a PDF (`saleskpi report pdf`), in your scope and language."""
    from saleskpi.surfaces.documents.pdf import render_pdf
    from saleskpi.surfaces.reports.pages import PageParams, page_document

    params = PageParams(start=start, end=end, range=range_name, where=where or [], kpi=kpi,
                        kpis=kpis or [], rep=rep)

    def as_caller() -> bytes:
        set_language(user.lang)
        return render_pdf(page_document(svc, user, page, params))

    body = contextvars.copy_context().run(as_caller)
    return Response(body, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="saleskpi-{page}.pdf"'})


@router.get("/reports/deliveries", response_model=DeliveriesView)
def delivery_log(user: ManagerCaller, svc: ServiceDep,
                 status: Literal["sent", "failed", "sending"] | None = None,
                 limit: Limit = 100, offset: Offset = 0) -> dict[str, Any]:
    """The delivery log, newest first (`saleskpi report deliveries --format json`)."""
    return deliveries(svc, user, DeliveriesParams(status=status, limit=limit,
                                                  offset=offset)).to_json()


@router.get("/contacts", response_model=ContactsView)
def list_contacts(user: ManagerCaller, svc: ServiceDep, limit: Limit = DEFAULT_LIMIT,
                  offset: Offset = 0) -> dict[str, Any]:
    """Every user's contacts (`saleskpi contacts list --format json`): managers."""
    return all_contacts(svc, user, Paging(limit=limit, offset=offset)).to_json()


class ContactBody(BaseModel):
    email: str | None = Field(default=None, max_length=320)
    telegram_chat_id: str | None = Field(default=None, max_length=64)
    channels: list[str] = Field(default_factory=list, max_length=5)


@router.get("/contacts/{username}", response_model=ContactView)
def get_contact(username: Username, user: UserDep, svc: ServiceDep) -> dict[str, Any]:
    """Where a user receives notices; ``me`` for yourself (others: managers)."""
    name = user.username if username == "me" else username
    return contact(svc, user, ContactParams(username=name)).to_json()


@router.put("/contacts/{username}", response_model=ContactView,
            dependencies=[Depends(csrf_header)])
def put_contact(username: Username, body: ContactBody, user: UserDep,
                svc: ServiceDep) -> dict[str, Any]:
    """Replace where a user receives notices; ``me`` for yourself (others: managers)."""
    name = user.username if username == "me" else username
    return set_contact(svc, user, SetContactParams(
        username=name, email=body.email, telegram_chat_id=body.telegram_chat_id,
        channels=body.channels)).to_json()
