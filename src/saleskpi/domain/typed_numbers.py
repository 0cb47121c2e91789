"""A number as a person types or pastes it: 50, 0.05, 5%, 1/3, "1 200", "1,5".

One rule for every form and file that takes a target, so that a value pasted from a
spreadsheet reads the same in the grid, the paste box, ``saleskpi target set`` and the
REST API. Spreadsheets copy numbers as they show them: "1,200" (English), "1 200,5"
(Russian, Ukrainian), "1.200,5" (German). A comma before exactly three digits in
groups ("1,200", "12,345,678.9") groups thousands; any other comma is the decimal
mark ("1,5"); dots grouping thousands before a decimal comma ("1.200,5") likewise.
"""

from __future__ import annotations

import re
from fractions import Fraction

_COMMA_GROUPS = re.compile(r"[+-]?\d{1,3}(,\d{3})+(\.\d+)?")
_DOT_GROUPS = re.compile(r"[+-]?\d{1,3}(\.\d{3})+,\d+")
_SPACES = (" ", "\u00a0", "\u202f", "'")  # ' groups thousands in Switzerland


def parse_typed_number(text: str) -> Fraction | None:
    """The number ``text`` means (a percentage as a fraction: 5% is 1/20); None when it is
    not one."""
    cleaned = text.strip()
    for space in _SPACES:
        cleaned = cleaned.replace(space, "")
    percent = cleaned.endswith("%")
    cleaned = cleaned.removesuffix("%")
    if _COMMA_GROUPS.fullmatch(cleaned):
        cleaned = cleaned.replace(",", "")
    elif _DOT_GROUPS.fullmatch(cleaned):
        cleaned = cleaned.replace(".", "").replace(",", ".")
    else:
        cleaned = cleaned.replace(",", ".")
    try:
        value = Fraction(cleaned)
        float(value)  # stored as a float: "1e400" is not a number anyone means
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    return value / 100 if percent else value
