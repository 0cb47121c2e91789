"""CLI commands, one module per area; importing registers them on the app."""

from saleskpi.surfaces.cli.commands import (
    bonus,
    compare,
    connectors,
    contests,
    data,
    forecast,
    funnel,
    kpis,
    mcp,
    plans,
    reports,
    reps,
    rows,
    users,
)

__all__ = ["bonus", "compare", "connectors", "contests", "data", "forecast", "funnel", "kpis",
           "mcp", "plans", "reports", "reps", "rows", "users"]
