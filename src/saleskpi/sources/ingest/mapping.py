"""Mappings: how someone else's export becomes the canonical data set.

A mapping is a YAML file (see docs/mappings.md). Built-in mappings live next to
this module; users keep their own in ``<workspace>/mappings/`` or pass a path.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from saleskpi.domain.errors import SalesKpiError
from saleskpi.domain.i18n import _
from saleskpi.domain.reports import ImportReport
from saleskpi.domain.schema import ENTITIES
from saleskpi.sources.ingest.files import RawTable

if TYPE_CHECKING:
    import pandas as pd

BUILTIN_DIR = Path(__file__).parent / "mappings"


class FileMapping(BaseModel):
    """How one file (or sheet) of the export maps onto one entity."""

    model_config = ConfigDict(extra="forbid")

    file: str = Field(description="file or sheet name; shell wildcards allowed")
    entity: str
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="canonical (or custom field) name: column name in the file",
    )
    values: dict[str, dict[str, str | None]] = Field(
        default_factory=dict, description="per canonical column: file value -> canonical value"
    )
    constants: dict[str, str] = Field(default_factory=dict)
    date_formats: dict[str, str] = Field(
        default_factory=dict, description="per canonical column: strptime format"
    )
    decimal_comma: bool | None = None
    keep_unmapped: bool = Field(default=True, description="keep other columns as custom fields")
    skip_rows_without: list[str] = Field(
        default_factory=list,
        description="canonical columns: rows where any of them is empty (after columns, "
        "values and constants) are left out of this entity; the count is reported",
    )

    @field_validator("entity")
    @classmethod
    def _known_entity(cls, value: str) -> str:
        if value not in ENTITIES:
            raise ValueError(f"unknown entity {value!r}; known: {', '.join(ENTITIES)}")
        return value

    @model_validator(mode="after")
    def _skip_columns_exist(self) -> FileMapping:
        if self.entity not in ENTITIES:
            return self
        known = {*ENTITIES[self.entity].column_names, *self.columns, *self.constants}
        unknown = [c for c in self.skip_rows_without if c not in known]
        if unknown:
            raise ValueError(
                f"skip_rows_without: {', '.join(map(repr, unknown))} is neither a column of "
                f"{self.entity} nor mapped in 'columns'"
            )
        return self


class Mapping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    source: str | None = Field(default=None, description="default --source for imports")
    files: list[FileMapping]
    ignore: list[str] = Field(default_factory=list, description="files to skip")

    def match(self, table_key: str) -> FileMapping | None:
        """The first entry for this file (see ``matches`` for all of them)."""
        found = self.matches(table_key)
        return found[0] if found else None

    def matches(self, table_key: str) -> list[FileMapping]:
        """Every entry for this file, in mapping order: one file may feed several entities."""
        return [spec for spec in self.files
                if fnmatch.fnmatch(table_key.lower(), spec.file.lower())]

    def ignores(self, table_key: str) -> bool:
        return any(fnmatch.fnmatch(table_key.lower(), p.lower()) for p in self.ignore)


class MappingError(SalesKpiError):
    """A mapping that cannot be found or read."""

    default_code = "bad_mapping"


def builtin_mappings() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))


def load_mapping(name_or_path: str, user_dir: Path | None = None) -> Mapping:
    """A built-in mapping by name, one in the workspace's mappings/, or a YAML path."""
    candidates = [Path(name_or_path)]
    if user_dir is not None:
        candidates.append(user_dir / f"{name_or_path}.yaml")
    candidates.append(BUILTIN_DIR / f"{name_or_path}.yaml")
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise MappingError(
            _("mapping {name!r} not found; built-in mappings: {known}",
              name=name_or_path, known=", ".join(builtin_mappings()))
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return Mapping.model_validate(data)
    except yaml.YAMLError as exc:
        raise MappingError(f"{path}: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise MappingError(f"{path}: {problems}") from exc


@dataclass
class MappedTable:
    """A file's rows under canonical column names, ready for validation."""

    name: str
    entity: str
    frame: pd.DataFrame
    date_formats: dict[str, str] = field(default_factory=dict)
    decimal_comma: bool = False


def _entity_from_name(key: str) -> str | None:
    stem = Path(key).stem.lower().strip()
    return stem if stem in ENTITIES else None


def apply_mapping(
    tables: list[RawTable], mapping: Mapping | None, report: ImportReport
) -> list[MappedTable]:
    """Rename, translate and complete columns; files that map to nothing are reported."""
    mapped: list[MappedTable] = []
    for table in tables:
        if mapping is not None and mapping.ignores(table.key):
            continue
        specs = mapping.matches(table.key) if mapping is not None else []
        if not specs:
            entity = _entity_from_name(table.key)
            if entity is None:
                report.warn(
                    "file_not_used",
                    _("{file}: not an entity name and not in the mapping; skipped",
                      file=table.name),
                    file=table.name,
                )
                continue
            specs = [FileMapping(file=table.key, entity=entity)]
        for spec in specs:
            result = _apply_spec(table, spec, report)
            if result is not None:
                mapped.append(result)
    return mapped


def _apply_spec(table: RawTable, spec: FileMapping, report: ImportReport) -> MappedTable | None:
    import pandas as pd  # only here: slow to import, and the fast path needs none

    raw = table.frame
    missing = [src for src in spec.columns.values() if src not in raw.columns]
    for src in missing:
        report.error(
            table.name, 1, src,
            _("the mapping names column {column!r}, which the file does not have", column=src),
            _("Columns in the file: {columns}", columns=", ".join(
                c for c in raw.columns if c != "_row")),
        )
    if missing:
        return None
    # Built at once: adding columns one by one is quadratic in their number.
    columns: dict[str, pd.Series] = {target: raw[src] for target, src in spec.columns.items()}
    used = set(spec.columns.values())
    if spec.keep_unmapped:
        for col in raw.columns:
            if col not in used and col not in columns:
                columns[col] = raw[col]
    else:
        columns["_row"] = raw["_row"]
    out = pd.DataFrame(columns, index=raw.index)
    for target, value in spec.constants.items():
        out[target] = out[target].fillna(value) if target in out.columns else value
    reference_columns = {c.name for c in ENTITIES[spec.entity].columns if c.references}
    for target, translation in spec.values.items():
        if target not in out.columns:
            continue
        before = out[target]
        after = before.map(lambda v, t=translation: t.get(v, v) if v is not None else None)
        changed = before.notna() & (before != after)
        if target in reference_columns and changed.any():
            pairs = (
                pd.DataFrame({"old": before[changed], "new": after[changed]})
                .value_counts()
                .head(5)
            )
            report.warn(
                "value_remapped",
                _("{file}: {count} values of {column} rewritten by the mapping "
                  "(they differ from the names in the referenced file)",
                  file=table.name, count=int(changed.sum()), column=target),
                count=int(changed.sum()), file=table.name, column=target,
                examples=[f"{pair[0]} -> {pair[1]} ({c})"  # type: ignore[index]
                          for pair, c in pairs.items()],
            )
        out[target] = after
    if spec.skip_rows_without:
        out = _skip_rows(out, table.name, spec, report)
    decimal_comma = spec.decimal_comma if spec.decimal_comma is not None else table.decimal_comma
    return MappedTable(table.name, spec.entity, out, dict(spec.date_formats), decimal_comma)


def _skip_rows(
    frame: pd.DataFrame, file: str, spec: FileMapping, report: ImportReport
) -> pd.DataFrame:
    """Leave out rows where a ``skip_rows_without`` column is empty, and say how many."""
    import pandas as pd  # only here: slow to import, and the fast path needs none

    empty = pd.Series(False, index=frame.index)
    for name in spec.skip_rows_without:
        if name not in frame.columns:
            empty[:] = True  # a column nobody mapped is empty in every row
            break
        empty |= frame[name].isna()
    count = int(empty.sum())
    if count:
        columns = ", ".join(spec.skip_rows_without)
        report.warn(
            "rows_skipped",
            _("{file}: {count} rows not imported as {entity}: {columns} empty "
              "(skip_rows_without in the mapping)",
              file=file, count=count, columns=columns, entity=spec.entity),
            count=count, file=file, column=columns,
            examples=[_("row {row}", row=int(row))
                      for row in frame.loc[empty, "_row"].head(5)],
        )
    return frame.loc[~empty]
