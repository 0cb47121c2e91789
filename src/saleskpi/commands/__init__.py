"""CLI commands, one module per area; importing registers them on the app."""

from saleskpi.commands import data, kpis

__all__ = ["data", "kpis"]
