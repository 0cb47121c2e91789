"""CLI commands, one module per area; importing registers them on the app."""

from saleskpi.surfaces.cli.commands import (
    alerts,
    compare,
    connectors,
    data,
    forecast,
    funnel,
    kpis,
    mcp,
    plans,
    reps,
    rows,
    users,
)

__all__ = ["alerts", "compare", "connectors", "data", "forecast", "funnel", "kpis", "mcp",
           "plans", "reps", "rows", "users"]
