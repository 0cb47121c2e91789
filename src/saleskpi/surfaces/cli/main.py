"""The ``saleskpi`` entry point: register the commands, run, map errors to exit codes."""

from __future__ import annotations

from saleskpi.domain.errors import EXIT_CODE, SalesKpiError
from saleskpi.domain.i18n import _
from saleskpi.surfaces.cli.app import app, err


def main() -> None:
    from saleskpi.surfaces.cli import commands  # noqa: F401  (registers the commands)

    try:
        app()
    except SalesKpiError as exc:
        # Every error a user can act on, from any layer: its sentence and a stable code.
        label = _("Error")
        err.print(f"[bold red]{label}:[/] {exc.message}", highlight=False)
        raise SystemExit(EXIT_CODE[exc.kind]) from None


if __name__ == "__main__":
    main()
