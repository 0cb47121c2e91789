"""A table of one entity, validated and typed: what the store's loader takes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class TypedTable:
    """Validated rows: canonical columns typed, extra columns in ``custom`` as JSON."""

    name: str
    entity: str
    frame: pd.DataFrame  # canonical columns + "custom" + "_row"
