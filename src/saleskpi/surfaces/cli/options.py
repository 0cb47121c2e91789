"""Options several commands share, declared once so they read and check the same."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from saleskpi.domain.query import MAX_ID

DATE = ["%Y-%m-%d"]

PeriodOption = Annotated[
    str, typer.Option("--period", "-p", help="day, week, month, quarter, year or all.")
]
FromOption = Annotated[
    dt.datetime | None, typer.Option("--from", formats=DATE, help="First day (YYYY-MM-DD).")
]
ToOption = Annotated[
    dt.datetime | None,
    typer.Option("--to", formats=DATE, help="Last day, inclusive (YYYY-MM-DD)."),
]
WhereOption = Annotated[
    list[str] | None,
    typer.Option("--where", help="Filter DIM=VALUE[,VALUE]; repeatable, e.g. team=London, "
                 "'product=Training day' (a rep or product by id or name)."),
]
# --rep and --team: what a head of sales types first ("kpi revenue --team North"),
# short for the --where filters they become, so every surface gets the same question.
RepOption = Annotated[
    str | None,
    typer.Option("--rep", help="Only this rep (an id or a name): short for --where rep=REP."),
]
TeamOption = Annotated[
    str | None,
    typer.Option("--team", help="Only this team (several: A,B): short for --where team=TEAM."),
]
RangeOption = Annotated[
    str | None,
    typer.Option("--range", "-r", help="Without --from/--to: mtd (month to date, the "
                 "default), wtd, qtd, ytd, last_month or all (the default with --period)."),
]
AgainstOption = Annotated[
    str, typer.Option("--against", help="Compare with the previous period (a month to "
                      "date: the same days of the month before) or last_year.")
]
LimitOption = Annotated[
    int | None, typer.Option("--limit", min=1, help="Show at most this many rows (default: all).")
]
OffsetOption = Annotated[int, typer.Option("--offset", min=0, max=MAX_ID,
                                            help="Skip this many rows first.")]


def day(value: dt.datetime | None) -> dt.date | None:
    """A ``--from``/``--to`` value (Click reads dates as datetimes) as a date."""
    return value.date() if value else None


def with_filters(where: list[str] | None, *, rep: str | None = None,
                 team: str | None = None) -> list[str]:
    """``--where`` with ``--rep`` and ``--team`` added as the filters they stand for."""
    found = list(where or [])
    found += [f"rep={rep}"] if rep is not None else []
    found += [f"team={team}"] if team is not None else []
    return found
