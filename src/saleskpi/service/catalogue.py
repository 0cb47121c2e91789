"""Editing the workspace's own KPIs (kpis.yaml): validated whole before it is saved."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from saleskpi.catalog.load import Catalog, CatalogError, load_catalog
from saleskpi.domain.errors import NotFound
from saleskpi.domain.files import private_dir, write_private
from saleskpi.domain.i18n import _


def user_kpis(path: Path) -> list[dict[str, Any]]:
    """The definitions in ``path`` (kpis.yaml) as written, without the built-in ones."""
    if not path.is_file():
        return []
    import yaml  # only when editing or listing the user's own KPIs

    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    items = data.get("kpis", []) if isinstance(data, dict) else []
    return [i for i in items if isinstance(i, dict)]


def _checked(items: list[dict[str, Any]]) -> tuple[str, Catalog]:
    """``items`` as kpis.yaml text, and the catalogue they make (``CatalogError``, naming
    kpis.yaml, when they would break it)."""
    import yaml

    text = yaml.safe_dump({"kpis": items}, allow_unicode=True, sort_keys=False)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False,
                                     encoding="utf-8") as handle:
        handle.write(text)
        candidate = Path(handle.name)
    try:
        return text, load_catalog(candidate)
    except CatalogError as exc:
        raise CatalogError(str(exc).replace(str(candidate), "kpis.yaml"),
                           code="bad_kpi") from None
    finally:
        candidate.unlink(missing_ok=True)


def save_kpis(path: Path, items: list[dict[str, Any]]) -> None:
    """Write ``items`` only if the catalogue still loads with them (``CatalogError``)."""
    text, _catalog = _checked(items)  # refuse a definition that would break the catalogue
    private_dir(path.parent)
    write_private(path, text)


def _with(path: Path, key: str, definition: dict[str, Any]) -> list[dict[str, Any]]:
    items = [i for i in user_kpis(path) if i.get("key") != key]
    return [*items, {**definition, "key": key}]


def put_kpi(path: Path, key: str, definition: dict[str, Any]) -> None:
    save_kpis(path, _with(path, key, definition))


def candidate_catalog(path: Path, key: str, definition: dict[str, Any]) -> Catalog:
    """The catalogue as it would be with ``definition`` saved as ``key``, checked as saving
    checks it, without writing anything: for a preview."""
    _text, catalog = _checked(_with(path, key, definition))
    return catalog


def delete_kpi(path: Path, key: str) -> None:
    items = user_kpis(path)
    if not any(i.get("key") == key for i in items):
        raise NotFound(_("{key!r} is not a user KPI", key=key), code="not_found")
    save_kpis(path, [i for i in items if i.get("key") != key])
