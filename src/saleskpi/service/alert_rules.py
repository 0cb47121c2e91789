"""The workspace's alert rules (``alerts.yaml``): read, checked, and saved only when valid.

The web editor and the REST API change one rule at a time; power users edit the
whole YAML. Either way the file is written only if every rule in it is valid and
names KPIs the catalogue has. Changing one rule rewrites the file from the rules
(comments are kept only by editing the YAML itself).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from saleskpi.catalog.load import Catalog
from saleskpi.domain.alerts import (
    ALERTS_FILE,
    AlertRule,
    AlertRulesError,
    BehindPace,
    KpiThreshold,
    parse_rules,
    rule_data,
)
from saleskpi.domain.errors import NotFound
from saleskpi.domain.files import private_dir, write_private
from saleskpi.domain.i18n import _
from saleskpi.domain.settings import Settings

MAX_FILE = 512 * 1024  # a file of rules, not a data set


def rules_path(settings: Settings) -> Path:
    return settings.workspace / ALERTS_FILE


def rules_text(settings: Settings) -> str:
    path = rules_path(settings)
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def parse_text(text: str) -> list[AlertRule]:
    """The rules of a YAML text; ``AlertRulesError`` says where it is wrong."""
    if len(text.encode("utf-8")) > MAX_FILE:
        raise AlertRulesError(_("{file}: too large (at most 512 KB)", file=ALERTS_FILE))
    try:
        data = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else "?"
        raise AlertRulesError(_("{file}, line {line}: not valid YAML ({problem})",
                                file=ALERTS_FILE, line=line,
                                problem=getattr(exc, "problem", None) or exc)) from None
    return parse_rules(data, ALERTS_FILE)


def load_rules(settings: Settings) -> list[AlertRule]:
    return parse_text(rules_text(settings))


def check_rules(rules: list[AlertRule], catalog: Catalog) -> None:
    """KPIs the rules name must be in the catalogue."""
    for rule in rules:
        named = [rule.kpi] if isinstance(rule, KpiThreshold) else \
            list(rule.kpis) if isinstance(rule, BehindPace) else []
        for key in named:
            if key not in catalog.kpis:
                raise AlertRulesError(_(
                    "{file}: rule {rule!r}: unknown KPI {kpi!r}; see 'saleskpi kpis' for "
                    "the keys", file=ALERTS_FILE, rule=rule.name, kpi=key))


def save_text(settings: Settings, text: str, catalog: Catalog) -> list[AlertRule]:
    """Replace the whole file with ``text`` if every rule in it is valid."""
    rules = parse_text(text)
    check_rules(rules, catalog)
    _write(settings, text)
    return rules


def put_rule(settings: Settings, rule: AlertRule, catalog: Catalog) -> list[AlertRule]:
    """Add ``rule``, or replace the rule of the same name where it stands."""
    check_rules([rule], catalog)
    rules = load_rules(settings)
    names = [r.name for r in rules]
    if rule.name in names:
        rules[names.index(rule.name)] = rule
    else:
        rules.append(rule)
    _write(settings, dump(rules))
    return rules


def delete_rule(settings: Settings, name: str) -> list[AlertRule]:
    rules = load_rules(settings)
    if name not in {r.name for r in rules}:
        raise NotFound(_("no alert rule {name!r}", name=name), code="unknown_rule")
    left = [r for r in rules if r.name != name]
    _write(settings, dump(left))
    return left


def dump(rules: list[AlertRule]) -> str:
    data: dict[str, Any] = {"rules": [rule_data(r) for r in rules]}
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def find_rule(rules: list[AlertRule], name: str) -> AlertRule:
    for rule in rules:
        if rule.name == name:
            return rule
    raise NotFound(_("no alert rule {name!r}; known: {known}", name=name,
                     known=", ".join(r.name for r in rules) or "-"), code="unknown_rule")


def _write(settings: Settings, text: str) -> None:
    private_dir(settings.workspace)
    path = rules_path(settings)
    partial = path.with_name(path.name + ".new")
    write_private(partial, text)
    partial.replace(path)  # whole or not at all: a reader never sees half a file
