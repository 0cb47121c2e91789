"""A page's tables as a PDF: ``?format=pdf`` on any page (``?export=ID&format=pdf``: one).

The PDF holds the same cells as the page (their text as the page writes it, better
and worse coloured), with the page's title and the days it covers; the renderer is
``surfaces/documents`` (fpdf2, DejaVu Sans embedded for Cyrillic).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from starlette.responses import Response

from saleskpi.surfaces import documents
from saleskpi.surfaces.documents.pdf import render_pdf
from saleskpi.surfaces.web.formatting import sentence
from saleskpi.surfaces.web.i18n import _
from saleskpi.surfaces.web.tables import DataTable

PDF_TYPE = "application/pdf"


def _document_table(table: DataTable) -> documents.Table:
    columns = [documents.Column(c.label, c.numeric, c.unit) for c in table.columns]
    rows = [documents.Row([documents.Cell(cell.raw, cell.text, cell.mark, cell.unit)
                           for cell in row.cells], row.kind) for row in table.rows]
    return documents.Table(table.title, columns, rows, note=sentence(table.note))


def pdf_response(title: str, lines: Sequence[str], tables: Sequence[DataTable],
                 name: str) -> Response:
    document = documents.Document(title, [sentence(line) for line in lines],
                                  [_document_table(t) for t in tables],
                                  empty_text=_("No data for this view."))
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "saleskpi"
    return Response(render_pdf(document), media_type=PDF_TYPE, headers={
        "Content-Disposition": f'attachment; filename="{safe}.pdf"'})
