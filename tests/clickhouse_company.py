"""The hand-counted Kyiv company of ``tests/test_kpi_engine.py`` in a ClickHouse
workspace: in chdb (``test_backend_clickhouse.py``) or behind ClickHouse's HTTP
interface (``test_clickhouse_server.py``)."""

from __future__ import annotations

import secrets
from pathlib import Path

from saleskpi.domain.settings import Settings, save_workspace_settings
from saleskpi.service.core import SalesKpiService
from saleskpi.store.backend import open_store
from saleskpi.store.clickhouse import ClickHouseStore
from tests import test_kpi_engine as kyiv


def write_company(folder: Path, deals: str = kyiv.DEALS) -> Path:
    """The company's canonical CSV files in ``folder`` (``deals``: another deals file)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (("reps", kyiv.REPS), ("leads", kyiv.LEADS),
                       ("activities", kyiv.ACTIVITIES), ("deals", deals)):
        (folder / f"{name}.csv").write_text(text, encoding="utf-8")
    return folder


def workspace_on(root: Path, url: str) -> Settings:
    """A new workspace under ``root`` on the ClickHouse store at ``url``, in Kyiv, UAH."""
    workspace = root / f"ws_{secrets.token_hex(3)}"
    save_workspace_settings(Settings(workspace=workspace), timezone="Europe/Kyiv",
                            currency="UAH", backend="clickhouse", backend_url=url)
    return Settings(workspace=workspace)


def imported_company(root: Path, url: str) -> tuple[Settings, Path]:
    """The company written under ``root`` and imported into a workspace on ``url``."""
    data = write_company(root / "data")
    settings = workspace_on(root, url)
    report = SalesKpiService(settings).import_path(data, mapping=None, source=None,
                                                   dry_run=False)
    assert report.ok, report.errors
    return settings, data


def store_of(settings: Settings) -> ClickHouseStore:
    store = open_store(settings)
    assert isinstance(store, ClickHouseStore)
    return store
