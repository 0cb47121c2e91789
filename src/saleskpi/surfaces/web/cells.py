"""Table cells as HTML, written in Python rather than Jinja macros.

A table of 350 rows has 3,500 cells; three macro calls per cell made rendering
the largest share of a page's time under load. The HTML (and its escaping) is
the same as the templates wrote: attributes carry the raw values that the
browser tests and scripts read.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

from saleskpi.surfaces.web.i18n import _
from saleskpi.surfaces.web.tables import Cell, Column, Row


def _attrs(cell: Cell, column: Column, small_title: str) -> str:
    classes = (["num"] if column.numeric else []) + ([cell.mark] if cell.mark else [])
    if cell.small:
        classes.append("small-sample")
    parts = []
    if classes:
        parts.append(f' class="{escape(" ".join(classes))}"')
    if cell.kpi:
        parts.append(f' data-kpi="{escape(cell.kpi)}"')
    if cell.kpi or column.numeric:
        parts.append(f' data-value="{escape(cell.data_value)}"')
    if cell.rep:
        parts.append(f' data-rep="{escape(cell.rep)}"')
    if cell.period:
        parts.append(f' data-period="{escape(cell.period)}"')
    if cell.mark:
        parts.append(f' data-mark="{escape(cell.mark)}"')
    if cell.small:
        parts.append(f' title="{escape(small_title)}"')
    if cell.verbatim:
        parts.append(' translate="no"')
    return "".join(parts)


def _body(cell: Cell) -> str:
    text = escape(cell.text)
    body = f'<a href="{escape(cell.href)}">{text}</a>' if cell.href else str(text)
    return body + (f"<small>{escape(cell.note)}</small>" if cell.note else "")


def cells_html(row: Row, columns: Sequence[Column]) -> Markup:
    """The row's cells: the first a row header (``th``), the others ``td``."""
    small_title = _("Few cases: read this rate with care.") if any(
        c.small for c in row.cells) else ""
    out = []
    for index, (cell, column) in enumerate(zip(row.cells, columns, strict=False)):
        tag = "th" if index == 0 else "td"
        scope = ' scope="row"' if index == 0 else ""
        out.append(f"<{tag}{scope}{_attrs(cell, column, small_title)}>{_body(cell)}</{tag}>")
    return Markup("".join(out))
