"""Editing the workspace's own KPIs (kpis.yaml): validated whole before it is saved."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml

from saleskpi.catalog.load import CatalogError, load_catalog
from saleskpi.domain.errors import NotFound
from saleskpi.domain.files import private_dir, write_private
from saleskpi.domain.i18n import _


def user_kpis(path: Path) -> list[dict[str, Any]]:
    """The definitions in ``path`` (kpis.yaml) as written, without the built-in ones."""
    if not path.is_file():
        return []
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    items = data.get("kpis", []) if isinstance(data, dict) else []
    return [i for i in items if isinstance(i, dict)]


def save_kpis(path: Path, items: list[dict[str, Any]]) -> None:
    """Write ``items`` only if the catalogue still loads with them (``CatalogError``)."""
    text = yaml.safe_dump({"kpis": items}, allow_unicode=True, sort_keys=False)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False,
                                     encoding="utf-8") as handle:
        handle.write(text)
        candidate = Path(handle.name)
    try:
        load_catalog(candidate)  # refuse a definition that would break the catalogue
    except CatalogError as exc:
        raise CatalogError(str(exc).replace(str(candidate), "kpis.yaml"),
                           code="bad_kpi") from None
    finally:
        candidate.unlink(missing_ok=True)
    private_dir(path.parent)
    write_private(path, text)


def put_kpi(path: Path, key: str, definition: dict[str, Any]) -> None:
    items = [i for i in user_kpis(path) if i.get("key") != key]
    save_kpis(path, [*items, {**definition, "key": key}])


def delete_kpi(path: Path, key: str) -> None:
    items = user_kpis(path)
    if not any(i.get("key") == key for i in items):
        raise NotFound(_("{key!r} is not a user KPI", key=key), code="not_found")
    save_kpis(path, [i for i in items if i.get("key") != key])
