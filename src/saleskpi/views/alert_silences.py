"""Silences of alerts: list, add and end them, within the caller's scope.

Times are the company's: a day as the start means its first moment, a day as the
end its last (``--to 2026-12-31`` silences through New Year's Eve); a time without an
offset is company time. Without a start the silence starts now; ``duration`` (``8h``,
``1d``) may stand for the end.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from pydantic import BaseModel, Field, field_validator

from saleskpi.domain.alerts import parse_duration
from saleskpi.domain.errors import InvalidQuery
from saleskpi.domain.i18n import _
from saleskpi.service import alert_silences
from saleskpi.service.core import SalesKpiService
from saleskpi.service.principal import Principal
from saleskpi.views.base import ViewModel


class SilenceEntry(BaseModel):
    id: int
    rule: str | None
    rep: str | None
    team: str | None
    starts_at: dt.datetime = Field(description="UTC.")
    ends_at: dt.datetime = Field(description="UTC.")
    created_by: str
    reason: str
    created_at: dt.datetime
    removed_at: dt.datetime | None
    removed_by: str | None
    active: bool = Field(description="On now.")


class SilencesParams(BaseModel):
    all: bool = Field(default=False, description="Also the ended and removed ones.")


class SilencesView(ViewModel):
    silences: list[SilenceEntry]


class NewSilence(BaseModel):
    rule: str | None = Field(default=None, max_length=64, description="Only this rule.")
    rep: str | None = Field(default=None, max_length=200, description="Only this rep's "
                            "alerts (the rep's id).")
    team: str | None = Field(default=None, max_length=200, description="Only this team's.")
    starts: dt.datetime | dt.date | None = Field(
        default=None, description="From (company time; a day: its start); default now.")
    ends: dt.datetime | dt.date | None = Field(
        default=None, description="Until (company time; a day: its end).")
    duration: str | None = Field(default=None, description="Instead of ends: 8h, 1d, 2w.")
    reason: str = Field(default="", max_length=500, description="Why (required).")

    @field_validator("starts", "ends", mode="before")
    @classmethod
    def _day_or_moment(cls, value: object) -> object:
        """``2026-12-31`` is a day (its start, or as the end its end); with a time, a
        moment."""
        if isinstance(value, str) and len(value.strip()) == 10:
            return dt.date.fromisoformat(value.strip())
        return value


class SilenceId(BaseModel):
    id: int = Field(ge=1, le=2**62)


def _utc(service: SalesKpiService, value: dt.datetime | dt.date, *, end: bool) -> dt.datetime:
    zone = zoneinfo.ZoneInfo(service.settings.timezone)
    try:
        if not isinstance(value, dt.datetime):
            value = dt.datetime.combine(value + dt.timedelta(days=1) if end else value,
                                        dt.time())
        if value.tzinfo is None:
            value = value.replace(tzinfo=zone)
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    except OverflowError:
        raise InvalidQuery(_("{value} is out of range; use a date between 2000 and 2100",
                             value=value), code="bad_silence") from None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def entry(silence: alert_silences.Silence, now: dt.datetime) -> SilenceEntry:
    return SilenceEntry(id=silence.id, rule=silence.rule, rep=silence.rep, team=silence.team,
                        starts_at=silence.starts_at, ends_at=silence.ends_at,
                        created_by=silence.created_by, reason=silence.reason,
                        created_at=silence.created_at, removed_at=silence.removed_at,
                        removed_by=silence.removed_by, active=silence.active_at(now))


def silences(service: SalesKpiService, caller: Principal,
             params: SilencesParams) -> SilencesView:
    now = _now()
    found = alert_silences.list_silences(service, caller,
                                         current_at=None if params.all else now)
    view: SilencesView = SilencesView(silences=[entry(s, now) for s in found])
    return view


def add_silence(service: SalesKpiService, caller: Principal,
                params: NewSilence) -> SilenceEntry:
    now = _now()
    starts = now if params.starts is None else _utc(service, params.starts, end=False)
    if params.ends is not None and params.duration:
        raise InvalidQuery(_("give an end or a duration, not both"), code="bad_silence")
    if params.ends is not None:
        ends = _utc(service, params.ends, end=True)
    elif params.duration:
        try:
            ends = starts + parse_duration(params.duration)
        except ValueError as exc:
            raise InvalidQuery(str(exc), code="bad_silence") from None
    else:
        raise InvalidQuery(_("say until when: an end (a day or a time) or a duration like 1d"),
                           code="bad_silence")
    made = alert_silences.add_silence(service, caller, rule=params.rule, rep=params.rep,
                                      team=params.team, starts_at=starts, ends_at=ends,
                                      reason=params.reason, now=now)
    return entry(made, now)


def remove_silence(service: SalesKpiService, caller: Principal,
                   params: SilenceId) -> SilenceEntry:
    now = _now()
    gone = alert_silences.remove_silence(service, caller, params.id, now)
    return entry(gone, now)
