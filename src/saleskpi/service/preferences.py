"""A user's dashboard choices, kept across visits: language, KPIs shown, the threshold.

Checked here, so that every surface stores only what the pages can use: a language
of ``LANGUAGES``, KPI keys of the catalogue, a threshold between 0 and 10 (0 %–1000 %).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from saleskpi.domain.errors import InvalidQuery
from saleskpi.domain.i18n import LANGUAGES, _
from saleskpi.store.state.preferences import load_preferences, save_language, save_preference

if TYPE_CHECKING:
    from saleskpi.service.core import SalesKpiService

# Which list of KPIs a preference keeps: one per page that lets the user choose.
KPI_LISTS = ("overview", "compare")
MAX_KPIS = 20
DEFAULT_THRESHOLD = 0.20  # the comparison colours a difference beyond ±20 %
MAX_THRESHOLD = 10.0


@dataclass(frozen=True)
class Preferences:
    kpis: dict[str, tuple[str, ...]]  # page -> the KPIs chosen (absent: the page's default)
    threshold: float

    def kpis_of(self, page: str) -> tuple[str, ...]:
        return self.kpis.get(page, ())


def preferences(service: SalesKpiService, user_id: int) -> Preferences:
    """The user's choices; KPIs since removed from the catalogue are dropped."""
    stored = load_preferences(service.settings.state_url, user_id)
    known = service.catalog.kpis
    kpis: dict[str, tuple[str, ...]] = {}
    for page in KPI_LISTS:
        value = stored.get(f"kpis.{page}")
        if isinstance(value, list):
            chosen = tuple(k for k in value if isinstance(k, str) and k in known)
            if chosen:
                kpis[page] = chosen
    threshold = stored.get("threshold")
    if not isinstance(threshold, int | float) or not 0 <= threshold <= MAX_THRESHOLD:
        threshold = DEFAULT_THRESHOLD
    return Preferences(kpis, float(threshold))


def set_language(service: SalesKpiService, user_id: int, lang: str) -> None:
    if lang not in LANGUAGES:
        raise InvalidQuery(_("unknown language {lang!r}; use one of {known}", lang=lang[:20],
                             known=", ".join(LANGUAGES)), code="bad_language")
    save_language(service.settings.state_url, user_id, lang)


def set_kpis(service: SalesKpiService, user_id: int, page: str, kpis: list[str]) -> None:
    """Keep the KPIs ``page`` shows for the user; an empty list goes back to the default."""
    if page not in KPI_LISTS:
        raise InvalidQuery(_("no KPI choice is kept for {page!r}", page=page[:40]),
                           code="bad_query")
    unknown = [k for k in kpis if k not in service.catalog.kpis]
    if unknown:
        raise InvalidQuery(_("unknown KPI {key!r}", key=unknown[0][:60]), code="unknown_kpi")
    value: Any = list(dict.fromkeys(kpis))[:MAX_KPIS] or None
    save_preference(service.settings.state_url, user_id, f"kpis.{page}", value)


def set_threshold(service: SalesKpiService, user_id: int, threshold: float) -> None:
    if not math.isfinite(threshold) or not 0 <= threshold <= MAX_THRESHOLD:
        raise InvalidQuery(_("the threshold must be between 0% and 1000%"),
                           code="bad_threshold")
    save_preference(service.settings.state_url, user_id, "threshold", threshold)
