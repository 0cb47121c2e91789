"""YAML files read through a JSON copy kept by their content.

Every command reads the built-in KPI catalogue and the workspace's settings.yaml.
Parsing YAML costs a command about 40 ms (importing the parser ~15 ms, building the
catalogue's objects ~25 ms, even with libyaml); the same data as JSON loads in about
2 ms. So the first read of a file's content parses the YAML and keeps its JSON copy in
the workspace's cache, named by a hash of the bytes: any edit is a new name, and a
copy is read only for exactly the bytes it was made from. The cache is safe to delete.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any

from saleskpi.domain.files import keep_newest, private_dir, replace_private

# How many copies a cache folder keeps: the built-in catalogue, settings.yaml,
# kpis.yaml and funnel.yaml, a few versions of each.
KEPT_COPIES = 32


def kept_yaml_dir(workspace: Path) -> Path:
    """Where a workspace keeps the JSON copies of the YAML files it reads."""
    return workspace / "cache" / "yaml"


class YamlError(ValueError):
    """A file that is not valid YAML; the message names the file and the place."""


def read_yaml(path: Path, *, keep_in: Path | None = None) -> Any:
    """``path``'s YAML as Python data; through a JSON copy in ``keep_in`` when given.

    Raises OSError when the file cannot be read, YamlError when it is not YAML.
    """
    raw = path.read_bytes()
    copy = keep_in / f"{hashlib.sha256(raw).hexdigest()[:40]}.json" if keep_in else None
    if copy is not None:
        with contextlib.suppress(OSError, ValueError):
            return json.loads(copy.read_bytes())
    data = parse_yaml(raw.decode("utf-8"), path)
    if copy is not None and _plain(data):
        _keep(copy, json.dumps(data, ensure_ascii=False))
    return data


def parse_yaml(text: str, path: Path) -> Any:
    """YAML text as Python data, with libyaml's safe loader where it is installed."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None)
        if mark is None or problem is None:
            raise YamlError(f"{path}: not valid YAML: {exc}") from exc
        raise YamlError(f"{path}, line {mark.line + 1}, column {mark.column + 1}: not valid "
                        f"YAML: {problem} (check brackets, quotes and indentation)") from exc


def _plain(data: Any) -> bool:
    """True when JSON gives ``data`` back unchanged: no dates, no keys but text.

    A YAML date or a number as a key would come back from the copy as something else;
    such a file is parsed every time instead.
    """
    if isinstance(data, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in data.items())
    if isinstance(data, list):
        return all(_plain(v) for v in data)
    return data is None or isinstance(data, str | int | float | bool)


def _keep(copy: Path, text: str) -> None:
    """Keep the copy, whole or not at all; keep the newest ``KEPT_COPIES``. A read-only
    workspace only means parsing again."""
    with contextlib.suppress(OSError):
        folder = private_dir(copy.parent)
        replace_private(copy, text)
        keep_newest(folder, "*.json", KEPT_COPIES)
