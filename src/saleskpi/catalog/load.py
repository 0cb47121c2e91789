"""Loading and checking the KPI catalogue: built-in KPIs plus the workspace's kpis.yaml.

Every problem is reported as ``<file>: kpi '<key>': <field>: <what is wrong>`` so a
user with a typo in their own KPI knows exactly where to look.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from saleskpi.catalog.spec import KpiSpec, Measure
from saleskpi.domain.conditions import ConditionError, parse_condition
from saleskpi.domain.errors import InvalidQuery
from saleskpi.domain.i18n import _
from saleskpi.domain.schema import VIEWS, view_columns
from saleskpi.domain.suggest import did_you_mean
from saleskpi.domain.yaml_files import YamlError, read_yaml

BUILTIN = Path(__file__).parent / "builtin.yaml"


class CatalogError(InvalidQuery):
    """A KPI definition that cannot be used, or a KPI the catalogue does not have."""

    default_code = "bad_catalog"


@dataclass
class Catalog:
    kpis: dict[str, KpiSpec]

    def get(self, key: str) -> KpiSpec:
        try:
            return self.kpis[key]
        except KeyError:
            message = _("unknown KPI {key!r}", key=key) + did_you_mean(key, self.kpis)
            raise CatalogError(message + " " + _("(run 'saleskpi kpis' for the list)")) from None

    def measures(self, key: str) -> list[Measure]:
        """Every aggregation a KPI needs, following ratios and formulas."""
        spec = self.get(key)
        if spec.kind == "simple":
            return [spec.measure()]
        if spec.kind == "ratio":
            assert spec.numerator is not None and spec.denominator is not None
            return [*self._part(spec.numerator), *self._part(spec.denominator)]
        if spec.kind == "share":
            return self.measures(spec.of or "")
        return [m for ref in formula_refs(spec.formula or "") for m in self.measures(ref)]

    def _part(self, part: str | Measure) -> list[Measure]:
        return [part] if isinstance(part, Measure) else self.measures(part)


_FORMULA_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Name, ast.Constant, ast.Load,
                  ast.Add, ast.Sub, ast.Mult, ast.Div, ast.USub)


def formula_refs(formula: str) -> list[str]:
    """KPI names a formula uses; SyntaxError for anything but + - * / numbers and names."""
    tree = ast.parse(formula, mode="eval")
    for node in ast.walk(tree):
        if not isinstance(node, _FORMULA_NODES) or (
                isinstance(node, ast.Constant) and not isinstance(node.value, int | float)):
            raise SyntaxError(f"only + - * / numbers and KPI names are allowed, "
                              f"not {type(node).__name__}")
    return sorted({n.id for n in ast.walk(tree) if isinstance(n, ast.Name)})


def _read(path: Path, keep_in: Path | None) -> list[dict[str, object]]:
    try:
        data = read_yaml(path, keep_in=keep_in) or {}
    except YamlError as exc:
        raise CatalogError(str(exc)) from exc
    items = data.get("kpis") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise CatalogError(f"{path}: expected a top-level 'kpis:' list")
    return items


def _parse(path: Path, item: object) -> KpiSpec:
    key = item.get("key", "?") if isinstance(item, dict) else "?"
    try:
        return KpiSpec.model_validate({**item, "origin": str(path)} if isinstance(
            item, dict) else item)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "definition"
        message = str(err["msg"]).removeprefix("Value error, ")
        raise CatalogError(f"{path}: kpi {key!r}: {where}: {message}") from None


def _check_measure(spec: KpiSpec, field: str, measure: Measure) -> None:
    where = f"{spec.origin}: kpi {spec.key!r}: {field}"
    if measure.entity not in VIEWS:
        raise CatalogError(f"{where}: unknown entity {measure.entity!r}; use one of "
                           f"{', '.join(VIEWS)}")
    columns = view_columns(measure.entity)
    if measure.window_days is not None and measure.until is not None:
        raise CatalogError(f"{where}: give until or window_days, not both")
    for name, value in (("time", measure.time), ("column", measure.column),
                        ("until", measure.until)):
        if value is not None and value not in columns:
            raise CatalogError(
                f"{where}: {name} refers to unknown column {value!r} of {measure.entity}")
    for text in measure.where:
        try:
            condition = parse_condition(text)
        except ConditionError as exc:
            raise CatalogError(f"{where}: where: {exc}") from None
        if condition.column not in columns:
            raise CatalogError(
                f"{where}: where refers to unknown column {condition.column!r} "
                f"of {measure.entity}")


def validate(catalog: Catalog) -> None:
    """Check every reference; raise CatalogError naming file, KPI and field."""
    for spec in catalog.kpis.values():
        if spec.kind == "simple":
            _check_measure(spec, "definition", spec.measure())
        elif spec.kind == "ratio":
            for field in ("numerator", "denominator"):
                part = getattr(spec, field)
                if isinstance(part, Measure):
                    _check_measure(spec, field, part)
                elif part not in catalog.kpis:
                    raise CatalogError(f"{spec.origin}: kpi {spec.key!r}: {field} refers to "
                                       f"unknown KPI {part!r}")
        elif spec.kind == "share":
            if spec.of not in catalog.kpis:
                raise CatalogError(f"{spec.origin}: kpi {spec.key!r}: of refers to unknown "
                                   f"KPI {spec.of!r}")
        else:
            try:
                refs = formula_refs(spec.formula or "")
            except SyntaxError as exc:
                raise CatalogError(f"{spec.origin}: kpi {spec.key!r}: formula: {exc.msg}") \
                    from None
            for ref in refs:
                if ref not in catalog.kpis:
                    raise CatalogError(f"{spec.origin}: kpi {spec.key!r}: formula refers to "
                                       f"unknown KPI {ref!r}")
    _check_cycles(catalog)


def _check_cycles(catalog: Catalog) -> None:
    def visit(key: str, path: tuple[str, ...]) -> None:
        if key in path:
            origin = catalog.kpis[key].origin
            raise CatalogError(
                f"{origin}: kpi {key!r} refers to itself: {' -> '.join((*path, key))}")
        spec = catalog.kpis[key]
        refs: list[str] = []
        if spec.kind == "ratio":
            refs = [p for p in (spec.numerator, spec.denominator) if isinstance(p, str)]
        elif spec.kind == "derived":
            refs = formula_refs(spec.formula or "")
        elif spec.kind == "share" and spec.of:
            refs = [spec.of]
        for ref in refs:
            visit(ref, (*path, key))

    for key in catalog.kpis:
        visit(key, ())


def load_catalog(user_file: Path | None = None, *, keep_in: Path | None = None) -> Catalog:
    """The built-in catalogue, with the user's KPIs added or overriding by key.

    ``keep_in``: the workspace's folder of JSON copies of YAML files (read_yaml).
    """
    kpis = {spec.key: spec for spec in (_parse(BUILTIN, i) for i in _read(BUILTIN, keep_in))}
    if user_file is not None and user_file.is_file():
        for item in _read(user_file, keep_in):
            spec = _parse(user_file, item)
            kpis[spec.key] = spec
    catalog = Catalog(kpis)
    validate(catalog)
    return catalog
