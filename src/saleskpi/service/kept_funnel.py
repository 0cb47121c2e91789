"""The head of sales's funnel from kept events: built after each write, read by every process.

Ordering every deal's stage history is most of the cost of the head of sales's
funnel (a second at a million deals), and it is the same for every question until
the data changes. So the server's background refresh writes every deal's ordered
events once per data version (``saleskpi.engine.funnel.keep_events``) into
``cache/funnel/<key>/``, and any process answering a funnel without a scope for that data
reads them instead. A question asked before they are built is answered as before.
A cache: safe to delete; a folder for other data is never read, as its name is a
hash of everything its rows depend on (``kept_key``).
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from saleskpi.catalog.funnel import FunnelConfig
from saleskpi.domain.files import private_dir
from saleskpi.domain.settings import Settings
from saleskpi.engine.database import Database
from saleskpi.engine.funnel import StageOrders, keep_events, kept_key

log = logging.getLogger("saleskpi.service.kept_funnel")
# Folders kept besides the newest: a question that found the one before a write still
# reads it while the next is built.
KEEP = 2
# A folder still being written is named "*.part"; one this old was left by a crash.
STALE_PART_SECONDS = 3600.0


def kept_folder(settings: Settings, store: Database, config: FunnelConfig,
                orders: StageOrders, version: tuple[int, ...]) -> Path | None:
    """The folder of kept events for this data, if it was built."""
    folder = settings.kept_funnel_dir / kept_key(store, settings, config, orders, version)
    return folder if folder.is_dir() else None


def keep(settings: Settings, store: Database, config: FunnelConfig, orders: StageOrders,
         version: tuple[int, ...]) -> Path | None:
    """Build the kept events for this data unless they are there; the new folder, or
    None when there was nothing to do."""
    folder = settings.kept_funnel_dir / kept_key(store, settings, config, orders, version)
    if folder.is_dir():
        return None
    private_dir(folder.parent)
    started = time.monotonic()
    keep_events(store, settings, config, orders, folder)
    log.info("kept the funnel's events in %.1f s", time.monotonic() - started)
    _trim(folder.parent)
    return folder


def _trim(parent: Path) -> None:
    """Keep the newest ``KEEP`` folders; remove what crashed builds left."""
    now = time.time()
    built: list[tuple[float, Path]] = []
    for entry in parent.iterdir():
        try:
            modified = entry.stat().st_mtime
        except FileNotFoundError:
            continue  # another process trimmed it
        if entry.name.endswith(".part"):
            if now - modified > STALE_PART_SECONDS:
                shutil.rmtree(entry, ignore_errors=True)
        elif entry.is_dir():
            built.append((modified, entry))
    for _modified, entry in sorted(built, reverse=True)[KEEP:]:
        shutil.rmtree(entry, ignore_errors=True)
