"""The MCP tools: one declarative entry per view, each a thin wrapper around it.

A tool is a view function (``view(service, caller, params) -> ViewModel``) with a
name and a description for the assistant. Its arguments are the view's params model
(read from the function's annotations, so they are exactly what the CLI and the REST
API accept), its answer the view's JSON (``view.to_json()``) plus ``definitions``:
the catalogue definition of every KPI the answer uses.

Adding a tool for a new view is one ``ToolSpec`` in ``TOOLS``. A view module that is
not there (yet) is skipped; the first of a tool's candidate views that exists is used.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import AliasChoices, BaseModel, ValidationError

from saleskpi.domain.errors import SalesKpiError
from saleskpi.domain.i18n import _, resolve_language, set_language
from saleskpi.service.auth import Principal
from saleskpi.service.core import SalesKpiService
from saleskpi.views.base import DEFAULT_LIMIT, Paging, ViewModel
from saleskpi.views.kpi_help import definitions

log = logging.getLogger("saleskpi.surfaces.mcp")

View = Callable[[SalesKpiService, Principal, Any], ViewModel]


@dataclass(frozen=True)
class ToolSpec:
    """One tool: its name, what it is for, and the view(s) it calls.

    ``views`` are ``"module:function"`` candidates under ``saleskpi.views``; the first
    whose module exists is used (so a tool can move to a better view when one lands).
    ``kpi_fields``: the keys, in the arguments and anywhere in the answer, whose string
    values name the KPIs the answer uses (``definitions``).
    """

    name: str
    description: str
    views: tuple[str, ...]
    title: str | None = None
    kpi_fields: tuple[str, ...] = ("kpi", "kpis")


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        name="list_kpis", title="List KPIs",
        description="The KPI catalogue: every KPI's key, name, description, kind, unit, "
        "formula or measures, and whether higher is better. Start here to find the key of "
        "the KPI a question is about.",
        views=("catalogue:catalogue",), kpi_fields=("key",)),
    ToolSpec(
        name="explain_kpi", title="Explain a KPI",
        description="One KPI explained: its definition, the KPIs and measures it is built "
        "from, and the SQL it runs as (all time, no slices or filters).",
        views=("catalogue:explain_kpi",), kpi_fields=("key", "kpi", "depends_on")),
    ToolSpec(
        name="query_kpis", title="Query KPIs",
        description="Compute KPIs (the scorecard), optionally sliced (by rep, team, source, "
        "segment, product, pipeline) and by period (day, week, month, quarter, year), "
        "between two dates (from, to; inclusive; without them month to date, or range: "
        "mtd, wtd, qtd, ytd, last_month, all), filtered by where DIM=VALUE[,VALUE]. "
        "Rows per slice and period (partial: a period not over), totals and the average "
        "of the rows. Ratios carry numerator, denominator and a confidence interval. "
        "Paged: limit, offset.",
        views=("scorecard:scorecard",)),
    ToolSpec(
        name="funnel", title="Stage funnel",
        description="The stage funnel per pipeline: deals entering each stage, conversion, "
        "drop-off and time in stage, open pipeline as of a day; by=rep adds each rep's "
        "funnel against the team's, with leaks (stages a rep converts far worse).",
        views=("funnel:funnel",)),
    ToolSpec(
        name="comparison", title="Compare reps",
        description="Each rep against the team average on several KPIs (default: the "
        "standard sales set), marking values far from the average, with each rep's "
        "strengths and weaknesses. Sort by a KPI, filter reps by thresholds. Default: "
        "month to date.",
        views=("rankings:comparison",)),
    ToolSpec(
        name="leaderboard", title="Leaderboard",
        description="Reps ranked on one KPI, best first (default: month to date), with the "
        "rank change against the previous period (a month to date: the same days of the "
        "month before) or against=last_year.",
        views=("rankings:leaderboard",)),
    ToolSpec(
        name="list_contests", title="List contests",
        description="The sales contests the caller may see, latest first: each one's KPI or "
        "points formula, days, participants (reps or teams), how it ranks (value or share "
        "of each one's own target), status (upcoming, running, ended, closed) and, once "
        "closed, its winners. status=closed: the history. Paged: limit, offset.",
        views=("contests:contests",)),
    ToolSpec(
        name="contest_standings", title="Contest standings",
        description="One contest's standings (contest: its id from list_contests): each "
        "participant's place, score (the KPI's value, the points, or the share of target; "
        "a team's is the per-person average of its reps active in the period), winners, "
        "and the weekly head-to-head matches and records when the contest has them. Live "
        "while open, as kept when it was closed.",
        views=("contests:contest_standings",)),
    ToolSpec(
        name="plan_vs_actual", title="Plan vs actual",
        description="Targets against what was done, as of a day: per target (KPI and rep, "
        "team or company; a team's and the company's plan is the sum of their reps' "
        "unless set) the plan, the actual so far, attainment, expected by now and what "
        "each working day left needs (with the calls and meetings), and the projection "
        "with its range once a quarter of the working days have gone; furthest behind "
        "first.",
        views=("plans:plan_vs_actual",)),
    ToolSpec(
        name="reverse_plan", title="Reverse plan",
        description="From a goal for a period (goal: deals_won=N or revenue=AMOUNT) back to "
        "the deals, meetings and calls it takes, per period and per working day, at the "
        "rep's, team's or company's conversion rates (or rates given).",
        views=("plans:reverse_plan",)),
    ToolSpec(
        name="forecast", title="Revenue forecast",
        description="Forecast of revenue won in the current and next period (period: week, "
        "month, quarter, year): P10, P50 (median) and P90 per rep, team and company, from "
        "chances learned on the company's own stage history and a Monte Carlo of open and "
        "new deals; beside the reps' own commit and best case and the revenue plan; the "
        "deals that move the number most; the learned chance per stage and days in it "
        "beside the CRM's static probability. at: as it would have been made on a past day.",
        views=("forecast:forecast",)),
    ToolSpec(
        name="deal_win_chances", title="Win chance of each open deal",
        description="Every open deal with its learned chance to be won (with an 80% "
        "interval) and to be won within the current period, its expected contribution and "
        "swing, largest swing first. Paged: limit, offset.",
        views=("forecast:deal_chances",)),
    ToolSpec(
        name="forecast_backtest", title="Forecast backtest",
        description="Past periods replayed with only what was known at their start: "
        "accuracy (mean 1 - |A-F|/A), bias, share within ±10% and P10-P90 calibration of "
        "saleskpi's forecast, the weighted pipeline, the reps' commits and the naive "
        "run-rate, per company, team and rep, with sample sizes. Slow on big data: use "
        "last=N for the last N periods.",
        views=("forecast:backtest",)),
    ToolSpec(
        name="forecast_track_record", title="Forecast track record",
        description="The forecasts saleskpi made (kept each time one was asked) and the "
        "reps' own, for periods that have closed, scored: accuracy, bias and P10-P90 "
        "calibration per rep, team and company.",
        views=("forecast:track_record",)),
    ToolSpec(
        name="rows_behind", title="Rows behind a number",
        description="The fact rows (deals, leads, activities...) one KPI value was computed "
        "from, for the same dates and filters as query_kpis (rep: one rep's rows), newest "
        "first; for a ratio KPI, the rows of its numerator (default) or denominator (part). "
        "Counted, they are a count KPI's value. Derived KPIs have no rows of their own. "
        "Paged: limit (default 100), offset.",
        views=("drill:rows_behind",), kpi_fields=("kpi", "uses")),
    ToolSpec(
        name="bonus", title="Bonuses",
        description="Each rep's bonus under the workspace's bonus plans (bonus_plans.yaml) "
        "for the plans' month or quarter containing period (2026-09, 2026-Q3 or a day; "
        "default today, to date): per plan and rep the components, one-offs, total and "
        "whether a cap was hit; money as decimal strings in the plan's currency. "
        "lines=true adds how each was computed.",
        views=("bonus:bonuses",)),
    ToolSpec(
        name="bonus_explain", title="How a bonus was computed",
        description="One rep's bonus line by line, per plan: each tier slice of the "
        "attainment (or KPI value) with its rate and accelerator, the decelerator below "
        "the floor, caps and one-offs; the lines add up to the total.",
        views=("bonus:explain",)),
    ToolSpec(
        name="bonus_whatif", title="What the next bonus tier takes",
        description="For one rep, per plan: how much more of each KPI reaches the next "
        "tier, the accelerator, the end of the decelerator or a one-off, what the plan "
        "would pay then, and for deals won and revenue the calls and meetings each working "
        "day left needs (reverse planner, the rep's own conversion).",
        views=("bonus:whatif",)),
    ToolSpec(
        name="my_digest", title="My digest",
        description="The caller's daily or weekly digest, as the scheduled e-mail holds it: "
        "month to date and yesterday (weekly: the last 7 days) of their headline KPIs in "
        "their scope, each rep's month (head of sales, team lead), plan vs actual furthest "
        "behind first, and the alerts firing. at: the last day covered (default "
        "yesterday in the company's time zone).",
        views=("digests:digest",)),
    ToolSpec(
        name="alerts", title="Alerts",
        description="The alert rules (alerts.yaml: leads not contacted within their SLA in "
        "working hours, deals stuck in a stage, reps behind plan pace, KPI thresholds, "
        "stale data) and the alerts pending or firing now in the caller's scope, each with "
        "why it holds and a link; resolved: also those resolved lately.",
        views=("alerts:alerts",)),
    ToolSpec(
        name="alert_backtest", title="Alert backtest",
        description="How often an alert rule (a saved one by name, or a definition as in "
        "alerts.yaml) would have fired over past days (from, to; default last month) and "
        "on which leads, deals or reps, in the caller's scope.",
        views=("alert_backtest:backtest",)),
)


class ToolError(Exception):
    """A call the tool refuses: a stable ``code`` and a sentence for the assistant."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Tool:
    """A tool whose view exists: ready to list and to call."""

    spec: ToolSpec
    view: View
    params: type[BaseModel]
    answer: type[ViewModel] | None

    @property
    def name(self) -> str:
        return self.spec.name

    def input_schema(self) -> dict[str, Any]:
        schema = self.params.model_json_schema(by_alias=True)
        if issubclass(self.params, Paging):
            # The assistant gets a page unless it asks for more (the CLI prints it all).
            schema["properties"]["limit"]["default"] = DEFAULT_LIMIT
        return schema

    def output_schema(self) -> dict[str, Any] | None:
        if self.answer is None:
            return None
        schema = self.answer.model_json_schema(by_alias=True, mode="serialization")
        schema.setdefault("properties", {})["definitions"] = {
            "type": "object", "additionalProperties": {"type": "object"},
            "description": "The catalogue definition of every KPI the answer uses, by key.",
        }
        schema.setdefault("required", []).append("definitions")
        return schema

    def parse(self, arguments: dict[str, Any] | None) -> BaseModel:
        arguments = dict(arguments or {})
        unknown = sorted(set(arguments) - _accepted(self.params))
        if unknown:
            raise ToolError("bad_arguments", _("{tool} does not take {names}; it takes {known}",
                                               tool=self.name, names=", ".join(unknown),
                                               known=", ".join(sorted(_shown(self.params)))))
        if issubclass(self.params, Paging) and arguments.get("limit") is None:
            arguments["limit"] = DEFAULT_LIMIT
        try:
            return self.params.model_validate(arguments)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or self.name}: {e['msg']}"
                for e in exc.errors())
            raise ToolError("bad_arguments", _("invalid arguments: {problems}",
                                               problems=problems)) from None


def _accepted(model: type[BaseModel]) -> set[str]:
    """Every name an argument may have: the field's, its alias and its alias choices."""
    names: set[str] = set()
    for name, field in model.model_fields.items():
        names.update(n for n in (name, field.alias) if n)
        choices = field.validation_alias
        if isinstance(choices, str):
            names.add(choices)
        elif isinstance(choices, AliasChoices):
            names.update(c for c in choices.choices if isinstance(c, str))
    return names


def _shown(model: type[BaseModel]) -> set[str]:
    """The names the input schema shows."""
    return set(model.model_json_schema(by_alias=True).get("properties", {}))


def _resolve(spec: ToolSpec) -> Tool | None:
    for candidate in spec.views:
        module_name, _sep, function = candidate.partition(":")
        qualified = f"saleskpi.views.{module_name}"
        try:
            module = importlib.import_module(qualified)
        except ModuleNotFoundError as exc:
            if exc.name == qualified:
                continue  # this view is not there (yet)
            raise
        view = getattr(module, function, None)
        if view is None:
            continue
        hints = typing.get_type_hints(view)
        params_name = list(inspect.signature(view).parameters)[2]
        answer = hints.get("return")
        return Tool(spec=spec, view=view, params=hints[params_name],
                    answer=answer if isinstance(answer, type) and issubclass(answer, ViewModel)
                    else None)
    return None


def available_tools(specs: tuple[ToolSpec, ...] = TOOLS) -> dict[str, Tool]:
    """The tools whose views exist, by name, in the order of ``specs``."""
    found = {}
    for spec in specs:
        tool = _resolve(spec)
        if tool is None:
            log.info("MCP tool %s skipped: its view is not available", spec.name)
        else:
            found[spec.name] = tool
    return found


def used_kpis(params: BaseModel, data: Any, fields: tuple[str, ...] = ("kpi", "kpis")
              ) -> list[str]:
    """What ``fields`` name, in the arguments and anywhere in the answer's JSON."""
    keys: list[str] = []

    def take(value: Any) -> None:
        if isinstance(value, str):
            keys.append(value)
        elif isinstance(value, list):
            keys.extend(v for v in value if isinstance(v, str))

    for attr in fields:
        take(getattr(params, attr, None))

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in fields:
                    take(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(data)
    return keys


def call(tool: Tool, service: SalesKpiService, caller: Principal,
         arguments: dict[str, Any] | None) -> dict[str, Any]:
    """Run ``tool`` as ``caller``: the view's JSON and ``definitions``.

    Runs in the caller's language. Raises ``ToolError`` for the arguments and
    ``SalesKpiError`` from the view; the server turns both into a tool error.
    """
    set_language(resolve_language(caller.lang))
    params = tool.parse(arguments)
    data = tool.view(service, caller, params).to_json()
    used = used_kpis(params, data, tool.spec.kpi_fields)
    data["definitions"] = definitions(service.catalog, used)
    return data


def error_text(exc: ToolError | SalesKpiError) -> str:
    """What the assistant reads for a refused call: the code, then the sentence."""
    return f"{exc.code}: {exc.message}"
