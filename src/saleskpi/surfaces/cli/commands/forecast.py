"""The forecast: P10/P50/P90 per rep, team and company; the backtest; the track record."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any

import typer

from saleskpi.domain.i18n import _
from saleskpi.domain.query import MAX_ID
from saleskpi.surfaces.cli.app import Format, app, out, service, write, write_csv
from saleskpi.surfaces.cli.options import DATE

if TYPE_CHECKING:
    from rich.table import Table

forecast_app = typer.Typer(
    help="A forecast learned from your own history, with P10/P50/P90.\n\n"
         "Example: saleskpi forecast --by team --period quarter",
    invoke_without_command=True,
)
app.add_typer(forecast_app, name="forecast")

PeriodArg = Annotated[
    str, typer.Option("--period", "-p", help="week, month, quarter or year: the current one "
                      "and the next.")
]
SeedArg = Annotated[
    int, typer.Option("--seed", min=0, max=MAX_ID, help="Random seed: the same seed and data "
                      "give the same numbers.")
]
FormatArg = Annotated[Format, typer.Option("--format", "-f")]


@forecast_app.callback()
def forecast_command(
    ctx: typer.Context,
    by: Annotated[str, typer.Option("--by", "-b", help="rep (reps, teams, company) or team "
                                    "(teams and company).")] = "rep",
    period: PeriodArg = "month",
    at: Annotated[
        dt.datetime | None,
        typer.Option("--at", formats=DATE, help="As it would have been made at the end of "
                     "this past day (YYYY-MM-DD)."),
    ] = None,
    rep: Annotated[str | None, typer.Option("--rep", help="Only this rep (id or name).")] = None,
    team: Annotated[str | None, typer.Option("--team", help="Only this team.")] = None,
    simulations: Annotated[int, typer.Option("--simulations", min=100,
                                             help="Simulated futures.")] = 1000,
    seed: SeedArg = 15,
    deals: Annotated[int, typer.Option("--deals", min=0, help="List this many of the deals "
                                       "that move the number most.")] = 10,
    stages: Annotated[bool, typer.Option("--stages", help="Also show the learned chances "
                                         "per stage and age beside the CRM's.")] = False,
    format: FormatArg = Format.table,
) -> None:
    """Forecast revenue won in the current and next period: P10, P50 (median) and P90.

    Open deals are simulated with chances learned from your stage history (per stage
    and days in it, per rep shrunk toward the team), and new deals from the recent
    run-rate. Every forecast is kept, to be scored when its period closes
    ('saleskpi forecast track').

    Example: saleskpi forecast --by rep --period month --format json
    """
    if ctx.invoked_subcommand is not None:
        return
    from saleskpi.views.base import LOCAL
    from saleskpi.views.forecast import ForecastParams, forecast

    view = forecast(service(), LOCAL, ForecastParams(
        period=period, at=at.date() if at else None, by=by, rep=rep, team=team,
        simulations=simulations, seed=seed, deals=deals))
    if _emitted(format, view.to_json(), view.lines, _LINE_COLUMNS):
        return
    data = view.to_json()
    out.print(_lines_table(data))
    if data["deals"]:
        out.print(_deals_table(data, _("Deals that move {start} – {end} most",
                                      start=data["periods"][0]["start"],
                                      end=data["periods"][0]["end"])))
    if stages:
        for table in _stage_tables(data):
            out.print(table)


@forecast_app.command("deals")
def deals_command(
    period: PeriodArg = "month",
    rep: Annotated[str | None, typer.Option("--rep", help="Only this rep (id or name).")] = None,
    team: Annotated[str | None, typer.Option("--team", help="Only this team.")] = None,
    seed: SeedArg = 15,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most this many "
                                              "deals.")] = None,
    offset: Annotated[int, typer.Option("--offset", min=0, help="Skip this many.")] = 0,
    format: FormatArg = Format.table,
) -> None:
    """Every open deal with its learned chance to be won, this period and at all.

    Example: saleskpi forecast deals --rep "Moses Frase" --format csv
    """
    from saleskpi.views.base import LOCAL
    from saleskpi.views.forecast import DealChancesParams, deal_chances

    view = deal_chances(service(), LOCAL, DealChancesParams(
        period=period, rep=rep, team=team, seed=seed, limit=limit, offset=offset))
    if _emitted(format, view.to_json(), view.deals, _DEAL_COLUMNS):
        return
    out.print(_deals_table(view.to_json(), _("Open deals and their chances")))


@forecast_app.command("backtest")
def backtest_command(
    period: PeriodArg = "month",
    simulations: Annotated[int, typer.Option("--simulations", min=100,
                                             help="Simulated futures per period.")] = 500,
    seed: SeedArg = 15,
    last: Annotated[int | None, typer.Option("--last", min=1, help="Only the last N "
                                             "periods.")] = None,
    format: FormatArg = Format.table,
) -> None:
    """Replay past periods with only what was known at their start, and score each method.

    Methods: ours (P50, with P10-P90 calibration), the weighted pipeline, the reps'
    commits (where the forecasts entity has them) and the naive run-rate.

    Example: saleskpi forecast backtest --period month --format json
    """
    from saleskpi.views.base import LOCAL
    from saleskpi.views.forecast import BacktestParams, backtest

    view = backtest(service(), LOCAL, BacktestParams(period=period, simulations=simulations,
                                                     seed=seed, last=last))
    if _emitted(format, view.to_json(), view.scores, _SCORE_COLUMNS):
        return
    periods = view.periods
    span = f"{periods[0]['start']} – {periods[-1]['end']}" if periods else "—"
    out.print(_scores_table(view.scores, _("Backtest: {count} periods ({span})",
                                           count=len(periods), span=span)))


@forecast_app.command("track")
def track_command(format: FormatArg = Format.table) -> None:
    """The forecasts made (ours, and the reps' own) of closed periods, scored.

    Example: saleskpi forecast track --format json
    """
    from saleskpi.views.base import LOCAL
    from saleskpi.views.forecast import TrackRecordParams, track_record

    view = track_record(service(), LOCAL, TrackRecordParams())
    if _emitted(format, view.to_json(), view.rows, _ROW_COLUMNS):
        return
    if not view.rows:
        out.print(_("No forecast of a closed period yet: forecasts are kept each time one is "
                    "made and scored once their period ends."))
        return
    out.print(_scores_table(view.scores, _("Track record")))


# -- rendering ---------------------------------------------------------------------------
def _emitted(format: Format, data: dict[str, Any], rows: list[dict[str, Any]],
             columns: tuple[str, ...]) -> bool:
    """Print the JSON or the CSV of ``rows`` if asked; False: the caller draws a table."""
    if format is Format.json:
        from saleskpi.views.text import to_json

        write(to_json(data))
        return True
    if format is Format.csv:
        write_csv(_csv(rows, columns))
        return True
    return False


_LINE_COLUMNS = ("level", "rep", "rep_name", "team", "period_start", "period_end",
                 "won_to_date", "from_open", "from_new", "p10", "p50", "p90", "mean",
                 "open_deals", "commit", "best_case", "plan")
_DEAL_COLUMNS = ("source", "id", "rep", "pipeline", "stage", "age_days", "amount",
                 "crm_probability", "p_win", "p_low", "p_high", "p_this_period", "expected",
                 "swing")
_SCORE_COLUMNS = ("method", "level", "periods", "accuracy", "bias", "within_10",
                  "calibration")
_ROW_COLUMNS = ("method", "level", "rep", "team", "period_start", "period_end", "made_at",
                "forecast", "actual", "p10", "p90")


def _csv(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    from saleskpi.surfaces.cli.output_csv import records_csv

    return records_csv(rows, columns)


def _money(value: Any) -> str:
    from saleskpi.views.text import format_value

    return "—" if value is None else format_value(value, "money")


def _percent(value: Any) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _who(line: dict[str, Any]) -> str:
    if line["level"] == "rep":
        return str(line["rep_name"] or line["rep"])
    if line["level"] == "team":
        return _("team {team}", team=line["team"])
    return _("company")


def _lines_table(data: dict[str, Any]) -> Table:
    from rich.table import Table

    table = Table(title=_("Forecast of revenue won, {currency} (as of {at} UTC)",
                          currency=data["currency"], at=data["as_of"]), header_style="bold")
    table.add_column(_("Period"), no_wrap=True)
    table.add_column(_("For"))
    for title in (_("Won so far"), _("P10"), _("P50"), _("P90"), _("Commit"),
                  _("Best case"), _("Plan"), _("Open deals")):
        table.add_column(title, justify="right")
    current = None
    for line in data["lines"]:
        if current is not None and line["period_start"] != current:
            table.add_section()
        current = line["period_start"]
        table.add_row(f"{line['period_start']} – {line['period_end']}", _who(line),
                      _money(line["won_to_date"]), _money(line["p10"]), _money(line["p50"]),
                      _money(line["p90"]), _money(line["commit"]), _money(line["best_case"]),
                      _money(line["plan"]), str(line["open_deals"] or ""),
                      style="bold" if line["level"] != "rep" else None)
    table.caption = _("P10-P90: the revenue falls inside this range in 8 of 10 simulated "
                      "futures; P50 is the median. {count} futures, seed {seed}.",
                      count=data["simulations"], seed=data["seed"])
    return table


def _deals_table(data: dict[str, Any], title: str) -> Table:
    from rich.table import Table

    table = Table(title=title, header_style="bold")
    for header in (_("Deal"), _("Rep"), _("Stage"), _("Days in stage"), _("Amount"),
                   _("CRM chance"), _("Learned chance"), _("Won this period"),
                   _("Expected"), _("Swing")):
        table.add_column(header, justify="left" if header in (_("Deal"), _("Rep"),
                                                              _("Stage")) else "right")
    for deal in data["deals"]:
        learned = f"{_percent(deal['p_win'])} ({_percent(deal['p_low'])}–" \
                  f"{_percent(deal['p_high'])})"
        table.add_row(str(deal["id"]), str(deal.get("rep_name") or deal["rep"]),
                      str(deal["stage"]),
                      f"{deal['age_days']:.0f}",
                      _money(deal["amount"]) if deal["amount"] is not None else _("unknown"),
                      _percent(deal["crm_probability"]), learned,
                      _percent(deal["p_this_period"]), _money(deal["expected"]),
                      _money(deal["swing"]))
    table.caption = _("Swing: how much a deal moves this period's total (its standard "
                      "deviation over the simulated futures). An unknown amount is drawn from "
                      "the won amounts.")
    return table


def _stage_tables(data: dict[str, Any]) -> list[Table]:
    from rich.table import Table

    tables = []
    for stage in data["stages"]:
        table = Table(title=_("Pipeline {pipeline}, stage {stage}: learned chance to win vs "
                              "the CRM's", pipeline=stage["pipeline"] or "—",
                              stage=stage["stage"]), header_style="bold")
        table.add_column(_("For"))
        for bucket in data["age_buckets"]:
            table.add_column(_("{days} days", days=bucket), justify="right")
        names = {b["rep"]: b.get("rep_name") or b["rep"] for b in stage["learned"]}
        for who, name in names.items():
            cells = [f"{_percent(b['p'])} ({_percent(b['low'])}–{_percent(b['high'])}) "
                     f"n={b['trials']}" for b in stage["learned"] if b["rep"] == who]
            table.add_row(name or _("team"), *cells)
        table.caption = _("CRM probability: {crm}; stage win rate: {rate} of {closed} "
                          "closed; median days to a win: {days}.",
                          crm=_percent(stage["crm_probability"]),
                          rate=_percent(stage["stage_win_rate"]), closed=stage["closed"],
                          days=stage["median_days_to_won"] if stage["median_days_to_won"]
                          is not None else "—")
        tables.append(table)
    return tables


def _scores_table(scores: list[dict[str, Any]], title: str) -> Table:
    from rich.table import Table

    names = {"ours": _("saleskpi (P50)"), "weighted_pipeline": _("weighted pipeline"),
             "commit": _("reps' commit"), "best_case": _("reps' best case"),
             "pipeline": _("reps' pipeline"), "run_rate": _("run-rate")}
    levels = {"company": _("company"), "team": _("teams"), "rep": _("reps")}
    table = Table(title=title, header_style="bold")
    table.add_column(_("Level"))
    table.add_column(_("Method"))
    for header in (_("Forecasts"), _("Accuracy"), _("Bias"), _("Within ±10%"),
                   _("In P10–P90")):
        table.add_column(header, justify="right")
    for row in scores:
        table.add_row(levels.get(row["level"], row["level"]),
                      names.get(row["method"], row["method"]), str(row["periods"]),
                      _percent(row["accuracy"]),
                      "—" if row["bias"] is None else f"{row['bias'] * 100:+.1f}%",
                      _percent(row["within_10"]), _percent(row["calibration"]))
    table.caption = _("Accuracy: mean of 1 − |actual − forecast| / actual. Bias: (Σ forecast "
                      "− Σ actual) / Σ actual, above 0 is too high. In P10–P90: share of "
                      "actuals inside the band (about 80 % when the band is honest).")
    return table
