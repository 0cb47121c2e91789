"""CLI commands, one module per area; importing registers them on the app."""

from saleskpi.surfaces.cli.commands import (
    compare,
    connectors,
    data,
    funnel,
    kpis,
    plans,
    reps,
    users,
)

__all__ = ["compare", "connectors", "data", "funnel", "kpis", "plans", "reps", "users"]
