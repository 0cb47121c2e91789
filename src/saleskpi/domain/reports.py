"""What an import did or would do: counts per entity, errors and warnings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from saleskpi.domain.errors import SalesKpiError


@dataclass
class ImportIssue:
    """One problem that stops an import, located as precisely as we can."""

    file: str
    row: int | None
    column: str | None
    message: str
    hint: str = ""

    def location(self) -> str:
        parts = [self.file]
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.column:
            parts.append(f"column {self.column}")
        return ", ".join(parts)


@dataclass
class ImportWarning:
    """Something the user should know about; the rows are still imported."""

    code: str
    message: str
    count: int = 0
    file: str | None = None
    column: str | None = None
    examples: list[str] = field(default_factory=list)


@dataclass
class EntityCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0


class ImportRejected(SalesKpiError):
    """Raised inside the import when errors mean nothing may be written."""
    default_code = "import_rejected"


@dataclass
class ImportReport:
    source: str
    dry_run: bool = False
    entities: dict[str, EntityCounts] = field(default_factory=dict)
    errors: list[ImportIssue] = field(default_factory=list)
    warnings: list[ImportWarning] = field(default_factory=list)
    # Errors are capped per (file, column) so a broken column does not flood the
    # screen; this counts the ones left out.
    errors_not_shown: int = 0
    # The files an import read by its fast path (sources/ingest/fast.py); the rest, by
    # the Python path. Not shown to users: both paths store and report alike.
    fast_files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and not self.errors_not_shown

    def error(
        self, file: str, row: int | None, column: str | None, message: str, hint: str = ""
    ) -> None:
        self.errors.append(ImportIssue(file, row, column, message, hint))

    def warn(self, code: str, message: str, count: int = 0, **where: Any) -> None:
        self.warnings.append(ImportWarning(code, message, count, **where))

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "dry_run": self.dry_run,
            "source": self.source,
            "entities": {name: asdict(c) for name, c in self.entities.items()},
            "errors": [asdict(e) for e in self.errors],
            "errors_not_shown": self.errors_not_shown,
            "warnings": [asdict(w) for w in self.warnings],
        }


# Long work (imports, syncs, the demo) says what it is doing through one of these.
Progress = Callable[[str], None]


class QueueNotice(str):
    """A progress message saying the work waits for another writer to finish.

    Surfaces that show progress only as a passing status line (the CLI's spinner,
    invisible when the output is not a terminal) print these as lines of their own:
    a person must learn why nothing happens.
    """
