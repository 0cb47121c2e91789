"""A command that only reads opens the store while it starts: its own modules' imports
and the store's open overlap (``store.backend.open_ahead``; issue 12).

Apart from ``service.core`` on purpose: importing that is the work the open overlaps.
"""

from __future__ import annotations

from collections.abc import Callable

from saleskpi.domain.settings import Settings
from saleskpi.store.backend import open_ahead


def start_reading(settings: Settings) -> Callable[[], None]:
    """Begin opening the workspace's store to read; returns what closes it."""
    return open_ahead(settings)
