"""The forecast page: a fan chart per period with the plan line, the lines per rep, team
and company, the deals that move the number, the learned chances, the track record."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from saleskpi.domain.errors import SalesKpiError
from saleskpi.surfaces.web.charts import Chart, Point, column_chart
from saleskpi.surfaces.web.deps import Page, PageDep
from saleskpi.surfaces.web.errors import PageError
from saleskpi.surfaces.web.http import WebRoute
from saleskpi.surfaces.web.i18n import _
from saleskpi.surfaces.web.tables import Cell, Column, DataTable, Row, number_cell, text_cell
from saleskpi.surfaces.web.views import rep_href
from saleskpi.views.forecast import (
    ForecastParams,
    TrackRecordParams,
    forecast,
    track_record,
)

router = APIRouter(route_class=WebRoute)
GRAINS = ("week", "month", "quarter", "year")


def _who(line: dict[str, Any]) -> str:
    if line["level"] == "rep":
        return str(line["rep_name"] or line["rep"])
    if line["level"] == "team":
        return _("Team {team}", team=line["team"])
    return _("Company")


def fan_chart(page: Page, line: dict[str, Any], as_of: str) -> Chart:
    """Revenue won in the period, cumulative: 0 at its start, what is won so far now,
    P10-P90 (band) and P50 (line) at its end; the plan as a dashed line."""
    money = page.currency
    start, end = line["period_start"], line["period_end"]
    today = as_of[:10]
    if start <= today <= end:
        steps = [(start, 0.0, 0.0, 0.0), (today, line["won_to_date"], line["won_to_date"],
                                          line["won_to_date"])]
    else:
        steps = [(start, 0.0, 0.0, 0.0)]
    steps.append((end, line["p50"], line["p10"], line["p90"]))
    points = [Point(label, value, page.fmt.money(value, money), low, high)
              for label, value, low, high in steps]
    plan = line["plan"]
    reference: list[float | None] = []
    if plan is not None:
        # From nothing at the start to the plan at the end: a straight dashed line.
        reference = [0.0, *([None] * (len(steps) - 2)), plan]
    title = _("{start} – {end}: P10–P90 and P50", start=start, end=end)
    chart = column_chart(title, points, lambda v: page.fmt.money(v, money), kind="line",
                         reference=reference)
    if line["level"] == "company":
        chart.title = _("Company") + ", " + title
    else:  # a rep's or a team's name: the data's own word, never translated
        chart.subject = _who(line)
    return chart


def lines_table(page: Page, lines: list[dict[str, Any]]) -> DataTable:
    money = page.currency
    columns = [Column("who", _("For")), Column("period", _("Period")),
               *(Column(key, label, numeric=True, unit=money) for key, label in (
                   ("won_to_date", _("Won so far")), ("p10", "P10"), ("p50", "P50"),
                   ("p90", "P90"), ("commit", _("Commit")), ("best_case", _("Best case")),
                   ("plan", _("Plan")))),
               Column("open_deals", _("Open deals"), numeric=True, unit="count")]
    rows = []
    for line in lines:
        # A rep's or a team's name is the data's own word: never translated.
        who = text_cell(_who(line), href=rep_href(line["rep"]) if line["rep"] else None,
                        rep=line["rep"], verbatim=line["level"] != "company")
        cells = [who, text_cell(f"{line['period_start']} – {line['period_end']}")]
        cells += [number_cell(line[k], money, page.fmt) for k in (
            "won_to_date", "p10", "p50", "p90", "commit", "best_case", "plan")]
        cells.append(number_cell(line["open_deals"], "count", page.fmt))
        rows.append(Row(cells, kind="total" if line["level"] != "rep" else "item",
                        rep=line["rep"]))
    note = _("P10–P90: revenue falls in this range in 8 of 10 simulated futures; P50 is the "
             "median. Commit and best case: the reps' own forecasts.")
    return DataTable("forecast", _("Forecast of revenue won"), columns, rows, note=note)


def deals_table(page: Page, deals: list[dict[str, Any]]) -> DataTable:
    money = page.currency
    columns = [Column("deal", _("Deal")), Column("rep", _("Rep")), Column("stage", _("Stage")),
               Column("age_days", _("Days in stage"), numeric=True, unit="days"),
               Column("amount", _("Amount"), numeric=True, unit=money),
               Column("crm_probability", _("CRM chance"), numeric=True, unit="ratio"),
               Column("p_win", _("Learned chance"), numeric=True, unit="ratio"),
               Column("p_this_period", _("Won this period"), numeric=True, unit="ratio"),
               Column("expected", _("Expected"), numeric=True, unit=money),
               Column("swing", _("Swing"), numeric=True, unit=money)]
    rows = []
    for deal in deals:
        chance = Cell(deal["p_win"], page.fmt.percent(deal["p_win"]), unit="ratio",
                      note=f"{page.fmt.percent(deal['p_low'])}–"
                           f"{page.fmt.percent(deal['p_high'])}")
        rows.append(Row([
            text_cell(str(deal["id"]), verbatim=True),
            text_cell(deal.get("rep_name") or deal["rep"], href=rep_href(deal["rep"]),
                      rep=deal["rep"], verbatim=True),
            text_cell(deal["stage"], verbatim=True),
            number_cell(deal["age_days"], "days", page.fmt),
            number_cell(deal["amount"], money, page.fmt),
            number_cell(deal["crm_probability"], "ratio", page.fmt), chance,
            number_cell(deal["p_this_period"], "ratio", page.fmt),
            number_cell(deal["expected"], money, page.fmt),
            number_cell(deal["swing"], money, page.fmt)], rep=deal["rep"]))
    note = _("Swing: how much a deal moves this period's total (its standard deviation over "
             "the simulated futures). An unknown amount is drawn from the won amounts.")
    return DataTable("forecast_deals", _("Deals that move the number most"), columns, rows,
                     note=note)


def stages_table(page: Page, stages: list[dict[str, Any]], buckets: list[str]) -> DataTable:
    columns = [Column("stage", _("Stage")), Column("for", _("For")),
               Column("crm_probability", _("CRM chance"), numeric=True, unit="ratio"),
               Column("stage_win_rate", _("Stage win rate"), numeric=True, unit="ratio"),
               *(Column(f"age_{b}", _("{days} days", days=b), numeric=True, unit="ratio")
                 for b in buckets)]
    rows = []
    for stage in stages:
        names = {b["rep"]: b.get("rep_name") or b["rep"] for b in stage["learned"]}
        for who in names:
            learned = [b for b in stage["learned"] if b["rep"] == who]
            cells = [text_cell(f"{stage['pipeline'] or '—'} · {stage['stage']}", verbatim=True),
                     text_cell(names[who], rep=who, verbatim=True) if who
                     else text_cell(_("team")),
                     number_cell(stage["crm_probability"], "ratio", page.fmt),
                     number_cell(stage["stage_win_rate"], "ratio", page.fmt)]
            cells += [Cell(b["p"], page.fmt.percent(b["p"]), unit="ratio",
                           note=f"{page.fmt.percent(b['low'])}–{page.fmt.percent(b['high'])}"
                                f" · n={page.fmt.integer(b['trials'])}") for b in learned]
            rows.append(Row(cells))
    note = _("Learned: the chance that a deal this many days in the stage is won, with its "
             "80% interval and the deals it is learned from; a rep's is shrunk toward the "
             "team's.")
    return DataTable("forecast_stages", _("Learned chances beside the CRM's"), columns, rows,
                     note=note)


def track_table(page: Page, scores: list[dict[str, Any]]) -> DataTable:
    names = {"ours": _("saleskpi (P50)"), "commit": _("reps' commit"),
             "best_case": _("reps' best case"), "pipeline": _("reps' pipeline")}
    levels = {"company": _("company"), "team": _("teams"), "rep": _("reps")}
    columns = [Column("level", _("Level")), Column("method", _("Method")),
               Column("periods", _("Forecasts"), numeric=True, unit="count"),
               Column("accuracy", _("Accuracy"), numeric=True, unit="ratio"),
               Column("bias", _("Bias"), numeric=True, unit="ratio"),
               Column("calibration", _("In P10–P90"), numeric=True, unit="ratio")]
    rows = [Row([text_cell(levels.get(s["level"], s["level"])),
                 text_cell(names.get(s["method"], s["method"])),
                 number_cell(s["periods"], "count", page.fmt),
                 number_cell(s["accuracy"], "ratio", page.fmt),
                 number_cell(s["bias"], "ratio", page.fmt),
                 number_cell(s["calibration"], "ratio", page.fmt)]) for s in scores]
    note = _("Closed periods only. Accuracy: 1 − |actual − forecast| / actual; bias above 0: "
             "forecasts too high; in P10–P90: about 80% when the band is honest.")
    return DataTable("forecast_track", _("Track record"), columns, rows, note=note)


@router.get("/forecast")
def forecast_page(page: PageDep, period: str = "month", by: str = "rep",
                  at: str | None = None) -> Response:
    try:
        day = dt.date.fromisoformat(at) if at else None
    except ValueError:
        raise PageError(400, _("{day!r} is not a date (YYYY-MM-DD)", day=at)) from None
    try:
        view = forecast(page.service, page.user, ForecastParams(period=period, by=by, at=day))
        record = track_record(page.service, page.user, TrackRecordParams())
    except SalesKpiError as exc:
        raise PageError(400, exc.message) from None
    data = view.to_json()
    # One fan per period: the company's (else the team's, else the rep's own).
    rank = {"company": 0, "team": 1, "rep": 2}
    shown: dict[str, dict[str, Any]] = {}
    for line in sorted(data["lines"], key=lambda ln: rank[ln["level"]]):
        shown.setdefault(line["period_start"], line)
    charts = [fan_chart(page, line, data["as_of"]) for line in shown.values()]
    tables = [lines_table(page, data["lines"]), deals_table(page, data["deals"]),
              stages_table(page, data["stages"], data["age_buckets"]),
              track_table(page, record.to_json()["scores"])]
    return page.render("forecast.html", tables=tables, blocks=tables, charts=charts, data=data,
                       grains=GRAINS, period=period, by=by, at=at or "",
                       title=_("Forecast"))
