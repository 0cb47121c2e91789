"""The saleskpi command line: the Typer app, global options and shared helpers.

Commands live in ``saleskpi.surfaces.cli.commands``, one module per area; importing them
registers them on ``app``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from typer.core import TyperGroup

from saleskpi.domain.errors import EXIT_CODE, SalesKpiError
from saleskpi.domain.i18n import _, resolve_language, set_language

if TYPE_CHECKING:
    from rich.console import Console
    from rich.status import Status

    from saleskpi.domain.settings import Settings
    from saleskpi.service.core import SalesKpiService

# Heavy modules (Ibis, pandas, DuckDB, pydantic, the service) are imported inside
# the commands that need them, so that --help and typos answer at once:
# tests/test_cli_startup.py checks what --help imports.


class _Commands(TyperGroup):
    """The command group; every error a user can act on leaves it as a sentence and a code."""

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        # The main options' callback runs before the command reads its own options:
        # note a --help for it here (the arguments are gone by then).
        ctx.meta["saleskpi.help"] = "--help" in ctx.args
        try:
            return super().invoke(ctx)
        except SalesKpiError as exc:
            # From any layer: its sentence (already translated) and a stable exit code.
            raise fail(exc.message, EXIT_CODE[exc.kind]) from None


app = typer.Typer(
    name="saleskpi",
    cls=_Commands,
    help="Sales team KPIs from your CRM data.\n\nExample: saleskpi demo",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


class _OnFirstUse:
    """A Rich console made when first used: a command that prints CSV or JSON (to
    ``write``) does not import Rich at all (tests/test_cli_startup.py)."""

    def __init__(self, *, stderr: bool) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            made = Console(stderr=self._stderr)
            if not self._stderr and not made.is_terminal:
                # Piped into a file or pager: do not squeeze tables into 80 columns.
                made = Console(width=200)
            self._console = made
        return getattr(self._console, name)


out = cast("Console", _OnFirstUse(stderr=False))
err = cast("Console", _OnFirstUse(stderr=True))


def progress_on(status: Status) -> Callable[[str], None]:
    """Progress shown on ``status``; a wait for another writer also as a line of its own
    (the spinner is invisible when stderr is not a terminal)."""
    from saleskpi.domain.reports import QueueNotice

    def show(message: str) -> None:
        if isinstance(message, QueueNotice):
            err.print(message, markup=False, highlight=False, soft_wrap=True)
        status.update(message)

    return show


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


class ReportFormat(StrEnum):
    table = "table"
    json = "json"


class CatalogFormat(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"


# Commands that make the workspace when it is missing (settings: when it stores some,
# the first step of a new company's set-up), and those that need none.
CREATES_WORKSPACE = frozenset({"demo", "import", "settings"})
NEEDS_NO_WORKSPACE = frozenset({"kpis", "mappings"})
# Commands that only read the facts: they open the store while they start (``main_options``).
READ_ONLY = frozenset({"kpi", "funnel", "compare", "leaderboard", "rows"})


class _State:
    settings: Settings


state = _State()


def reset_state() -> None:
    """Forget what the last command set (its settings): for running commands in-process."""
    vars(state).clear()


def fail(message: str, code: int = 2) -> typer.Exit:
    label = _("Error")
    err.print(f"[bold red]{label}:[/] {message}", highlight=False)
    return typer.Exit(code)


def _print_version(asked: bool) -> None:
    """``--version``: the installed saleskpi's version, before anything else runs."""
    if asked:
        from saleskpi import __version__

        write(f"saleskpi {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    workspace: Annotated[
        Path | None,
        typer.Option("--workspace", "-w", envvar="SALESKPI_WORKSPACE",
                     help="Folder with this installation's data (default ./saleskpi-data)."),
    ] = None,
    lang: Annotated[
        str | None,
        typer.Option("--lang", envvar="SALESKPI_LANG", help="Interface language: en, ru, uk."),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_print_version,
                     help="Show saleskpi's version and exit."),
    ] = False,
) -> None:
    """Global options; every command accepts them before its name."""
    from pydantic import ValidationError

    from saleskpi.domain.settings import Settings, settings_problem
    from saleskpi.domain.yaml_files import YamlError

    overrides: dict[str, object] = {}
    if workspace is not None:
        overrides["workspace"] = workspace
    try:
        state.settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise fail(settings_problem(exc)) from None
    except YamlError as exc:  # a hand-edited settings.yaml
        raise fail(str(exc)) from None
    set_language(resolve_language(lang or state.settings.lang))
    _check_workspace(ctx, state.settings.workspace)
    if ctx.invoked_subcommand in READ_ONLY and not ctx.meta.get("saleskpi.help"):
        # Its modules' imports and the store's open overlap (service/reads_ahead.py).
        from saleskpi.service.reads_ahead import start_reading

        ctx.call_on_close(start_reading(state.settings))


def _check_workspace(ctx: typer.Context, workspace: Path) -> None:
    """A workspace that does not exist is a typo, unless the command creates one.

    Other commands would create an empty workspace there and answer zeros.
    """
    command = ctx.invoked_subcommand
    if workspace.is_dir() or command is None or command in CREATES_WORKSPACE \
            or command in NEEDS_NO_WORKSPACE or ctx.meta.get("saleskpi.help"):
        return
    raise missing_workspace(workspace)


def missing_workspace(workspace: Path) -> typer.Exit:
    return fail(_("workspace {path} does not exist: check --workspace (or "
                  "SALESKPI_WORKSPACE), or create it with 'saleskpi demo' or 'saleskpi import "
                  "PATH'", path=str(workspace)))


def write(text: str) -> None:
    """Machine-readable output goes to stdout untouched (no wrapping, no colour)."""
    sys.stdout.write(text + "\n")


def write_csv(text: str) -> None:
    """A CSV to stdout; first a UTF-8 byte order mark when the settings ask (``csv_bom``).

    Excel on Windows reads a CSV without one in the system's code page: Cyrillic names
    come out garbled. Programs reading the CSV (pandas, DuckDB, our own import) take it
    either way; off by default, as pipes expect. With the mark the text is UTF-8
    whatever the console's encoding, since that is what the mark says.
    """
    text = text.rstrip("\n") + "\n"
    settings: Settings | None = getattr(state, "settings", None)
    raw = getattr(sys.stdout, "buffer", None)
    if settings is None or not settings.csv_bom:
        sys.stdout.write(text)
    elif raw is None:
        sys.stdout.write("\ufeff" + text)
    else:
        sys.stdout.flush()
        raw.write("\ufeff".encode() + text.encode())
        raw.flush()


def service() -> SalesKpiService:
    from saleskpi.service.alert_hooks import watch_imports
    from saleskpi.service.core import SalesKpiService

    made = SalesKpiService(state.settings)
    watch_imports(made)  # alerts are evaluated after each import
    return made
