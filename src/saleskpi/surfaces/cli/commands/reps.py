"""Reps across sources: list people, link and unlink reps by hand."""

from __future__ import annotations

from typing import Annotated

import typer

from saleskpi.domain.i18n import _
from saleskpi.surfaces.cli.app import Format, app, fail, out, service, write, write_csv
from saleskpi.surfaces.cli.options import LimitOption, OffsetOption

reps_app = typer.Typer(help="Reps across sources: who is the same person.",
                       no_args_is_help=False)
app.add_typer(reps_app, name="reps")


@reps_app.callback(invoke_without_command=True)
def reps_list(
    ctx: typer.Context,
    limit: LimitOption = None,
    offset: OffsetOption = 0,
    format: Annotated[Format, typer.Option("--format", "-f")] = Format.table,
) -> None:
    """List reps as people matched across sources, with likely duplicates.

    --format csv: one line per source's rep, with the person it belongs to.

    Example: saleskpi reps   (then: saleskpi reps link amocrm:12 pipedrive:7)
    """
    if ctx.invoked_subcommand is not None:
        return
    from saleskpi.views.base import LOCAL
    from saleskpi.views.people import RepsParams, reps
    from saleskpi.views.text import to_json

    view = reps(service(), LOCAL, RepsParams(limit=limit, offset=offset))
    if format is Format.json:
        write(to_json(view.to_json()))
        return
    if format is Format.csv:
        from saleskpi.surfaces.cli.output_csv import records_csv

        write_csv(records_csv(
            [{"person": person.person, "person_name": person.name,
              "matched_by": person.matched_by, "source": member.source, "id": member.id,
              "name": member.name, "email": member.email}
             for person in view.people for member in person.members],
            ("person", "person_name", "matched_by", "source", "id", "name", "email")))
        return
    from rich.table import Table

    table = Table(header_style="bold")
    for title in (_("Person"), _("Name"), _("Matched by"), _("Source ids")):
        table.add_column(title)
    for person in view.people:
        ids = ", ".join(f"{m.source}:{m.id}" for m in person.members)
        table.add_row(person.person, person.name, person.matched_by, ids)
    out.print(table)
    for group in view.possible_duplicates:
        out.print(_("! possibly the same person (same name): {people}. Link them with "
                    "'saleskpi reps link SOURCE:ID SOURCE:ID' if so.",
                    people=", ".join(group)), style="yellow", highlight=False)


@reps_app.command("link")
def reps_link(
    refs: Annotated[list[str], typer.Argument(help="Reps as SOURCE:ID, two or more.")],
) -> None:
    """Treat reps from different sources as one person in every KPI.

    Example: saleskpi reps link amocrm:12 pipedrive:7
    """
    from saleskpi.domain.errors import SalesKpiError

    try:
        service().link_reps(refs)
    except SalesKpiError as exc:
        raise fail(str(exc)) from None
    out.print(_("Linked: {refs}", refs=", ".join(refs)), highlight=False)


@reps_app.command("unlink")
def reps_unlink(
    refs: Annotated[list[str], typer.Argument(help="Reps as SOURCE:ID.")],
) -> None:
    """Undo manual links (e-mail matches stay).

    Example: saleskpi reps unlink pipedrive:7
    """
    from saleskpi.domain.errors import SalesKpiError

    try:
        service().unlink_reps(refs)
    except SalesKpiError as exc:
        raise fail(str(exc)) from None
    out.print(_("Unlinked: {refs}", refs=", ".join(refs)), highlight=False)
