"""The ``saleskpi`` entry point: register the commands and run.

Errors a user can act on (``SalesKpiError``, from any layer) become "Error: message"
and ``EXIT_CODE[kind]`` in the command group itself (``saleskpi.surfaces.cli.app``),
so that tests running the app in-process see what a user sees.
"""

from __future__ import annotations

import typer

from saleskpi.surfaces.cli.app import app


def cli_app() -> typer.Typer:
    """The Typer app with every command registered."""
    from saleskpi.surfaces.cli import commands  # noqa: F401  (registers the commands)

    return app


def main() -> None:
    cli_app()()


if __name__ == "__main__":
    main()
