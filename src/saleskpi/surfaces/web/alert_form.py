"""The alert rule editor's form: its fields, and a rule's definition to and from them.

The form has the fields every rule has and one group per kind; only the chosen
kind's group is read (the page's CSS shows only that group). Empty fields are left
out, so the rule's defaults apply; lists are comma-separated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from saleskpi.domain.alerts import KINDS, ROLES, SEVERITIES, WINDOWS
from saleskpi.surfaces.web.i18n import _

CHECKED_BY_DEFAULT = ("enabled", "notify_resolved", "sync_failures")
RECIPIENT_LISTS = ("teams", "reps", "users")
CHOSEN_BY_DEFAULT = {"severity": "warning", "no_data": "keep", "level": "rep", "by": "rep",
                     "window": "month_to_date"}


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    type: str  # text, number, list, check, select
    options: tuple[str, ...] = ()
    placeholder: str = ""


def common_fields() -> list[Field]:
    return [
        Field("name", _("Name (a-z, 0-9, - and _)"), "text", placeholder="lead-sla"),
        Field("title", _("Title in notices"), "text", placeholder=_("Lead not called back")),
        Field("owner", _("Owner (who answers for the rule)"), "text"),
        Field("severity", _("Severity"), "select", SEVERITIES),
        Field("every", _("Evaluate every"), "text", placeholder="5m"),
        Field("for", _("Fire after it holds for"), "text", placeholder="0m"),
        Field("repeat", _("Repeat while firing every"), "text", placeholder="4h"),
        Field("no_data", _("Without data"), "select", ("keep", "resolve", "alert")),
        Field("teams", _("Recipients: team leads of the teams"), "list", placeholder="North"),
        Field("reps", _("Recipients: reps (ids)"), "list", placeholder="r1, r2"),
        Field("users", _("Recipients: users"), "list", placeholder="anna"),
        Field("notify_resolved", _("Tell when resolved"), "check"),
        Field("enabled", _("Enabled"), "check"),
    ]


def kind_fields(kpis: list[str]) -> dict[str, list[Field]]:
    return {
        "lead_not_contacted": [
            Field("sla_minutes", _("Contact within (working minutes)"), "number",
                  placeholder="5"),
            Field("max_age", _("Stop watching a lead after"), "text", placeholder="7d"),
            Field("sources", _("Only leads from these sources"), "list", placeholder="web"),
        ],
        "deal_stuck": [
            Field("days", _("Days in one stage"), "number", placeholder="14"),
            Field("over_team_p90", _("Or longer than the team's 90th percentile"), "check"),
            Field("stages", _("Only these stages"), "list"),
            Field("pipelines", _("Only these pipelines"), "list"),
            Field("history_days", _("Days of history for the percentile"), "number",
                  placeholder="180"),
            Field("min_samples", _("Fewest stays for a percentile"), "number", placeholder="5"),
        ],
        "behind_pace": [
            Field("behind_pct", _("Behind the plan's pace by more than (%)"), "number",
                  placeholder="20"),
            Field("kpis", _("Only these KPIs"), "list", placeholder="deals_won, revenue"),
            Field("level", _("Whose plans"), "select", ("rep", "team")),
            Field("min_elapsed_days", _("From working day"), "number", placeholder="3"),
        ],
        "kpi_threshold": [
            Field("kpi", _("KPI"), "select", tuple(kpis)),
            Field("by", _("For each"), "select", ("rep", "team", "company")),
            Field("window", _("Over"), "select", WINDOWS),
            Field("above", _("Alert above"), "number"),
            Field("below", _("Alert below"), "number"),
            Field("worse_than_baseline_pct", _("Or worse than the own average by (%)"),
                  "number"),
            Field("baseline_periods", _("Average of how many earlier windows"), "number",
                  placeholder="3"),
        ],
        "data_stale": [
            Field("hours", _("Nothing new for (hours)"), "number", placeholder="24"),
            Field("sync_failures", _("Also when a CRM sync fails"), "check"),
            Field("working_hours", _("Count working hours only"), "check"),
        ],
    }


def _list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def definition_of(form: Mapping[str, list[str]], kpis: list[str]) -> dict[str, Any]:
    """The rule the form describes (checked later, as any rule)."""
    def one(name: str) -> str:
        values = form.get(name) or [""]
        return values[-1].strip()

    kind = one("kind")
    data: dict[str, Any] = {"kind": kind}
    recipients: dict[str, list[str]] = {}
    for field in common_fields() + kind_fields(kpis).get(kind, []):
        if field.type == "check":
            data[field.name] = bool(one(field.name))
        elif field.type == "list":
            items = _list(one(field.name))
            if items and field.name in RECIPIENT_LISTS:
                recipients[field.name] = items
            elif items:
                data[field.name] = items
        elif one(field.name):
            data[field.name] = one(field.name)
    roles = [r for r in form.get("roles", []) if r in ROLES]
    if roles:
        recipients["roles"] = roles
    data["recipients"] = recipients
    return data


def values_of(definition: Mapping[str, Any] | None) -> dict[str, Any]:
    """What the form's fields show for a rule (a new rule: the defaults). The file leaves
    defaults out, so the choices' defaults are filled in here."""
    values: dict[str, Any] = {**CHOSEN_BY_DEFAULT, **{name: True for name in CHECKED_BY_DEFAULT}}
    if not definition:
        return {**values, "kind": KINDS[0], "roles": ["head", "team_lead"]}
    for key, value in definition.items():
        if key == "recipients" and isinstance(value, Mapping):
            values["roles"] = list(value.get("roles", []))
            for part in ("teams", "reps", "users"):
                values[part] = ", ".join(value.get(part, []))
        elif isinstance(value, list):
            values[key] = ", ".join(str(v) for v in value)
        else:
            values[key] = value
    return values
