"""Amounts without an exchange rate to the reporting currency, as saleskpi names them
(an import's warning and a money KPI's refusal say it the same way)."""

from __future__ import annotations

from collections.abc import Mapping

from saleskpi.domain.i18n import _

# Currency -> (records, the first day among them), as ``currencies_without_rates`` finds.
MissingRates = Mapping[str, tuple[int, str]]


def missing_rates_text(missing: MissingRates) -> str:
    """E.g. "UAH (3 records from 2025-01-03), EUR (1 records from 2025-02-01)"."""
    return ", ".join(_("{code} ({count} records from {first})", code=code, count=count,
                       first=first or "?")
                     for code, (count, first) in sorted(missing.items()))
