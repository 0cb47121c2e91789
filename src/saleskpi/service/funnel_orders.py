"""The funnel's stage orders kept in the workspace, for the next process.

Learning the order reads every deal's stage history (seconds at a million deals);
it depends only on the data and funnel.yaml. The server keeps it in memory per data
version; this file keeps it across processes (a CLI command, a restarted server),
under the same key, so the order is learned once per write, not once per process.
A cache: safe to delete, and ignored when unreadable or written for other data.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from saleskpi.domain.files import private_dir, replace_private
from saleskpi.domain.settings import Settings

if TYPE_CHECKING:
    from saleskpi.engine.funnel import StageOrders

Key = tuple[tuple[int, ...], str]


def orders_path(settings: Settings) -> Path:
    return settings.compiled_sql_dir.parent / "funnel-order.json"


def _key_data(settings: Settings, key: Key) -> list[Any]:
    """The key, and which store it is of: a workspace switched to another database whose
    data version happens to be the same does not read the other's order."""
    version, config = key
    url = settings.backend_url.get_secret_value() if settings.backend_url else ""
    store = hashlib.sha256(f"{settings.backend} {url}".encode()).hexdigest()
    return [store, list(version), config]


def read_orders(settings: Settings, key: Key) -> StageOrders | None:
    """The orders kept for ``key`` (data version, funnel.yaml), or None."""
    try:
        kept = json.loads(orders_path(settings).read_text(encoding="utf-8"))
        if kept["key"] != _key_data(settings, key):
            return None
        return {pipeline: (list(stages), str(source))
                for pipeline, stages, source in kept["orders"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_orders(settings: Settings, key: Key, orders: StageOrders) -> None:
    """Keep ``orders`` for ``key``; a workspace that cannot be written keeps nothing."""
    path = orders_path(settings)
    data = {"key": _key_data(settings, key),
            "orders": [[pipeline, stages, source]
                       for pipeline, (stages, source) in orders.items()]}
    try:
        private_dir(path.parent)
        # 0600 like every workspace file: the stage names are the company's.
        replace_private(path, json.dumps(data, ensure_ascii=False))
    except OSError:
        return
