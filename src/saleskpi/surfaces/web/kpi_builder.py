"""A form for custom KPIs: a rate of two catalogue KPIs, with a unit, a name and a
filter on the numerator, previewed before it is saved (YAML stays for power users).

The definition it builds is the catalogue's own (``kind: ratio``), saved through
``SalesKpiService.put_kpi`` like the YAML editor's: the whole catalogue is checked
with it before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from saleskpi.domain.errors import SalesKpiError
from saleskpi.domain.query import KpiQuery
from saleskpi.surfaces.web.deps import Page
from saleskpi.surfaces.web.i18n import _

UNITS = ("ratio", "count", "number", "money", "days", "hours", "minutes")
GROUPS = ("activity", "funnel", "money", "speed", "quality", "forecast", "other")


@dataclass
class Draft:
    """What the form holds: kept when it is shown again (a preview, an error)."""

    key: str = ""
    names: dict[str, str] = field(default_factory=dict)
    numerator: str = ""
    denominator: str = ""
    condition: str = ""  # a condition on the numerator's rows, e.g. source = 'referral'
    unit: str = "ratio"
    group: str = "other"
    higher_is_better: bool = True

    def definition(self, page: Page) -> dict[str, Any]:
        """The catalogue entry: the numerator a KPI's key, or its measure with the filter."""
        numerator: Any = self.numerator
        if self.condition.strip():
            spec = page.service.catalog.get(self.numerator)
            if spec.kind != "simple":
                raise SalesKpiError(_("A filter needs a numerator counted from records (a "
                                      "simple KPI), not {key}.", key=self.numerator),
                                    code="bad_kpi")
            measure = spec.measure().model_dump(exclude_none=True, exclude_defaults=True)
            measure |= {"entity": spec.entity, "time": spec.time, "agg": spec.agg,
                        "where": [*spec.where, self.condition.strip()]}
            numerator = measure
        names = {lang: text.strip() for lang, text in self.names.items() if text.strip()}
        return {"kind": "ratio", "name": names, "unit": self.unit, "group": self.group,
                "higher_is_better": self.higher_is_better, "numerator": numerator,
                "denominator": self.denominator}


def preview(page: Page, draft: Draft) -> str:
    """The value for the page's filters and the reader's scope, from the two KPIs' own
    values (a filtered numerator can only be previewed once saved)."""
    if draft.condition.strip():
        return _("A filtered numerator is computed once the KPI is saved.")
    f = page.filters
    card = page.scorecard(KpiQuery((draft.numerator, draft.denominator), (), "all", f.start,
                                   f.end, f.where()), totals=False)
    if not card.rows:
        return _("No data for this view.")
    top = card.rows[0].values[draft.numerator].value
    bottom = card.rows[0].values[draft.denominator].value
    if top is None or not bottom:
        return _("No value: the denominator is zero or missing.")
    unit = page.currency if draft.unit == "money" else draft.unit
    return _("{value} ({numerator} / {denominator})", value=page.fmt.value(top / bottom, unit),
             numerator=page.fmt.decimal(top, 2), denominator=page.fmt.decimal(bottom, 2))
