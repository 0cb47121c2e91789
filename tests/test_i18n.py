"""The ru and uk catalogues cover every interface message, and the CLI speaks them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from saleskpi.domain.i18n import _, current_language, set_language

REPO = Path(__file__).resolve().parents[1]
SRC_DIR = REPO / "src"
PACKAGE = SRC_DIR / "saleskpi"
LANGS = ("ru", "uk")
PLACEHOLDER = re.compile(r"\{[^{}]*\}")
# ``_('...')`` inside an f-string: pybabel does not extract these on Python < 3.12.
LITERAL_CALL = re.compile(r"""(?<![\w.])_\(\s*(?:'([^'\\]+)'|"([^"\\]+)")\s*\)""")


def po_path(lang: str) -> Path:
    return PACKAGE / "locales" / lang / "LC_MESSAGES" / "saleskpi.po"


@cache
def catalogue(lang: str) -> Catalog:
    with po_path(lang).open("rb") as handle:
        return read_po(handle, locale=lang)


@cache
def source_messages() -> frozenset[str]:
    """Every msgid of the code: Babel's extraction plus ``_('...')`` calls in f-strings."""
    found: set[str] = set()
    # Python modules and the web templates (Jinja2), as tools/update-translations.sh does.
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(PACKAGE), method_map=[("**.py", "python"), ("**/templates/**.html", "jinja2")],
        keywords={"_": None}
    ):
        found.add(message if isinstance(message, str) else message[0])
    for path in PACKAGE.rglob("*.py"):
        for match in LITERAL_CALL.finditer(path.read_text(encoding="utf-8")):
            found.add(match.group(1) or match.group(2))
    return frozenset(m for m in found if m)


def test_extraction_finds_messages() -> None:
    assert {"the file is empty", "Error", "Team average"} <= source_messages()


@pytest.mark.parametrize("lang", LANGS)
def test_every_message_is_translated(lang: str) -> None:
    catalog = catalogue(lang)
    missing = []
    for msgid in sorted(source_messages()):
        message = catalog.get(msgid)
        if message is None or not message.string or message.fuzzy:
            missing.append(msgid)
    assert not missing, (
        f"{len(missing)} message(s) have no {lang} translation in "
        f"{po_path(lang).relative_to(REPO)}:\n  " + "\n  ".join(map(repr, missing))
        + "\nRun tools/update-translations.sh, then translate them (in ru and uk)."
    )


@pytest.mark.parametrize("lang", LANGS)
def test_translations_keep_placeholders(lang: str) -> None:
    wrong = []
    for message in catalogue(lang):
        if not message.id or not message.string:
            continue
        assert isinstance(message.id, str), f"plural message {message.id!r} is not supported"
        expected = set(PLACEHOLDER.findall(message.id))
        actual = set(PLACEHOLDER.findall(str(message.string)))
        if expected != actual:
            wrong.append(f"{message.id!r}: expected {sorted(expected)}, got {sorted(actual)}")
    assert not wrong, f"placeholders differ in {lang}:\n  " + "\n  ".join(wrong)


@pytest.fixture
def restore_language() -> Iterator[None]:
    before = current_language()
    yield
    set_language(before)


@pytest.mark.usefixtures("restore_language")
def test_set_language_translates() -> None:
    set_language("uk")
    ukrainian = _("the file is empty")
    set_language("ru")
    russian = _("the file is empty")
    assert ukrainian == "файл порожній"
    assert russian == "файл пуст"
    set_language("en")
    assert _("the file is empty") == "the file is empty"


@pytest.mark.parametrize(("lang", "prefix", "foreign"), [
    ("ru", "Ошибка:", ("Error:", "Помилка:")),
    ("uk", "Помилка:", ("Error:", "Ошибка:")),
])
def test_cli_errors_in_the_chosen_language(
    tmp_path: Path, lang: str, prefix: str, foreign: tuple[str, ...]
) -> None:
    env = dict(os.environ, SALESKPI_LANG=lang, PYTHONIOENCODING="utf-8")
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(SRC_DIR), env.get("PYTHONPATH", "")) if p
    )
    argv = [sys.executable, "-m", "saleskpi", "--workspace", str(tmp_path), "kpi", "win_rat"]
    proc = subprocess.run(
        argv, capture_output=True, text=True, encoding="utf-8", env=env, timeout=300
    )
    assert proc.returncode != 0, proc.stdout
    # The KPI catalogue's own message stays English; the prefix is translated.
    assert "win_rat" in proc.stderr, proc.stderr
    assert proc.stderr.lstrip().startswith(prefix), proc.stderr
    for other in foreign:
        assert other not in proc.stderr, proc.stderr
