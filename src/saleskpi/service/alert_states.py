"""Stored alert states, rule runs and the audit log, for views (which read no store)."""

from __future__ import annotations

from saleskpi.store.state.alerts import LogEntry, forget_rule, last_runs, load_states, read_log

__all__ = ["LogEntry", "forget_rule", "last_runs", "load_states", "read_log"]
