"""Leads not contacted within their SLA, counted in the company's working time.

A lead's SLA clock starts when it is created and runs only in working hours: one
created at 23:00 with a 5-minute SLA is due at 09:05 the next working day. It is
in breach from that moment until its first outbound contact (call, e-mail,
meeting...), until it is lost, or until it is older than ``max_age`` (it is no
longer watched), whichever comes first.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from saleskpi.domain.alert_states import Episode, Finding
from saleskpi.domain.alerts import LeadNotContacted
from saleskpi.service.alert_checks.base import CheckContext, iso
from saleskpi.store.alert_facts import LeadContact, lead_contacts


def lead_episodes(ctx: CheckContext, rule: LeadNotContacted, start: dt.datetime,
                  end: dt.datetime) -> list[Episode] | None:
    """Every breach that overlaps [start, end]; None when there are no leads at all."""
    with ctx.service.reading() as store:
        if store.count("leads") == 0:
            return None
        leads = lead_contacts(store, start - rule.max_age, end, rule.sources)
    working = ctx.working
    found = []
    for lead in leads:
        due = working.add(lead.created_at, rule.sla_minutes * 60)
        stop = min(t for t in (lead.first_contact_at, lead.lost_at,
                               lead.created_at + rule.max_age) if t is not None)
        if due >= stop or due > end or stop <= start:
            continue  # contacted (or closed, or too old) in time, or outside the range
        finding = Finding(
            subject=f"lead:{lead.datasource}:{lead.lead}", rep=lead.rep, team=lead.team,
            facts={"lead": lead.lead, "source": lead.source, "created": iso(lead.created_at),
                   "due": iso(due), "sla_minutes": rule.sla_minutes,
                   "rep_name": lead.rep_name},
            link=_link(ctx, lead), company=lead.rep is None)
        found.append(Episode(finding, due, stop if stop <= end else None))
    return found


def _link(ctx: CheckContext, lead: LeadContact) -> str:
    """The day's leads (of the lead's rep): the page that lists this one."""
    day = ctx.local_day(lead.created_at).isoformat()
    params = {"kpi": "leads", "from": day, "to": day}
    if lead.rep:
        params["rep"] = lead.rep
    return "/rows?" + urlencode(params)
