"""YAML files read through JSON copies kept by content (saleskpi.domain.yaml_files).

The copies save every command the YAML parser's time; they must never answer for
bytes other than their own, and a broken file must still be named.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from saleskpi.catalog.load import BUILTIN, CatalogError, load_catalog
from saleskpi.domain.settings import Settings
from saleskpi.domain.yaml_files import YamlError, read_yaml


def test_a_copy_is_kept_and_read_for_the_same_bytes_only(tmp_path: Path) -> None:
    path, kept = tmp_path / "kpis.yaml", tmp_path / "cache"
    path.write_text("kpis:\n  - {key: a, name: {ru: Звонки}}\n", encoding="utf-8")
    first = read_yaml(path, keep_in=kept)
    assert first == {"kpis": [{"key": "a", "name": {"ru": "Звонки"}}]}
    [copy] = kept.glob("*.json")
    assert read_yaml(path, keep_in=kept) == first
    # An edit is new bytes: parsed again, whatever the old copy says.
    path.write_text("kpis:\n  - {key: b}\n", encoding="utf-8")
    assert read_yaml(path, keep_in=kept) == {"kpis": [{"key": "b"}]}
    assert len(list(kept.glob("*.json"))) == 2
    # A copy is read, not the YAML: proof that the copy is what answers.
    path.write_text("kpis:\n  - {key: a, name: {ru: Звонки}}\n", encoding="utf-8")
    copy.write_text('{"kpis": "from the copy"}', encoding="utf-8")
    assert read_yaml(path, keep_in=kept) == {"kpis": "from the copy"}
    # A damaged copy is only a reason to parse again.
    copy.write_text('{"kpis": [', encoding="utf-8")
    assert read_yaml(path, keep_in=kept) == first


def test_data_json_would_change_is_not_kept(tmp_path: Path) -> None:
    """A YAML date, or a number as a key, would come back from JSON as something else."""
    path, kept = tmp_path / "targets.yaml", tmp_path / "cache"
    path.write_text("since: 2024-01-31\n1: one\n", encoding="utf-8")
    assert read_yaml(path, keep_in=kept) == {"since": dt.date(2024, 1, 31), 1: "one"}
    assert not list(kept.glob("*.json")) if kept.exists() else True
    assert read_yaml(path, keep_in=kept) == {"since": dt.date(2024, 1, 31), 1: "one"}


def test_broken_yaml_names_the_file_and_the_line(tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text("timezone: Europe/Kyiv\ncurrency: [USD\n", encoding="utf-8")
    with pytest.raises(YamlError, match=r"settings\.yaml, line 3, column 1: not valid YAML: "
                                        r"did not find expected ','"):
        read_yaml(path, keep_in=tmp_path / "cache")
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").glob("*.json"))


def test_the_catalogue_from_its_copy_equals_the_yaml(tmp_path: Path) -> None:
    """The service's catalogue (through the workspace's copies) is the YAML's, twice."""
    kept = tmp_path / "cache" / "yaml"
    parsed = yaml.safe_load(BUILTIN.read_text(encoding="utf-8"))
    assert read_yaml(BUILTIN, keep_in=kept) == parsed
    assert read_yaml(BUILTIN, keep_in=kept) == parsed  # now from the copy
    plain = load_catalog()
    for _ in range(2):
        through = load_catalog(keep_in=kept)
        assert through.kpis == plain.kpis


def test_settings_and_user_kpis_follow_edits(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "settings.yaml").write_text("timezone: Europe/Kyiv\n", encoding="utf-8")
    assert Settings(workspace=workspace, _env_file=None).timezone == "Europe/Kyiv"
    assert list((workspace / "cache" / "yaml").glob("*.json"))
    (workspace / "settings.yaml").write_text("timezone: Europe/Warsaw\n", encoding="utf-8")
    assert Settings(workspace=workspace, _env_file=None).timezone == "Europe/Warsaw"

    kpis = workspace / "kpis.yaml"
    kpis.write_text("kpis:\n  - {key: calls, kind: derived, name: {en: C}, formula: '1 + 1'}\n",
                    encoding="utf-8")
    keep = workspace / "cache" / "yaml"
    assert load_catalog(kpis, keep_in=keep).get("calls").kind == "derived"
    kpis.write_text("kpis:\n  - {key: calls, kind: derived, name: {en: C}, formula: 'nope +'}\n",
                    encoding="utf-8")
    with pytest.raises(CatalogError, match=r"kpis\.yaml: kpi 'calls': formula"):
        load_catalog(kpis, keep_in=keep)
