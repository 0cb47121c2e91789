"""CLI commands, one module per area; importing a module registers its commands on the app.

Importing this package registers none: ``register`` imports the module of the command a
process runs, or every module (``saleskpi.surfaces.cli.main``).
"""

from __future__ import annotations

import importlib

# Each command (or command group) -> the module of this package that registers it.
# A process that runs one command imports that module only: Typer turns every
# registered command into a Click command, parameters and all, before it parses
# anything, and the other modules' imports cost start-up too (issue 12: a
# `saleskpi kpi` process against a hand-written query). tests/test_cli_startup.py
# checks that this table names every command and the module that defines it.
COMMAND_MODULES = {
    "alerts": "alerts", "bonus": "bonus", "compare": "compare", "leaderboard": "compare",
    "connect": "connectors", "sync": "connectors", "serve": "connectors",
    "contest": "contests", "import": "data", "settings": "data", "mappings": "data",
    "demo": "data", "forecast": "forecast", "funnel": "funnel", "kpi": "kpis",
    "kpis": "kpis", "mcp": "mcp", "target": "plans", "plan": "plans", "report": "reports",
    "contacts": "reports", "reps": "reps", "rows": "rows", "user": "users",
    "verify": "verify",
}


def register(command: str | None = None) -> None:
    """Register ``command``'s module; every module for None or a name not in the table."""
    module = COMMAND_MODULES.get(command or "")
    for name in [module] if module else sorted(set(COMMAND_MODULES.values())):
        importlib.import_module(f"{__name__}.{name}")
