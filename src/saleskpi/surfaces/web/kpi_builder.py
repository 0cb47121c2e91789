"""A form for custom KPIs: a count, a sum or a rate built from the catalogue's measures,
with a filter, a unit, names and a group, previewed before it is saved (YAML stays for
power users).

A count or a sum starts from a catalogue KPI counted or summed from records (deals won,
calls, revenue...) and narrows its records with a filter: "referral deals won" is deals
won where source = 'referral'. A rate divides two catalogue KPIs, the filter narrowing
the numerator's records. The definition is the catalogue's own (``kind: simple`` or
``kind: ratio``); the preview computes it through the service exactly as saving would
check it (``SalesKpiService.preview_kpi``), without writing it, for the page's dates and
filters in the reader's scope; saving goes through ``SalesKpiService.put_kpi``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from saleskpi.catalog.spec import KpiSpec
from saleskpi.domain.errors import SalesKpiError
from saleskpi.surfaces.web.deps import Page
from saleskpi.surfaces.web.i18n import _
from saleskpi.views.catalogue import KpiPreview, PreviewKpiParams, preview_kpi

UNITS = ("ratio", "count", "number", "money", "days", "hours", "minutes")
GROUPS = ("activity", "funnel", "money", "speed", "quality", "forecast", "other")
KINDS = ("count", "sum", "rate")
# The aggregations each kind starts from (a count of distinct customers is a count too).
AGGS = {"count": ("count", "count_distinct"), "sum": ("sum",)}


def measures(page: Page, kind: str) -> list[KpiSpec]:
    """The catalogue's KPIs a count (or a sum) can start from: counted (summed) records."""
    return sorted((s for s in page.service.catalog.kpis.values()
                   if s.kind == "simple" and s.agg in AGGS[kind]),
                  key=lambda s: s.display_name(page.lang).casefold())


@dataclass
class Draft:
    """What the form holds: kept when it is shown again (a preview, an error)."""

    key: str = ""
    names: dict[str, str] = field(default_factory=dict)
    numerator: str = ""
    denominator: str = ""
    condition: str = ""  # a condition on the records, e.g. source == 'referral'
    unit: str = "count"
    group: str = "other"
    higher_is_better: bool = True
    kind: str = "count"  # count, sum or rate
    measure: str = ""  # a count's or a sum's catalogue KPI

    def problem(self, page: Page) -> str:
        """What to correct before the draft can be previewed or saved ("" for nothing)."""
        known = page.service.catalog.kpis
        if self.kind == "rate":
            if self.numerator not in known or self.denominator not in known:
                return _("Choose the numerator and the denominator from the catalogue.")
        elif self.measure not in {s.key for s in measures(page, self.kind)}:
            return (_("Choose what to count from the catalogue's counts.")
                    if self.kind == "count"
                    else _("Choose what to sum from the catalogue's sums."))
        if not self.names.get("en", "").strip():
            return _("Give the KPI a name (in English at least).")
        return ""

    def definition(self, page: Page) -> dict[str, Any]:
        """The catalogue entry: a count or a sum of a measure's records (filtered), or a
        rate of two KPIs whose numerator may be a filtered measure."""
        names = {lang: text.strip() for lang, text in self.names.items() if text.strip()}
        common = {"name": names, "unit": self.unit, "group": self.group,
                  "higher_is_better": self.higher_is_better}
        if self.kind != "rate":
            return {"kind": "simple", **common, **self._measure(page, self.measure)}
        numerator: Any = self.numerator
        if self.condition.strip():
            numerator = self._measure(page, self.numerator)
        return {"kind": "ratio", **common, "numerator": numerator,
                "denominator": self.denominator}

    def _measure(self, page: Page, key: str) -> dict[str, Any]:
        """``key``'s measure (its records, how they add up, when they count), the filter
        added to its own conditions."""
        spec = page.service.catalog.get(key)
        if spec.kind != "simple":
            raise SalesKpiError(_("A filter needs a numerator counted from records (a "
                                  "simple KPI), not {key}.", key=key), code="bad_kpi")
        measure = spec.measure().model_dump(exclude_none=True, exclude_defaults=True)
        where = [*spec.where, self.condition.strip()] if self.condition.strip() \
            else list(spec.where)
        measure |= {"entity": spec.entity, "time": spec.time, "agg": spec.agg}
        if where:
            measure["where"] = where
        return measure


@dataclass(frozen=True)
class Shown:
    """A preview as the form shows it: the text, and the raw value (``data-value``)."""

    text: str
    value: float | int | None


def preview(page: Page, draft: Draft) -> Shown:
    """The draft's value for the page's dates and filters in the reader's scope, computed
    by the service as the saved KPI would be (the filter included); nothing is saved."""
    f = page.filters
    where = [f"{dim}={','.join(values)}" for dim, values in f.where()]
    found: KpiPreview = preview_kpi(page.service, page.user, PreviewKpiParams(
        key=draft.key, definition=draft.definition(page), start=f.start, end=f.end,
        where=where, range="all" if f.range_name == "all" else None))
    if found.value is None:
        if draft.kind == "rate":
            return Shown(_("No value: the denominator is zero or missing."), None)
        return Shown(_("No data for this view."), None)
    unit = page.currency if found.unit == "money" else found.unit
    text = page.fmt.value(found.value, unit)
    if draft.kind == "rate" and found.numerator is not None and found.denominator is not None:
        text = _("{value} ({numerator} / {denominator})", value=text,
                 numerator=page.fmt.decimal(found.numerator, 2),
                 denominator=page.fmt.decimal(found.denominator, 2))
    return Shown(text, found.value)
