"""Alert rules as data: what to watch, who is told, how often, and how loudly.

A workspace keeps its rules in ``alerts.yaml`` (``rules:`` a list). Every rule has
a ``name``, an ``owner``, ``recipients`` (roles, teams, reps or users), a schedule
(``every``), a ``for`` duration before it fires, a ``repeat`` interval while it keeps
firing, a ``severity`` and what to do without data (``no_data``). Its ``kind`` says
what it watches and which fields it takes:

- ``lead_not_contacted``: a lead with no contact within ``sla_minutes`` of working
  time (the company's working hours and holidays);
- ``deal_stuck``: an open deal longer than ``days`` in one stage, or longer than its
  team's 90th percentile for that stage (``over_team_p90``);
- ``behind_pace``: a rep's (or team's) plan more than ``behind_pct`` % behind the
  pace its working days so far expect;
- ``kpi_threshold``: a catalogue KPI ``above`` or ``below`` a value, or worse than
  the rep's own average of the previous ``baseline_periods`` windows by
  ``worse_than_baseline_pct`` %;
- ``data_stale``: nothing imported or synced for ``hours``, or a CRM sync failing.

Pure validation: reading and writing the file is ``saleskpi.service.alert_rules``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from saleskpi.domain.errors import InvalidQuery
from saleskpi.domain.i18n import _

ALERTS_FILE = "alerts.yaml"
KINDS = ("lead_not_contacted", "deal_stuck", "behind_pace", "kpi_threshold", "data_stale")
ROLES = ("admin", "head", "team_lead", "rep")
SEVERITIES = ("info", "warning", "critical")
WINDOWS = ("yesterday", "week_to_date", "month_to_date", "last_7_days", "last_30_days")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_NAME = r"^[a-z0-9][a-z0-9_-]{0,63}$"


class AlertRulesError(InvalidQuery):
    """alerts.yaml (or a rule sent to be saved) that cannot be used: says where and why."""

    default_code = "bad_alert_rule"


def parse_duration(value: Any) -> dt.timedelta:
    """``90s``, ``5m``, ``2h``, ``1d``, ``1w``, or a number of seconds."""
    if isinstance(value, dt.timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("a duration is like 5m, 2h or 1d")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if match is None:
            raise ValueError(f"{value!r} is not a duration like 30s, 5m, 2h, 1d or 1w")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds < 0 or seconds > 366 * 86400:
        raise ValueError("a duration is between 0 and a year")
    return dt.timedelta(seconds=seconds)


def format_duration(value: dt.timedelta) -> str:
    """The shortest exact spelling: ``5m``, ``36h``, ``1d``."""
    seconds = int(value.total_seconds())
    for unit in ("w", "d", "h", "m"):
        if seconds and seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


Duration = Annotated[dt.timedelta, BeforeValidator(parse_duration),
                     PlainSerializer(format_duration, return_type=str)]
Name = Annotated[str, Field(pattern=_NAME, description="lower case letters, digits, - and _")]
Words = Annotated[list[str], BeforeValidator(lambda v: [v] if isinstance(v, str) else v)]


class Recipients(BaseModel):
    """Who is told: every user of a role, the team leads of teams, reps' own users, or
    users by name. Each sees only what is in their scope."""

    model_config = ConfigDict(extra="forbid")

    roles: list[Literal["admin", "head", "team_lead", "rep"]] = Field(default_factory=list)
    teams: Words = Field(default_factory=list)
    reps: Words = Field(default_factory=list)
    users: Words = Field(default_factory=list)

    @model_validator(mode="after")
    def _someone(self) -> Recipients:
        if not (self.roles or self.teams or self.reps or self.users):
            raise ValueError("name at least one of roles, teams, reps or users")
        return self


class RuleBase(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: Name
    title: str = Field(default="", max_length=200)
    owner: str = Field(min_length=1, max_length=100)
    recipients: Recipients
    every: Duration = Field(default=dt.timedelta(minutes=5))
    hold: Duration = Field(default=dt.timedelta(0), alias="for")
    repeat: Duration = Field(default=dt.timedelta(hours=4))
    severity: Literal["info", "warning", "critical"] = "warning"
    no_data: Literal["keep", "resolve", "alert"] = "keep"
    notify_resolved: bool = True
    enabled: bool = True

    @model_validator(mode="after")
    def _schedule(self) -> RuleBase:
        if self.every < dt.timedelta(minutes=1):
            raise ValueError("every: evaluate at most once a minute (1m or more)")
        if self.repeat < self.every:
            raise ValueError("repeat: must not be shorter than every")
        return self


class LeadNotContacted(RuleBase):
    kind: Literal["lead_not_contacted"]
    sla_minutes: int = Field(ge=1, le=7 * 24 * 60)
    max_age: Duration = Field(default=dt.timedelta(days=7))
    sources: Words = Field(default_factory=list)


class DealStuck(RuleBase):
    kind: Literal["deal_stuck"]
    days: float | None = Field(default=None, gt=0, le=3650)
    over_team_p90: bool = False
    stages: Words = Field(default_factory=list)
    pipelines: Words = Field(default_factory=list)
    history_days: int = Field(default=180, ge=7, le=3650)
    min_samples: int = Field(default=5, ge=1, le=10_000)

    @model_validator(mode="after")
    def _limit(self) -> DealStuck:
        if self.days is None and not self.over_team_p90:
            raise ValueError("give days, or over_team_p90: true (or both: days when a stage "
                             "has too little history)")
        return self


class BehindPace(RuleBase):
    kind: Literal["behind_pace"]
    behind_pct: float = Field(gt=0, lt=100)
    kpis: Words = Field(default_factory=list)
    level: Literal["rep", "team"] = "rep"
    min_elapsed_days: int = Field(default=3, ge=1, le=366)


class KpiThreshold(RuleBase):
    kind: Literal["kpi_threshold"]
    kpi: str = Field(min_length=1, max_length=200)
    by: Literal["rep", "team", "company"] = "rep"
    window: Literal["yesterday", "week_to_date", "month_to_date", "last_7_days",
                    "last_30_days"] = "month_to_date"
    above: float | None = None
    below: float | None = None
    worse_than_baseline_pct: float | None = Field(default=None, gt=0, lt=1000)
    baseline_periods: int = Field(default=3, ge=1, le=24)

    @model_validator(mode="after")
    def _condition(self) -> KpiThreshold:
        if self.above is None and self.below is None and self.worse_than_baseline_pct is None:
            raise ValueError("give above, below or worse_than_baseline_pct")
        return self


class DataStale(RuleBase):
    kind: Literal["data_stale"]
    hours: float | None = Field(default=24, gt=0, le=24 * 366)
    sync_failures: bool = True
    working_hours: bool = False


AlertRule = Annotated[LeadNotContacted | DealStuck | BehindPace | KpiThreshold | DataStale,
                      Field(discriminator="kind")]
_RULE: TypeAdapter[AlertRule] = TypeAdapter(AlertRule)


def parse_rule(data: Any, where: str = ALERTS_FILE) -> AlertRule:
    """One rule from its mapping; ``AlertRulesError`` names ``where``, the rule and field."""
    try:
        return _RULE.validate_python(data)
    except ValidationError as exc:
        name = data.get("name") if isinstance(data, dict) else None
        raise AlertRulesError(_problem(exc, where, name, ())) from None


def parse_rules(data: Any, where: str = ALERTS_FILE) -> list[AlertRule]:
    """The rules of a whole file (``{"rules": [...]}``); names must be unique."""
    if data is None:
        return []
    if not isinstance(data, dict) or not isinstance(data.get("rules", []), list) \
            or set(data) - {"rules"}:
        raise AlertRulesError(_("{file}: expected 'rules:' followed by a list of rules",
                                file=where))
    rules: list[AlertRule] = []
    for index, item in enumerate(data.get("rules") or []):
        try:
            rules.append(_RULE.validate_python(item))
        except ValidationError as exc:
            name = item.get("name") if isinstance(item, dict) else None
            raise AlertRulesError(_problem(exc, where, name, ("rules", index))) from None
    seen: set[str] = set()
    for rule in rules:
        if rule.name in seen:
            raise AlertRulesError(_("{file}: two rules are named {rule!r}; names must be "
                                    "unique", file=where, rule=rule.name))
        seen.add(rule.name)
    return rules


def rule_data(rule: AlertRule) -> dict[str, Any]:
    """A rule as it is written to the file: durations spelled, defaults left out."""
    data = rule.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    return {"name": data.pop("name"), "kind": rule.kind, **data}


def _problem(error: ValidationError, where: str, name: object,
             prefix: tuple[str | int, ...]) -> str:
    first = error.errors()[0]
    loc = [p for p in first["loc"] if p not in KINDS]  # the union's tag is no field
    field = ".".join(str(p) for p in loc) or "kind"
    message = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "union_tag_invalid" or (first["type"] == "union_tag_not_found"):
        field, message = "kind", _("use one of {kinds}", kinds=", ".join(KINDS))
    elif first["type"] == "extra_forbidden":
        message = _("unknown field; check its spelling")
    elif first["type"] == "missing":
        message = _("this field is required")
    position = ".".join(str(p) for p in prefix)
    rule = _("rule {name!r}", name=name) if isinstance(name, str) and name \
        else _("rule {position}", position=position or "1")
    return _("{file}: {rule}, field {field!r}: {message}", file=where, rule=rule,
             field=field, message=message)
