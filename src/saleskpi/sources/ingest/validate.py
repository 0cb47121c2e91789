"""Text to typed values, with an error for every value that cannot be read.

Each error names the file, the spreadsheet row and the column, shows the value,
and says what to do. Errors are capped per column so one broken column does not
bury the others.

Values no sales record holds are refused rather than stored: numbers that are
not finite (``inf``, ``1e400``, ``NaN``), outside ``NUMBER_LIMIT`` or a column's
own bounds (a probability of 0-100, a duration of at most a month), dates before
``MIN_DATE`` or after ``MAX_DATE`` (the dates a question may ask about), a date
followed by other text, and digits other than 0-9 (Arabic-Indic, full-width:
Python reads them as numbers, a person reading the file may not).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import zoneinfo
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import TYPE_CHECKING

from saleskpi.domain.i18n import _
from saleskpi.domain.query import MAX_DATE, MIN_DATE
from saleskpi.domain.reports import ImportReport
from saleskpi.domain.schema import ENTITIES, NUMBER_LIMIT, Column, ColumnType
from saleskpi.domain.tables import TypedTable
from saleskpi.sources.ingest.mapping import MappedTable

if TYPE_CHECKING:
    import pandas as pd

MAX_ERRORS_PER_COLUMN = 10
TRUE_WORDS = {"true", "1", "yes", "y", "t", "да", "так", "+"}
FALSE_WORDS = {"false", "0", "no", "n", "f", "нет", "ні", "-"}
MONEY_LIMIT = Decimal("10") ** 16  # DECIMAL(18, 2)
SHOWN_VALUE = 60  # characters of a bad value quoted in its error
_OTHER_DIGITS = re.compile(r"(?![0-9])\d")


class _BadValue(ValueError):
    """A value that cannot be read; ``message``/``hint`` replace the column's usual ones."""

    def __init__(self, text: str, message: str | None = None, hint: str | None = None) -> None:
        super().__init__(text)
        self.message, self.hint = message, hint


def _ascii_digits(text: str) -> None:
    if found := _OTHER_DIGITS.search(text):
        raise _BadValue(text, _("{value!r} has the digit {digit!r}, which is not 0-9",
                                value=_shown(text), digit=found.group()),
                        _("Write numbers and dates with the digits 0-9."))


def _in_range(text: str, day: dt.date) -> None:
    if not MIN_DATE <= day <= MAX_DATE:
        raise _BadValue(text, _("{value!r} lies outside the dates saleskpi accepts "
                                "({low} .. {high})", value=_shown(text),
                                low=MIN_DATE.isoformat(), high=MAX_DATE.isoformat()),
                        _("Check the year; leave the cell empty if the date is unknown."))


def _bound(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else str(value)


def _shown(text: str) -> str:
    return text if len(text) <= SHOWN_VALUE else text[:SHOWN_VALUE] + "…"


# Day first with dots, as amoCRM, Bitrix24 and Excel in Russian and Ukrainian write
# dates: read without a mapping. Nobody writes a month first with dots, so this form is
# not ambiguous (31/01 and 01/31 with slashes are: those need date_formats).
_DOTTED = re.compile(r"\d{1,2}\.\d{1,2}\.\d{4}(?: \d{1,2}:\d{2}(?::\d{2})?)?")


def _iso_or_dotted(text: str) -> dt.datetime:
    """``fromisoformat``, or a day-first dotted date (``31.01.2024 10:15``)."""
    if _DOTTED.fullmatch(text):
        time = text.partition(" ")[2]
        fmt = "%d.%m.%Y" + ("" if not time else " %H:%M:%S" if time.count(":") == 2
                            else " %H:%M")
        return dt.datetime.strptime(text, fmt)
    return dt.datetime.fromisoformat(text)


@lru_cache(maxsize=65536)
def _parse_timestamp(text: str, fmt: str | None, zone: str) -> dt.datetime:
    """A timestamp in UTC; one without an offset is read in the company's zone."""
    _ascii_digits(text)
    try:
        value = dt.datetime.strptime(text, fmt) if fmt else _iso_or_dotted(text)
    except ValueError as exc:
        raise _BadValue(str(exc)) from None
    _in_range(text, value.date())
    if value.tzinfo is None:
        value = value.replace(tzinfo=zoneinfo.ZoneInfo(zone))
    return value.astimezone(dt.UTC).replace(tzinfo=None)


@lru_cache(maxsize=65536)
def _parse_date(text: str, fmt: str | None) -> dt.date:
    """A date; a whole timestamp (as workbooks give dates) is read as its date, but
    "2024-03-01 garbage text" is refused."""
    _ascii_digits(text)
    try:
        if fmt:
            day = dt.datetime.strptime(text, fmt).date()
        else:
            day = (_iso_or_dotted(text).date() if len(text) > 10 or _DOTTED.fullmatch(text)
                   else dt.date.fromisoformat(text))
    except ValueError as exc:
        raise _BadValue(str(exc)) from None
    _in_range(text, day)
    return day


_SPACES = re.compile(r"[\s\u00a0\u202f']")


def parse_money(text: str, decimal_comma: bool) -> Decimal:
    """Amounts as exports write them: '1234.5', '1 234,50', '1,234.50', '$ 12'."""
    _ascii_digits(text)
    cleaned = _SPACES.sub("", text).lstrip("$€£₽₴")
    if "," in cleaned and "." in cleaned:
        # Whichever comes last is the decimal separator.
        if cleaned.rfind(",") > cleaned.rfind("."):
            cleaned = cleaned.replace(".", "").replace(",", ".")
        else:
            cleaned = cleaned.replace(",", "")
    elif "," in cleaned:
        # "1,234" may be a thousand (English) or 1.234 (Russian): the file's
        # convention decides. "1000,50" or "12,5" can only be a decimal comma.
        groups = cleaned.split(",")
        thousands = all(len(g) == 3 and g.isdigit() for g in groups[1:])
        decimal = decimal_comma or not thousands
        cleaned = cleaned.replace(",", ".") if decimal else cleaned.replace(",", "")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise _BadValue(text) from None
    if not value.is_finite() or abs(value) >= MONEY_LIMIT:
        raise _BadValue(text)
    return value.quantize(Decimal("0.01"))


def _parse_number(text: str, decimal_comma: bool, column: Column) -> float:
    _ascii_digits(text)
    try:
        number = float(parse_money(text, decimal_comma)) if "," in text else float(text)
    except (ValueError, _BadValue):
        raise _BadValue(text) from None
    if not math.isfinite(number):
        raise _BadValue(text, _("{value!r} is not a finite number", value=_shown(text)),
                        _("Use a number like 1234.50; leave the cell empty if it is unknown."))
    low = column.low if column.low is not None else -NUMBER_LIMIT
    high = column.high if column.high is not None else NUMBER_LIMIT
    if not low <= number <= high:
        raise _BadValue(text, _("{value} is outside the accepted range of {column} "
                                "({low} .. {high})", value=_shown(text),
                                column=column.name, low=_bound(low), high=_bound(high)),
                        _("Check the value and its unit."))
    return number


def _parse_bool(text: str) -> bool:
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise _BadValue(text)


def _hint(column: Column, fmt: str | None) -> str:
    if column.type is ColumnType.TIMESTAMP:
        if fmt:
            return _("Expected the format {fmt} (set in the mapping).", fmt=fmt)
        return _("Use ISO 8601, e.g. 2024-03-01 or 2024-03-01T14:05:00+03:00, or day "
                 "first with dots (31.01.2024 14:05), or set date_formats in a mapping.")
    if column.type is ColumnType.DATE:
        return _("Use a date like 2024-03-01 or 31.01.2024, or set date_formats in a "
                 "mapping.")
    if column.type in (ColumnType.MONEY, ColumnType.NUMBER, ColumnType.INTEGER):
        return _("Use a number like 1234.50 or 1 234,50, without text.")
    if column.type is ColumnType.BOOLEAN:
        return _("Use true or false.")
    if column.choices:
        return _("Allowed values: {values}. Map other words with 'values' in a mapping.",
                 values=", ".join(column.choices))
    return ""


def _describe(column: Column) -> str:
    names = {
        ColumnType.TIMESTAMP: _("a date and time"),
        ColumnType.DATE: _("a date"),
        ColumnType.MONEY: _("an amount of money"),
        ColumnType.NUMBER: _("a number"),
        ColumnType.INTEGER: _("a whole number"),
        ColumnType.BOOLEAN: _("true or false"),
    }
    return names.get(column.type, _("one of the allowed values"))


def _converter(
    column: Column, fmt: str | None, zone: str, decimal_comma: bool
) -> Callable[[str], object]:
    match column.type:
        case ColumnType.TIMESTAMP:
            return lambda v: _parse_timestamp(v, fmt, zone)
        case ColumnType.DATE:
            return lambda v: _parse_date(v, fmt)
        case ColumnType.MONEY:
            return lambda v: str(parse_money(v, decimal_comma))
        case ColumnType.NUMBER:
            return lambda v: _parse_number(v, decimal_comma, column)
        case ColumnType.INTEGER:
            def to_int(v: str) -> int:
                number = _parse_number(v, decimal_comma, column)
                if not number.is_integer():
                    raise _BadValue(v)
                return int(number)
            return to_int
        case ColumnType.BOOLEAN:
            return _parse_bool
    if column.choices:
        choices = column.choices

        def choice(v: str) -> str:
            word = v.strip().lower()
            if word not in choices:
                raise _BadValue(v)
            return word
        return choice
    return lambda v: v


def validate_table(
    table: MappedTable, zone: str, report: ImportReport
) -> TypedTable | None:
    """Typed rows, or None when the table has errors (they are in the report)."""
    import pandas as pd  # only here: slow to import, and the fast path needs none

    entity = ENTITIES[table.entity]
    frame = table.frame
    errors_before = len(report.errors) + report.errors_not_shown
    for name in entity.required:
        if name not in frame.columns:
            report.error(
                table.name, 1, name,
                _("required column {column!r} is missing", column=name),
                _("Add the column, or map a column of your file onto it in a mapping "
                  "(--mapping)."),
            )
    if len(report.errors) + report.errors_not_shown > errors_before:
        return None

    rows = frame["_row"]
    typed = pd.DataFrame(index=frame.index)
    for column in entity.columns:
        if column.name not in frame.columns:
            typed[column.name] = None
            continue
        convert = _converter(
            column, table.date_formats.get(column.name), zone, table.decimal_comma
        )
        values: list[object] = []
        shown = 0
        for value, row in zip(frame[column.name], rows, strict=True):
            if value is None:
                if column.required:
                    shown = _column_error(
                        report, table.name, int(row), column.name, shown,
                        _("{column} is empty but required", column=column.name),
                        _("Fill in a value in every row."),
                    )
                values.append(None)
                continue
            try:
                values.append(convert(value))
            except _BadValue as bad:
                shown = _column_error(
                    report, table.name, int(row), column.name, shown,
                    bad.message or _("{value!r} is not {kind}", value=_shown(value),
                                     kind=_describe(column)),
                    bad.hint or _hint(column, table.date_formats.get(column.name)),
                )
                values.append(None)
        typed[column.name] = _typed_series(column, values, frame.index)

    extra = [c for c in frame.columns if c not in entity.column_names and c != "_row"]
    typed["custom"] = _custom_json(frame, extra)
    typed["_row"] = rows
    _check_rules(table, typed, report)
    _check_duplicates(table, typed, report)
    if len(report.errors) + report.errors_not_shown > errors_before:
        return None
    return TypedTable(table.name, table.entity, typed)


def _typed_series(column: Column, values: list[object], index: pd.Index) -> pd.Series:
    """A column with a dtype DuckDB reads without guessing."""
    import pandas as pd  # only here: slow to import, and the fast path needs none

    if column.type in (ColumnType.TIMESTAMP, ColumnType.DATE):
        return pd.Series(pd.to_datetime(pd.Series(values, index=index, dtype=object)),
                         index=index).astype("datetime64[us]")
    if column.type is ColumnType.NUMBER:
        return pd.Series(values, index=index, dtype="float64")
    if column.type is ColumnType.INTEGER:
        return pd.Series(values, index=index, dtype="Int64")
    if column.type is ColumnType.BOOLEAN:
        return pd.Series(values, index=index, dtype="boolean")
    return pd.Series(values, index=index, dtype=object)


def _column_error(
    report: ImportReport, file: str, row: int, column: str, shown: int, message: str, hint: str
) -> int:
    if shown < MAX_ERRORS_PER_COLUMN:
        report.error(file, row, column, message, hint)
    else:
        report.errors_not_shown += 1
    return shown + 1


def _custom_json(frame: pd.DataFrame, extra: list[str]) -> list[str | None]:
    if not extra:
        return [None] * len(frame)
    records = frame[extra].to_dict(orient="records")
    return [
        json.dumps({k: v for k, v in r.items() if v is not None}, ensure_ascii=False)
        for r in records
    ]


def _check_rules(table: MappedTable, typed: pd.DataFrame, report: ImportReport) -> None:
    """Rules between columns of one row that the contract states."""
    if table.entity == "deals":
        closed = typed["status"].isin(["won", "lost"]) & typed["closed_at"].isna()
        # A value that failed to parse already has its own error.
        if "closed_at" in table.frame.columns:
            closed &= table.frame["closed_at"].isna()
        for row in typed.loc[closed, "_row"].head(MAX_ERRORS_PER_COLUMN):
            report.error(
                table.name, int(row), "closed_at",
                _("a won or lost deal needs closed_at"),
                _("Give the date the deal was won or lost, or set status to open."),
            )
        report.errors_not_shown += max(0, int(closed.sum()) - MAX_ERRORS_PER_COLUMN)


def _check_duplicates(table: MappedTable, typed: pd.DataFrame, report: ImportReport) -> None:
    import pandas as pd  # only here: slow to import, and the fast path needs none

    key = list(ENTITIES[table.entity].key)
    duplicated = typed.duplicated(subset=key, keep="first")
    if not duplicated.any():
        return
    first_rows = (
        typed.loc[~duplicated].set_index(key)["_row"] if len(key) else pd.Series(dtype=int)
    )
    for idx in typed.index[duplicated][:MAX_ERRORS_PER_COLUMN]:
        key_value = tuple(typed.loc[idx, k] for k in key)
        first = first_rows.get(key_value if len(key) > 1 else key_value[0])
        report.error(
            table.name, int(typed.loc[idx, "_row"]), ",".join(key),
            _("duplicate {key} {value}: already in row {first}",
              key="+".join(key), value=" / ".join(str(v) for v in key_value), first=first),
            _("Each record must appear once; remove or merge the duplicate rows."),
        )
    report.errors_not_shown += max(0, int(duplicated.sum()) - MAX_ERRORS_PER_COLUMN)
