"""The sales funnel from deal stage history: conversion, drop-off, time in stage, and
the open pipeline as of any past date. Pure functions over an ``AnalyticsStore``, so
the CLI, the API and the web show the same numbers; see docs/funnel.md.

Example::

    from saleskpi.funnel import FunnelOptions, run_funnel
    report = run_funnel(settings, scope, FunnelOptions(by_rep=True))
    report.to_dict()
"""

from __future__ import annotations

from saleskpi.funnel.compute import compute_funnel, run_funnel, stage_orders
from saleskpi.funnel.config import FUNNEL_FILE, FunnelConfig, FunnelError, load_funnel_config
from saleskpi.funnel.model import (
    LEAK_GAP,
    FunnelOptions,
    FunnelReport,
    FunnelSlice,
    PipelineFunnel,
    StageRow,
)

__all__ = [
    "FUNNEL_FILE",
    "LEAK_GAP",
    "FunnelConfig",
    "FunnelError",
    "FunnelOptions",
    "FunnelReport",
    "FunnelSlice",
    "PipelineFunnel",
    "StageRow",
    "compute_funnel",
    "load_funnel_config",
    "run_funnel",
    "stage_orders",
]
