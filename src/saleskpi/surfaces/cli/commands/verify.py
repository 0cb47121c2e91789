"""``saleskpi verify``: are the rollups equal to the raw computation?"""

from __future__ import annotations

import csv
import io
import json
from typing import Annotated

import typer

from saleskpi.domain.i18n import _
from saleskpi.surfaces.cli.app import Format, app, err, out, progress_on, service, write


def _number(value: object) -> str:
    return f"{value:.10g}" if isinstance(value, int | float) else ""


@app.command("verify")
def verify_command(
    rebuild: Annotated[bool, typer.Option(
        "--rebuild", help="Rebuild every rollup from the raw rows first (after an "
                          "upgrade, or to repair a difference).")] = False,
    format: Annotated[Format, typer.Option("--format", "-f")] = Format.table,
) -> None:
    """Check that the rollups give the same numbers as the raw rows.

    Every KPI the rollups answer is computed both ways by rep and month, and by team
    and source, segment, product and pipeline. Exit code 1 when any value differs.

    Example: saleskpi verify   (repair: saleskpi verify --rebuild)
    """
    with err.status(_("Checking the rollups…")) as status:
        result = service().verify_rollups(rebuild=rebuild, progress=progress_on(status))
    differences: list[dict[str, object]] = [{"kpi": d.kpi, **{k: v for k, v in d.slices.items()},
                    "raw": d.raw, "rollup": d.rollup} for d in result.differences]
    if format is Format.json:
        write(json.dumps({"ok": result.ok, "rollups": result.rollups, "rebuilt": result.rebuilt,
                          "kpis": result.kpis, "values_compared": result.values,
                          "differences": differences}, ensure_ascii=False, indent=2))
    elif format is Format.csv:
        buffer = io.StringIO()
        columns = ["kpi", *dict.fromkeys(k for d in result.differences for k in d.slices),
                   "raw", "rollup"]
        writer = csv.DictWriter(buffer, columns, lineterminator="\n")
        writer.writeheader()
        for row in differences:
            writer.writerow({**row, "raw": _number(row["raw"]),
                             "rollup": _number(row["rollup"])})
        write(buffer.getvalue().rstrip("\n"))
    else:
        _print_table(result.rebuilt, result.rollups, result.kpis, result.values, differences)
    if not result.ok:
        raise typer.Exit(1)


def _print_table(rebuilt: list[str], rollups: list[str], kpis: list[str], values: int,
                 differences: list[dict[str, object]]) -> None:
    from rich.table import Table

    if rebuilt:
        out.print(_("Rebuilt: {tables}", tables=", ".join(rebuilt)), highlight=False)
    if not rollups:
        out.print(_("No rollups yet: every answer is computed from the raw rows. "
                    "Build them with 'saleskpi verify --rebuild'."), highlight=False)
        return
    if not differences:
        out.print(_("OK: {values} values of {kpis} KPIs are the same from the rollups "
                    "and from the raw rows.", values=values, kpis=len(kpis)),
                  style="green", highlight=False)
        return
    table = Table(header_style="bold")
    for title in (_("KPI"), _("Row"), _("Raw rows"), _("Rollup")):
        table.add_column(title)
    for row in differences:
        keys = ", ".join(f"{k}={v}" for k, v in row.items()
                         if k not in ("kpi", "raw", "rollup"))
        table.add_row(str(row["kpi"]), keys, _number(row["raw"]), _number(row["rollup"]))
    out.print(table)
    err.print(_("{count} values differ between the rollups and the raw rows: repair with "
                "'saleskpi verify --rebuild'.", count=len(differences)),
              style="red", highlight=False)
