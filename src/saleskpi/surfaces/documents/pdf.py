"""A document as PDF (fpdf2): DejaVu Sans embedded, so Russian and Ukrainian text shows.

Landscape when a table is wide; each table with its title, the header repeated on
every page it spans, numbers aligned right, better and worse cells coloured as on
the web pages, and page numbers.
"""

from __future__ import annotations

from pathlib import Path

from fpdf import FPDF
from fpdf.fonts import FontFace

from saleskpi.surfaces.documents.model import Document, Row, Table

FONTS = Path(__file__).parent / "fonts"
FAMILY = "DejaVu"
WIDE = 6  # tables with more columns than this are printed landscape
GREEN, RED, GREY = (21, 115, 71), (179, 38, 30), (236, 239, 243)
MAX_CHARS = 30  # a column's width, in capital letters, past which its text wraps
PADDING = 2.5  # mm of a cell beside its text


class _Pdf(FPDF):
    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(FAMILY, size=7)
        self.set_text_color(110, 110, 110)
        self.cell(0, 6, f"saleskpi · {self.page_no()}/{{nb}}", align="R")


def render_pdf(document: Document) -> bytes:
    wide = any(len(t.columns) > WIDE for t in document.tables)
    pdf = _Pdf(orientation="landscape" if wide else "portrait", format="A4")
    pdf.add_font(FAMILY, "", str(FONTS / "DejaVuSans.ttf"))
    pdf.add_font(FAMILY, "B", str(FONTS / "DejaVuSans-Bold.ttf"))
    pdf.set_title(document.title)
    pdf.set_creator("saleskpi")
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_page()
    pdf.set_font(FAMILY, "B", 14)
    pdf.multi_cell(0, 7, document.title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FAMILY, size=9)
    for line in document.lines:
        pdf.multi_cell(0, 5, line, new_x="LMARGIN", new_y="NEXT")
    for table in document.tables:
        _table(pdf, table, document.empty_text)
    return bytes(pdf.output())


def _widths(pdf: FPDF, table: Table, size: float) -> tuple[float, ...]:
    """Each column's width in mm: its longest text on one line where the page has room,
    and never narrower than its longest word (a word is not broken), the header's too."""
    wanted, least = [], []
    for index, column in enumerate(table.columns):
        texts = [row.cells[index].text for row in table.rows]
        pdf.set_font(FAMILY, "B", size)  # headers and totals are bold: measure them so
        header = max((pdf.get_string_width(w) for w in column.label.split()), default=0.0)
        words = max((pdf.get_string_width(w) for t in texts for w in t.split()), default=0.0)
        lines = max((pdf.get_string_width(t) for t in texts), default=0.0)
        cap = pdf.get_string_width("M" * MAX_CHARS)
        least.append(max(header, words) + PADDING)
        wanted.append(max(header, words, min(lines, cap)) + PADDING)
    pdf.set_font(FAMILY, "", size)
    room = pdf.epw
    if sum(wanted) <= room:
        return tuple(wanted)
    # Too wide: each column keeps its longest word; what is left goes by what they want.
    spare = max(0.0, room - sum(least))
    extra = [w - low for w, low in zip(wanted, least, strict=True)]
    share = spare / sum(extra) if sum(extra) else 0.0
    return tuple(low + e * share for low, e in zip(least, extra, strict=True))


def _table(pdf: FPDF, table: Table, empty_text: str) -> None:
    pdf.ln(4)
    pdf.set_font(FAMILY, "B", 11)
    pdf.multi_cell(0, 6, table.title, new_x="LMARGIN", new_y="NEXT")
    size = 8 if len(table.columns) <= 8 else 7
    pdf.set_font(FAMILY, size=size)
    if not table.rows:
        pdf.multi_cell(0, 5, empty_text, new_x="LMARGIN", new_y="NEXT")
    else:
        align = tuple("RIGHT" if c.numeric else "LEFT" for c in table.columns)
        widths = _widths(pdf, table, size)
        with pdf.table(col_widths=widths, width=min(pdf.epw, sum(widths)), align="LEFT",
                       text_align=align,
                       line_height=size * 0.55,
                       headings_style=FontFace(emphasis="BOLD", fill_color=GREY),
                       borders_layout="HORIZONTAL_LINES", repeat_headings=1) as grid:
            heading = grid.row()
            for column in table.columns:
                heading.cell(column.label)
            for row in table.rows:
                _row(grid.row(), row)
    if table.note:
        pdf.set_font(FAMILY, size=7)
        pdf.multi_cell(0, 4, table.note, new_x="LMARGIN", new_y="NEXT")


def _row(line: object, row: Row) -> None:
    from fpdf.table import Row as PdfRow

    assert isinstance(line, PdfRow)
    for cell in row.cells:
        color = GREEN if cell.mark == "better" else RED if cell.mark == "worse" else None
        bold = row.kind in ("total", "average")
        style = FontFace(emphasis="BOLD" if bold else None, color=color) \
            if color or bold else None
        line.cell(cell.text, style=style)
