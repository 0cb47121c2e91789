"""CLI commands, one module per area; importing registers them on the app."""

from saleskpi.surfaces.cli.commands import (
    alerts,
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

__all__ = ["alerts", "bonus", "compare", "connectors", "contests", "data", "forecast", "funnel",
           "kpis", "mcp", "plans", "reports", "reps", "rows", "users"]
