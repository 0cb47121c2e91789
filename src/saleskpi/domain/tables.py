"""A table of one entity, validated and typed: what the store's loader takes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class TypedTable:
    """Validated rows: canonical columns typed, extra columns in ``custom`` as JSON.

    Rows come either as ``frame`` or, from the fast path of an import
    (``sources/ingest/fast.py``), as ``rows``: a function that returns them as an
    Arrow stream (a ``pyarrow.RecordBatchReader``) of the same columns, ``count`` long.
    """

    name: str
    entity: str
    frame: pd.DataFrame | None  # canonical columns + "custom" + "_row"
    rows: Callable[[], Any] | None = None
    count: int = 0
    # The same rows as a temporary table of the DuckDB store's own connection, when the
    # fast path read them there: staging takes the table over (renames it).
    relation: str | None = None

    def __len__(self) -> int:
        return len(self.frame) if self.frame is not None else self.count

    def to_frame(self) -> pd.DataFrame:
        """The rows as a frame, whichever way they came."""
        if self.frame is not None:
            return self.frame
        assert self.rows is not None
        import pandas as pd
        import pyarrow as pa

        kinds = {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}
        frame: pd.DataFrame = self.rows().read_pandas(types_mapper=kinds.get)
        return frame
