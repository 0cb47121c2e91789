"""Records from a CRM's API as frames with the data contract's columns and dtypes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from saleskpi.domain.schema import ENTITIES, ColumnType

Row = dict[str, Any]


def _series(kind: ColumnType, values: list[Any], epoch_seconds: bool) -> pd.Series[Any]:
    if kind in (ColumnType.TIMESTAMP, ColumnType.DATE):
        if epoch_seconds:
            seconds = pd.Series(values, dtype="Int64")
            return pd.to_datetime(seconds, unit="s").astype("datetime64[us]")
        stamps = [pd.NaT if v is None else pd.Timestamp(v) for v in values]
        return pd.Series(stamps, dtype="datetime64[us]")
    if kind in (ColumnType.MONEY, ColumnType.NUMBER):
        return pd.Series([float("nan") if v is None else float(v) for v in values],
                         dtype="float64")
    if kind is ColumnType.INTEGER:
        return pd.Series(values, dtype="Int64")
    if kind is ColumnType.BOOLEAN:
        return pd.Series(values, dtype="boolean")
    return pd.Series(values, dtype=object)


def canonical_frame(entity: str, rows: Iterable[Row], *,
                    epoch_seconds: bool = False) -> pd.DataFrame:
    """Rows as a frame: the entity's columns typed, other keys kept as custom fields.

    Timestamps are naive UTC datetimes (or unix seconds with ``epoch_seconds``).
    A record read twice in one batch (paging shifts while data changes) is kept
    once, its last reading: the store would reject it twice.
    """
    rows = list(rows)
    spec = ENTITIES[entity]
    data = {c.name: _series(c.type, [r.get(c.name) for r in rows], epoch_seconds)
            for c in spec.columns}
    for name in sorted({k for r in rows for k in r} - set(spec.column_names)):
        data[name] = pd.Series([r.get(name) for r in rows], dtype=object)
    out = pd.DataFrame(data)
    return out.drop_duplicates(subset=list(spec.key), keep="last").reset_index(drop=True)
