"""Request parameters the API's routes share: paging and row ids, with their bounds.

Ids and offsets reach SQLite and DuckDB as 64-bit integers; a larger number would
fail inside the store (a 500), so it is refused here as an invalid request (422).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from pydantic import Field

from saleskpi.domain.query import MAX_ID
from saleskpi.views.base import MAX_LIMIT

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Rows in this page.")]
Offset = Annotated[int, Query(ge=0, le=MAX_ID, description="Rows skipped.")]
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
