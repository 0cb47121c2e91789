"""The ``saleskpi`` entry point: register the commands and run.

Errors a user can act on (``SalesKpiError``, from any layer) become "Error: message"
and ``EXIT_CODE[kind]`` in the command group itself (``saleskpi.surfaces.cli.app``),
so that tests running the app in-process see what a user sees.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Sequence

import typer

from saleskpi.surfaces.cli.app import app
from saleskpi.surfaces.cli.commands import register

# The main options that take a value (``--workspace PATH``), to find the command after them.
OPTIONS_WITH_VALUE = frozenset({"--workspace", "-w", "--lang"})


def command_name(args: Sequence[str]) -> str | None:
    """The command ``args`` (what follows ``saleskpi``) run, or None (none, or unsure)."""
    taking_value = False
    for arg in args:
        if taking_value:
            taking_value = False
        elif arg in OPTIONS_WITH_VALUE:
            taking_value = True
        elif arg in ("--", "--help"):
            return None  # the main --help lists every command
        elif not arg.startswith("-"):
            return arg
    return None


def cli_app(args: Sequence[str] | None = None) -> typer.Typer:
    """The Typer app with the commands ``args`` may run registered (None: every command).

    A command named in ``commands.COMMAND_MODULES`` registers its module alone (start-up
    is the most of a short command's time); anything else (no command, ``--help``, a
    typo to suggest a name for, shell completion) registers every command: the list
    is what it shows.
    """
    if args is None or any(n.startswith("_") and n.endswith("_COMPLETE") for n in os.environ):
        register()
    else:
        register(command_name(args))
    return app


# Objects allocated between two collections of the youngest generation (Python's
# default: 700). Starting a command allocates a few hundred thousand objects (its
# modules' functions, classes, pydantic schemas) and none is garbage, yet each
# collection walks them: 25-45 ms of a 0.4 s `saleskpi kpi` (issue 12). A cycle left
# unreachable is still collected, after more allocations.
YOUNG_GENERATION_THRESHOLD = 50_000


def main() -> None:
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, 20, 20)
    # pydantic looks for plugins (entry points of every installed package) when it
    # builds its first model: ~10 ms of each command, for plugins saleskpi has no use
    # for. Setting the variable (even empty) turns the lookup back on.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    try:
        cli_app(sys.argv[1:])()
    finally:
        # Python's exit collects every object the command made, walking them all: 40-50
        # ms of a 0.5 s `saleskpi kpi` (issue 12). The command is done and its store
        # closed; frozen objects are still freed as the modules go, only not walked.
        gc.freeze()


if __name__ == "__main__":
    main()
