"""What every alert check is given, and the company's days as checks count them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from saleskpi.domain.query import local_midnight_utc
from saleskpi.domain.settings import Settings
from saleskpi.domain.working_hours import WorkingTime

if TYPE_CHECKING:
    from saleskpi.service.core import SalesKpiService


@dataclass(frozen=True)
class CheckContext:
    service: SalesKpiService

    @property
    def settings(self) -> Settings:
        return self.service.settings

    @property
    def working(self) -> WorkingTime:
        s = self.settings
        return WorkingTime.of(s.working_hours, s.timezone, s.holidays)

    def local_day(self, moment: dt.datetime) -> dt.date:
        return self.working.local_day(moment)

    def day_starts(self, day: dt.date) -> dt.datetime:
        """The UTC instant (naive) at which ``day`` begins in the company's time zone."""
        return local_midnight_utc(day, self.settings.timezone)


def iso(moment: dt.datetime) -> str:
    """A naive UTC instant as facts keep it."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S")
