"""The payroll workbook (XLSX): one row per rep with the total, and every line of how
it was computed. Written by ``saleskpi bonus export`` and ``/api/v1/bonus/export``.

Amounts are numbers (exact to the cent as the plan computed them) in the plan's
currency's format, so a spreadsheet adds them up; attainment is a percentage.
"""

from __future__ import annotations

import io
from decimal import Decimal

from openpyxl import Workbook
from openpyxl.worksheet.worksheet import Worksheet

from saleskpi.domain.bonus import minor_unit
from saleskpi.domain.i18n import _
from saleskpi.domain.text import safe_cell
from saleskpi.views.bonus import BonusView, RepBonusItem
from saleskpi.views.bonus_text import line_text

PAYROLL_SHEET = "Payroll"
LINES_SHEET = "Explanation"
PERCENT = "0.0%"


def money_format(currency: str) -> str:
    """'#,##0.00 "UAH"': the currency's minor unit's digits, its code after the number."""
    exponent = minor_unit(currency).as_tuple().exponent
    digits = -exponent if isinstance(exponent, int) else 0
    decimals = "." + "0" * digits if digits > 0 else ""
    return f'#,##0{decimals} "{currency}"'


def _text(value: str | None) -> str | None:
    cell = safe_cell(value)
    return None if cell is None else str(cell)


def _payroll(sheet: Worksheet, view: BonusView) -> None:
    sheet.append([_("Rep ID"), _("Rep"), _("Team"), _("Period"), _("Plans"), _("Currency"),
                  _("Total")])
    rows: dict[tuple[str, str], list[RepBonusItem]] = {}
    for bonus in view.bonuses:
        rows.setdefault((bonus.rep_id, bonus.currency), []).append(bonus)
    for (rep, currency), items in sorted(rows.items(), key=lambda kv: (
            kv[1][0].rep_name.casefold(), kv[0])):
        first = items[0]
        periods = ", ".join(dict.fromkeys(f"{b.period_start} – {b.period_end}" for b in items))
        total = sum((b.total for b in items), Decimal(0))
        sheet.append([_text(rep), _text(first.rep_name), _text(first.team), periods,
                      ", ".join(_text(b.plan) or "" for b in items), currency, total])
        sheet.cell(sheet.max_row, 7).number_format = money_format(currency)


def _lines(sheet: Worksheet, view: BonusView) -> None:
    sheet.append([_("Rep ID"), _("Rep"), _("Plan"), _("Version"), _("Period start"),
                  _("Period end"), _("Component"), _("KPI"), _("Actual"), _("Target"),
                  _("Attainment"), _("What"), _("Amount"), _("Cap hit")])
    for bonus in view.bonuses:
        for line in bonus.lines:
            attainment = None if line.attainment is None else line.attainment / 100
            sheet.append([_text(bonus.rep_id), _text(bonus.rep_name), _text(bonus.plan),
                          bonus.version, bonus.period_start, bonus.period_end,
                          _text(line.name), line.kpi, line.actual, line.target, attainment,
                          line_text(line), line.amount, _("yes") if line.cap_hit else ""])
            row = sheet.max_row
            sheet.cell(row, 11).number_format = PERCENT
            sheet.cell(row, 13).number_format = money_format(bonus.currency)


def payroll_workbook(view: BonusView) -> bytes:
    """The bonuses of ``view`` (made with lines) as an XLSX file."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = PAYROLL_SHEET
    _payroll(sheet, view)
    _lines(book.create_sheet(LINES_SHEET), view)
    for each in book.worksheets:
        each.freeze_panes = "A2"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
