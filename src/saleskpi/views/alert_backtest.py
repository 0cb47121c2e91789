"""The backtest of a rule (saved, or only drafted): how often it would have fired, on what.

The range is company days (``from``/``to``, or ``range``: last_month by default, or
mtd, wtd, qtd, ytd), up to a year, and never past now. Firings are counted in the
caller's scope: a team lead sees how often it would have told them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import AliasChoices, BaseModel, Field

from saleskpi.domain.alerts import AlertRule, parse_rule
from saleskpi.domain.errors import InvalidQuery
from saleskpi.domain.i18n import _
from saleskpi.domain.periods import parse_range, resolve_range
from saleskpi.domain.query import local_midnight_utc
from saleskpi.service import alert_rules
from saleskpi.service.alert_backtest import backtest as run_backtest
from saleskpi.service.alert_recipients import may_see
from saleskpi.service.alert_rules import check_rules
from saleskpi.service.alert_text import why
from saleskpi.service.core import SalesKpiService
from saleskpi.service.plan_inputs import today
from saleskpi.service.principal import Principal
from saleskpi.views.base import ViewModel

MAX_DAYS = 366
SHOWN = 1000  # firings listed (the count is of all)


class BacktestParams(BaseModel):
    rule: str | None = Field(default=None, description="A saved rule's name.")
    definition: dict[str, Any] | None = Field(
        default=None, description="Or a rule not saved yet, as in alerts.yaml.")
    start: dt.date | None = Field(default=None, validation_alias=AliasChoices("from", "start"),
                                  description="First day (company time).")
    end: dt.date | None = Field(default=None, validation_alias=AliasChoices("to", "end"),
                                description="Last day.")
    range: str | None = Field(default=None, description="Without from/to: last_month "
                              "(default), mtd, wtd, qtd or ytd.")


class FiringEntry(BaseModel):
    at: dt.datetime = Field(description="When it would have fired (UTC).")
    until: dt.datetime | None = Field(description="When the condition stopped (UTC); null: "
                                      "it still held at the range's end.")
    subject: str
    why: str
    link: str | None
    rep: str | None
    team: str | None


class BacktestView(ViewModel):
    rule: str
    start: dt.datetime = Field(alias="from", description="UTC.")
    end: dt.datetime = Field(alias="to", description="UTC.")
    firings: int = Field(description="How many times it would have fired.")
    subjects: int = Field(description="On how many different leads, deals, reps...")
    no_data: bool = Field(description="The rule had no data to judge.")
    shown: list[FiringEntry] = Field(description="The firings, oldest first (at most 1000).")


def _rule(service: SalesKpiService, params: BacktestParams) -> AlertRule:
    if params.definition is not None:
        rule = parse_rule(params.definition, _("the rule"))
        check_rules([rule], service.catalog)
        return rule
    if not params.rule:
        raise InvalidQuery(_("name a rule, or send one to try"), code="bad_alert_rule")
    return alert_rules.find_rule(alert_rules.load_rules(service.settings), params.rule)


def backtest(service: SalesKpiService, caller: Principal,
             params: BacktestParams) -> BacktestView:
    rule = _rule(service, params)
    zone = service.settings.timezone
    name = parse_range(params.range) or ("last_month" if params.start is None
                                         and params.end is None else None)
    if name == "all":
        raise InvalidQuery(_("a backtest covers at most {days} days; give from and to",
                             days=MAX_DAYS), code="bad_range")
    dates = resolve_range(today(service), params.start, params.end, name)
    first = dates.start or dates.end
    last = dates.end or today(service)
    if first is None or last < first or (last - first).days >= MAX_DAYS:
        raise InvalidQuery(_("a backtest covers 1 to {days} days; check from and to",
                             days=MAX_DAYS), code="bad_range")
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    try:
        start = local_midnight_utc(first, zone)
        end = min(local_midnight_utc(last + dt.timedelta(days=1), zone), now)
    except OverflowError:
        raise InvalidQuery(_("a backtest covers past days; check from and to"),
                           code="bad_range") from None
    if end <= start:
        raise InvalidQuery(_("the backtest's range has not begun yet"), code="bad_range")
    result = run_backtest(service, rule, start, end)
    mine = [f for f in result.firings if may_see(caller, f.episode.finding)]
    shown = [FiringEntry(at=f.at, until=f.episode.until, subject=f.episode.finding.subject,
                         why=why(rule.kind, f.episode.finding.subject,
                                 f.episode.finding.facts, service.catalog, zone),
                         link=f.episode.finding.link, rep=f.episode.finding.rep,
                         team=f.episode.finding.team) for f in mine[:SHOWN]]
    view: BacktestView = BacktestView.model_validate({
        "rule": rule.name, "from": start, "to": end, "firings": len(mine),
        "subjects": len({f.episode.finding.subject for f in mine}),
        "no_data": result.no_data, "shown": shown}).with_source(result)
    return view
