"""One family of errors: every problem a user can act on is a ``SalesKpiError``.

Each class has a stable machine-readable ``code`` (clients and scripts match on
it; never rename one) and a ``kind`` that each surface maps once, at its edge:
the CLI to a message and an exit code, the REST API to a problem-details body
with an HTTP status, the web to an error page, MCP to a tool error. Lower layers
raise; only surfaces translate. ``message`` is already in the user's language.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar


class ErrorKind(StrEnum):
    invalid = "invalid"  # the request or the input is wrong: fix it and ask again
    not_found = "not_found"
    unauthenticated = "unauthenticated"
    forbidden = "forbidden"
    conflict = "conflict"  # the request is fine but clashes with stored state
    too_large = "too_large"
    rate_limited = "rate_limited"
    busy = "busy"  # another process holds the data: try again shortly
    upstream = "upstream"  # a CRM or another outside service failed


# One place for each edge's translation.
HTTP_STATUS: dict[ErrorKind, int] = {
    ErrorKind.invalid: 400, ErrorKind.not_found: 404, ErrorKind.unauthenticated: 401,
    ErrorKind.forbidden: 403, ErrorKind.conflict: 409, ErrorKind.too_large: 413,
    ErrorKind.rate_limited: 429, ErrorKind.busy: 503, ErrorKind.upstream: 502,
}
EXIT_CODE: dict[ErrorKind, int] = {
    ErrorKind.invalid: 2, ErrorKind.not_found: 2, ErrorKind.unauthenticated: 4,
    ErrorKind.forbidden: 4, ErrorKind.conflict: 2, ErrorKind.too_large: 2,
    ErrorKind.rate_limited: 3, ErrorKind.busy: 3, ErrorKind.upstream: 5,
}


class SalesKpiError(Exception):
    """The root. ``code`` may be given per instance for a more precise case."""

    default_code: ClassVar[str] = "error"
    kind: ClassVar[ErrorKind] = ErrorKind.invalid

    def __init__(self, message: str = "", *, code: str | None = None) -> None:
        super().__init__(message)
        self.code: str = code or type(self).default_code

    @property
    def message(self) -> str:
        return str(self)

    def to_problem(self) -> dict[str, object]:
        """RFC 9457 problem details, as the REST API and MCP return them."""
        return {"type": f"urn:saleskpi:error:{self.code}", "title": self.code,
                "status": HTTP_STATUS[self.kind], "detail": self.message,
                "error": self.code, "message": self.message}


class InvalidQuery(SalesKpiError):
    """A question that cannot be asked: an unknown KPI, slice, period or filter."""

    default_code = "bad_query"


class QueryTimeout(InvalidQuery):
    """A question that ran longer than the ``query_timeout_seconds`` setting: stopped."""

    default_code = "query_timeout"

    @classmethod
    def after(cls, seconds: float) -> QueryTimeout:
        """The error of a question stopped after ``seconds``, saying how to narrow it."""
        from saleskpi.domain.i18n import _  # i18n is above errors' imports

        return cls(_("the question took longer than {seconds} s (the query_timeout_seconds "
                     "setting) and was stopped; narrow it: a shorter --from/--to range, a "
                     "coarser --period, fewer KPIs or --by slices, or a --where filter",
                     seconds=f"{seconds:g}"))


class NotFound(SalesKpiError):
    default_code = "not_found"
    kind = ErrorKind.not_found


class Forbidden(SalesKpiError):
    default_code = "forbidden"
    kind = ErrorKind.forbidden


class Unauthenticated(SalesKpiError):
    default_code = "unauthenticated"
    kind = ErrorKind.unauthenticated


class Conflict(SalesKpiError):
    default_code = "conflict"
    kind = ErrorKind.conflict


class TooLarge(SalesKpiError):
    default_code = "too_large"
    kind = ErrorKind.too_large


class RateLimited(SalesKpiError):
    default_code = "too_many_attempts"
    kind = ErrorKind.rate_limited


class Busy(SalesKpiError):
    default_code = "busy"
    kind = ErrorKind.busy


class Upstream(SalesKpiError):
    default_code = "upstream_failed"
    kind = ErrorKind.upstream
