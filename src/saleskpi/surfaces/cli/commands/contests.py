"""Contests: create, list, standings, close, history (``saleskpi contest ...``)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from saleskpi.domain.i18n import _
from saleskpi.surfaces.cli.app import Format, app, fail, out, service, write, write_csv
from saleskpi.surfaces.cli.options import FromOption, LimitOption, OffsetOption, ToOption, day

if TYPE_CHECKING:
    from saleskpi.views.contests import ContestSummary, ContestsView, ContestView, StandingsView

contest_app = typer.Typer(
    help="Sales contests: a KPI or a points formula over a period, between reps or teams, "
         "with live standings; closing one keeps its winners.\n\n"
         "Example: saleskpi contest create \"March calls\" --kpi calls --from 2024-03-01 "
         "--to 2024-03-31 --team North --team South",
    no_args_is_help=True,
)
app.add_typer(contest_app, name="contest")
FormatOption = Annotated[Format, typer.Option("--format", "-f", help="table, json or csv.")]
IdArgument = Annotated[int, typer.Argument(min=1, help="The contest's id; see 'saleskpi "
                                           "contest list'.")]


@contest_app.command("create")
def contest_create(
    name: Annotated[str | None, typer.Argument(help="The contest's name.")] = None,
    kpi: Annotated[str | None, typer.Option("--kpi", help="The KPI ranked; see 'saleskpi "
                                            "kpis'.")] = None,
    points: Annotated[list[str] | None, typer.Option(
        "--points", help="Points per unit of a KPI that adds up, KPI=POINTS; repeatable "
        "(instead of --kpi), e.g. --points calls=1 --points meetings=5.")] = None,
    start: FromOption = None,
    end: ToOption = None,
    reps: Annotated[list[str] | None, typer.Option(
        "--rep", help="A rep taking part (id or name); repeatable.")] = None,
    teams: Annotated[list[str] | None, typer.Option(
        "--team", help="A team taking part (ranked by per-person averages); repeatable.")]
    = None,
    rank_by: Annotated[str | None, typer.Option(
        "--rank-by", help="value (default), or target: the share of each one's own "
        "target.")] = None,
    tie: Annotated[str | None, typer.Option(
        "--tie", help="shared (default: tied share a place), or kpi:KEY (the better KEY "
        "breaks a tie), e.g. kpi:revenue.")] = None,
    head_to_head: Annotated[bool | None, typer.Option(
        "--head-to-head/--no-head-to-head", help="Weekly pairs by round robin.")] = None,
    winners: Annotated[int | None, typer.Option(
        "--winners", min=1, help="Places that win (default 1; a tie at the last wins too).")]
    = None,
    description: Annotated[str | None, typer.Option("--description", help="What it is "
                                                    "about, the prize.")] = None,
    file: Annotated[Path | None, typer.Option(
        "--file", help="A YAML file with the contest (name, kpi or points, start, end, "
        "participants, members, rank_by, tie_rule, head_to_head, winners); options given "
        "as well replace its fields.")] = None,
    format: FormatOption = Format.table,
) -> None:
    """Create a contest (the participants and KPIs must exist).

    Examples:
      saleskpi contest create "Call sprint" --kpi calls --from 2024-03-04 --to 2024-03-17 --rep a1 --rep b1 --rep c1
      saleskpi contest create "Points" --points calls=1 --points meetings=5 --points deals_won=20 --from 2024-03-01 --to 2024-03-31 --team North --team South --head-to-head
      saleskpi contest create "March plan" --kpi revenue --rank-by target --from 2024-03-01 --to 2024-03-31 --rep a1 --rep b1 --tie kpi:deals_won
      saleskpi contest create --file contest.yaml
    """  # noqa: E501
    from saleskpi.domain.contests import parse_definition, parse_points
    from saleskpi.views.base import LOCAL
    from saleskpi.views.contests import create_contest

    data: dict[str, Any] = _read_file(file) if file is not None else {}
    given: dict[str, Any] = {
        "name": name, "kpi": kpi, "start": day(start), "end": day(end), "rank_by": rank_by,
        "tie_rule": tie, "head_to_head": head_to_head, "winners": winners,
        "description": description}
    data |= {key: value for key, value in given.items() if value is not None}
    if points:
        data["points"] = [r.model_dump() for r in parse_points(points)]
    if reps and teams:
        raise fail(_("give --rep or --team, not both: a contest is between reps or between "
                     "teams"))
    if reps or teams:
        data["participants"] = "teams" if teams else "reps"
        data["members"] = list(teams or reps or [])
    if not data.get("name"):
        raise fail(_("give the contest a name (or --file)"))
    view = create_contest(service(), LOCAL, parse_definition(data))
    if format is Format.json:
        from saleskpi.views.text import to_json

        write(to_json(view.to_json()))
        return
    if format is Format.csv:
        write_csv(_contests_csv([view.contest]))
        return
    out.print(_("Contest {id} created: {name}.", id=view.contest.id, name=view.contest.name),
              highlight=False)
    out.print(_("See the standings: saleskpi contest standings {id}", id=view.contest.id),
              style="dim", highlight=False)


def _read_file(path: Path) -> dict[str, Any]:
    import yaml

    try:
        found = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise fail(_("cannot read {path}: {reason}", path=str(path),
                     reason=exc.strerror or str(exc))) from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise fail(_("{path} is not valid YAML: {reason}", path=str(path),
                     reason=str(exc).splitlines()[0])) from None
    if not isinstance(found, dict):
        raise fail(_("{path}: write the contest as YAML fields (name: ..., kpi: ..., "
                     "start: ..., end: ..., members: [...])", path=str(path)))
    return found


@contest_app.command("list")
def contest_list(
    status: Annotated[str, typer.Option("--status", help="all, open or closed.")] = "all",
    limit: LimitOption = None,
    offset: OffsetOption = 0,
    format: FormatOption = Format.table,
) -> None:
    """List contests, the latest first, with their status and winners.

    Example: saleskpi contest list --status open
    """
    from saleskpi.views.base import LOCAL
    from saleskpi.views.contests import ContestsParams, contests

    if status not in ("all", "open", "closed"):
        raise fail(_("--status takes all, open or closed, got {status!r}", status=status))
    view = contests(service(), LOCAL, ContestsParams(status=status, limit=limit,  # type: ignore[arg-type]
                                                     offset=offset))
    _print_contests(view, format)


@contest_app.command("history")
def contest_history(
    limit: LimitOption = None,
    offset: OffsetOption = 0,
    format: FormatOption = Format.table,
) -> None:
    """Closed contests and their winners, as kept when each was closed.

    Example: saleskpi contest history --format csv
    """
    from saleskpi.views.base import LOCAL
    from saleskpi.views.contests import ContestsParams, contests

    view = contests(service(), LOCAL, ContestsParams(status="closed", limit=limit,
                                                     offset=offset))
    _print_contests(view, format)


@contest_app.command("standings")
def contest_standings(contest: IdArgument, format: FormatOption = Format.table) -> None:
    """A contest's standings: live while it runs, as kept once closed.

    Example: saleskpi contest standings 3 --format json
    """
    from saleskpi.views.base import LOCAL
    from saleskpi.views.contests import ContestParams
    from saleskpi.views.contests import contest_standings as standings_view

    _print_standings(standings_view(service(), LOCAL, ContestParams(contest=contest)), format)


@contest_app.command("close")
def contest_close(
    contest: IdArgument,
    early: Annotated[bool, typer.Option("--early", help="Close before its last day is over: "
                                        "the standings so far become final.")] = False,
    format: FormatOption = Format.table,
) -> None:
    """Close a contest: its final standings and winners are kept as they are now.

    Example: saleskpi contest close 3
    """
    from saleskpi.views.base import LOCAL
    from saleskpi.views.contests import CloseContestParams, close_contest

    view = close_contest(service(), LOCAL, CloseContestParams(contest=contest, early=early))
    _print_standings(view, format)


@contest_app.command("edit")
def contest_edit(
    contest: IdArgument,
    name: Annotated[str | None, typer.Option("--name", help="A new name.")] = None,
    description: Annotated[str | None, typer.Option("--description", help="A new "
                                                    "description.")] = None,
    start: FromOption = None,
    end: ToOption = None,
    winners: Annotated[int | None, typer.Option("--winners", min=1, help="Places that "
                                                "win.")] = None,
    format: FormatOption = Format.table,
) -> None:
    """Change a contest still open: its name, description, days or winners.

    Example: saleskpi contest edit 3 --to 2024-03-24 --name "Call sprint (extended)"
    """
    from saleskpi.views.base import LOCAL
    from saleskpi.views.contests import ContestChanges, EditContestParams, edit_contest

    given = {"name": name, "description": description, "start": day(start), "end": day(end),
             "winners": winners}
    changes = {key: value for key, value in given.items() if value is not None}
    if not changes:
        raise fail(_("say what to change: --name, --description, --from, --to or --winners"))
    view = edit_contest(service(), LOCAL, EditContestParams(
        contest=contest, changes=ContestChanges.model_validate(changes)))
    _print_contest(view, format, _("Contest {id} changed: {name}, {start} – {end}.",
                                   id=view.contest.id, name=view.contest.name,
                                   start=view.contest.start, end=view.contest.end))


@contest_app.command("delete")
def contest_delete(
    contest: IdArgument,
    yes: Annotated[bool, typer.Option("--yes", help="Delete without asking.")] = False,
    format: FormatOption = Format.table,
) -> None:
    """Delete a contest still open (one made by mistake); a closed contest's results stay.

    Example: saleskpi contest delete 3 --yes
    """
    from saleskpi.views.base import LOCAL
    from saleskpi.views.contests import ContestParams, delete_contest

    if not yes and not typer.confirm(_("Delete contest {id}?", id=contest)):
        raise fail(_("nothing deleted"))
    view = delete_contest(service(), LOCAL, ContestParams(contest=contest))
    _print_contest(view, format, _("Contest {id} deleted: {name}.", id=view.contest.id,
                                   name=view.contest.name))


def _print_contest(view: ContestView, format: Format, message: str) -> None:
    if format is Format.json:
        from saleskpi.views.text import to_json

        write(to_json(view.to_json()))
    elif format is Format.csv:
        write_csv(_contests_csv([view.contest]))
    else:
        out.print(message, highlight=False)


# -- output ---------------------------------------------------------------------------------
def score_text(value: float | None, unit: str) -> str:
    """A score: shares in per cent; points and per-person averages with a decimal when they
    have one (39.5 points, 6.7 calls a person)."""
    from saleskpi.views.text import format_value

    if value is not None and unit in ("points", "count") and not float(value).is_integer():
        return f"{value:,.1f}".replace(",", " ")
    return format_value(value, "count" if unit == "points" else unit)


def _what(contest: ContestSummary) -> str:
    if contest.kpi is None:
        return ", ".join(f"{r.kpi}×{r.points:g}" for r in contest.points)
    return contest.kpi + (f" ({_('% of target')})" if contest.rank_by == "target" else "")


def _status(status: str) -> str:
    return {"upcoming": _("upcoming"), "running": _("running"), "ended": _("ended"),
            "closed": _("closed")}.get(status, status)


def _print_contests(view: ContestsView, format: Format) -> None:
    if format is Format.json:
        from saleskpi.views.text import to_json

        write(to_json(view.to_json()))
        return
    if format is Format.csv:
        write_csv(_contests_csv(view.contests))
        return
    from rich.table import Table

    if not view.contests:
        out.print(_("No contests yet. Create one: saleskpi contest create --help"))
        return
    table = Table(header_style="bold")
    for title in (_("Id"), _("Contest"), _("Ranks"), _("Period"), _("Participants"),
                  _("Status"), _("Winners")):
        table.add_column(title)
    for c in view.contests:
        table.add_row(str(c.id), c.name, _what(c), f"{c.start} – {c.end}",
                      ", ".join(m.name for m in c.members), _status(c.status),
                      ", ".join(w.name for w in c.winners) or "—")
    out.print(table)


def _contests_csv(found: list[ContestSummary]) -> str:
    from saleskpi.domain.text import safe_cell

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "name", "kpi", "points", "rank_by", "participants", "members",
                     "from", "to", "status", "winners", "closed_at"])
    for c in found:
        writer.writerow([safe_cell(v) for v in (
            c.id, c.name, c.kpi or "", "; ".join(f"{r.kpi}={r.points:g}" for r in c.points),
            c.rank_by, c.participants, "; ".join(m.key for m in c.members), c.start.isoformat(),
            c.end.isoformat(), c.status, "; ".join(w.key for w in c.winners),
            c.closed_at.isoformat() if c.closed_at else "")])
    return buffer.getvalue()


def _print_standings(view: StandingsView, format: Format) -> None:
    if format is Format.json:
        from saleskpi.views.text import to_json

        write(to_json(view.to_json()))
        return
    if format is Format.csv:
        write_csv(standings_csv(view))
        return
    from rich.table import Table

    board, contest = view.standings, view.contest
    state = _("final") if board.final else _("live, counted to {day}",
                                             day=board.measured_to or "—")
    out.print(f"[bold]{contest.name}[/] · {_what(contest)} · {contest.start} – {contest.end} "
              f"· {state}", highlight=False)
    table = Table(header_style="bold")
    table.add_column(_("Place"), justify="right")
    table.add_column(_("Team") if board.participants == "teams" else _("Rep"))
    table.add_column(_("Score"), justify="right")
    if board.rank_by == "target":
        table.add_column(_("Actual"), justify="right")
        table.add_column(_("Target"), justify="right")
    for rule in board.points:
        table.add_column(rule.kpi, justify="right")
    if board.participants == "teams":
        table.add_column(_("Active reps"), justify="right")
    value_unit = "count" if board.unit == "ratio" else board.unit
    for entry in board.entries:
        cells = [str(entry.rank) if entry.rank is not None else "—",
                 ("★ " if entry.winner else "") + entry.name,
                 score_text(entry.score, board.unit)]
        if board.rank_by == "target":
            cells += [score_text(entry.value, value_unit), score_text(entry.target, value_unit)]
        cells += [score_text(entry.breakdown.get(r.kpi), "count") for r in board.points]
        if board.participants == "teams":
            cells.append(f"{entry.active}/{entry.members}")
        table.add_row(*cells)
    out.print(table)
    if board.records:
        h2h = Table(title=_("Head to head"), header_style="bold")
        for title in (_("Place"), _("Participant"), _("Played"), _("Won"), _("Drawn"),
                      _("Lost"), _("Score")):
            h2h.add_column(title)
        for r in board.records:
            h2h.add_row(str(r.rank), r.name, str(r.played), str(r.wins), str(r.draws),
                        str(r.losses), f"{r.score:g}")
        out.print(h2h)


def standings_csv(view: StandingsView) -> str:
    """One row per participant: place, key, name, score and the figures behind it."""
    from saleskpi.domain.query import plain_number
    from saleskpi.domain.text import safe_cell

    board = view.standings
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    kpis = [r.kpi for r in board.points]
    writer.writerow(["rank", "key", "name", "score", "unit", "value", "target", *kpis,
                     "members", "active", "winner", "note"])
    for e in board.entries:
        writer.writerow([safe_cell(v) for v in (
            e.rank, e.key, e.name, plain_number(e.score), board.unit, plain_number(e.value),
            plain_number(e.target), *(plain_number(e.breakdown.get(k)) for k in kpis),
            e.members, e.active, e.winner, e.note or "")])
    return buffer.getvalue()

