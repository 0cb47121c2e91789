"""CLI commands, one module per area; importing registers them on the app."""

from saleskpi.commands import compare, connectors, data, kpis, reps, users

__all__ = ["compare", "connectors", "data", "kpis", "reps", "users"]
