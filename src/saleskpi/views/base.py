"""What every view shares: who asks, and how a long list is paged.

A view is one data function: ``view(service, caller, params) -> Model``. It asks
the service (which applies ``caller``'s scope) and returns a pydantic model, the
JSON contract that the CLI's ``--format json``, the REST API and MCP all return
unchanged. Surfaces only render it; the model also keeps the domain object it was
made from (``.source``) for surfaces that draw tables and charts from it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from saleskpi.domain.errors import Forbidden
from saleskpi.domain.i18n import _
from saleskpi.domain.periods import DateRange, parse_range, resolve_range
from saleskpi.domain.query import MAX_ID, parse_period
from saleskpi.service.core import SalesKpiService
from saleskpi.service.principal import Principal

T = TypeVar("T")

# The REST API and MCP cap a page; the CLI prints everything unless asked.
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000

# Whoever runs the CLI on the machine owns the workspace files: they see everything.
LOCAL = Principal(user_id=0, username="local", role="admin", rep_id=None, team=None,
                  lang="en")


class ViewModel(BaseModel):
    """A view's answer. ``source`` (not serialised) is the domain object behind it."""

    model_config = ConfigDict(populate_by_name=True)
    _source: Any = None

    @property
    def source(self) -> Any:
        return self._source

    def with_source(self, source: object) -> Any:
        self._source = source
        return self

    def to_json(self) -> dict[str, Any]:
        """The JSON every surface returns: aliases (``from``), no Python types."""
        return self.model_dump(mode="json", by_alias=True)


class PageInfo(BaseModel):
    total_rows: int = Field(description="Rows in the whole answer, before paging.")
    limit: int | None = Field(description="Rows asked for (null: all).")
    offset: int = Field(description="Rows skipped.")


class Paging(BaseModel):
    limit: int | None = Field(default=None, ge=1, le=MAX_LIMIT)
    offset: int = Field(default=0, ge=0, le=MAX_ID)


class Filtered(BaseModel):
    """A date range and filters, as every view that computes KPIs takes them."""

    start: dt.date | None = Field(default=None, validation_alias=AliasChoices("from", "start"),
                                  description="First day, inclusive (company time).")
    end: dt.date | None = Field(default=None, validation_alias=AliasChoices("to", "end"),
                                description="Last day, inclusive.")
    where: list[str] = Field(default_factory=list,
                             description="Filters DIM=VALUE[,VALUE], e.g. team=Kyiv.")
    range: str | None = Field(
        default=None, description="Without from/to: mtd (month to date, the default), wtd, "
        "qtd, ytd, last_month or all (the default with a period grain).")

    def dates(self, service: SalesKpiService, grain: str = "all") -> DateRange:
        """The days asked: from/to, else the named range, else month to date (in the
        company's time zone; all time with a period grain)."""
        return resolve_range(service.today(), self.start, self.end, parse_range(self.range),
                             parse_period(grain))


class Sliced(Filtered):
    """... and a period grain."""

    period: str = Field(default="all", description="day, week, month, quarter, year or all.")

    def sliced_dates(self, service: SalesKpiService) -> DateRange:
        return self.dates(service, self.period)


class RangeInfo(BaseModel):
    """The days an answer covers, always stated."""

    name: str = Field(description="mtd, wtd, qtd, ytd, last_month, all or custom (from/to "
                      "given).")
    start: str | None = Field(alias="from", description="First day (null: all time).")
    end: str | None = Field(alias="to", description="Last day (null: up to the latest data).")
    partial: bool = Field(description="The range stops before its calendar period ends, "
                          "or reaches today: figures are still growing.")
    data: DataSpan | None = Field(
        default=None, description="Only when the range holds no lead, deal or activity: "
        "the first and last day the data has (ask again with them). Absent otherwise.")

    @model_serializer(mode="wrap")
    def _without_empty_data(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        dumped: dict[str, Any] = handler(self)
        if dumped.get("data", True) is None:
            del dumped["data"]  # the key is there only to say something
        return dumped


class DataSpan(BaseModel):
    """The first and last day of the data."""

    start: str = Field(alias="from")
    end: str = Field(alias="to")


def outside_the_data(service: SalesKpiService, start: dt.date | None,
                     end: dt.date | None) -> tuple[dt.date, dt.date] | None:
    """The data's first and last day when ``start`` – ``end`` holds none of it: an export
    of past years asked for this month answers zeros that are no news."""
    if start is None and end is None:
        return None
    span = service.data_span()
    if span is None:
        return None
    first, last = span
    if (end is not None and end < first) or (start is not None and start > last):
        return span
    return None


def range_info(dates: DateRange, service: SalesKpiService) -> RangeInfo:
    """The days ``dates`` cover, and when the data runs if they hold none of it."""
    info = RangeInfo.model_validate(dates.to_dict())
    span = outside_the_data(service, dates.start, dates.end)
    if span is not None:
        info.data = DataSpan.model_validate({"from": span[0].isoformat(),
                                             "to": span[1].isoformat()})
    return info


def paged(items: Sequence[T], paging: Paging) -> tuple[list[T], PageInfo]:
    end = None if paging.limit is None else paging.offset + paging.limit
    return list(items[paging.offset:end]), PageInfo(
        total_rows=len(items), limit=paging.limit, offset=paging.offset)


def require_manager(caller: Principal) -> None:
    """Imports, targets, the catalogue and users: admin and head of sales only."""
    if not caller.can_manage:
        raise Forbidden(_("only an admin or the head of sales may do this"))
