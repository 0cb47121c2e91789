"""Messages in English, Russian and Ukrainian.

Messages are written in English in the code and translated by gettext catalogues
(``locales/<lang>/LC_MESSAGES/saleskpi.po``), read directly so no compile step
is needed. The language comes from settings (``SALESKPI_LANG``), else from the
system locale (``LANG``), else English.

The catalogues are read by a small reader of the PO format (what Babel writes:
msgid/msgstr with continuation lines, flags, obsolete entries), not by Babel
itself: importing Babel cost a CLI command a tenth of a second before it printed
anything. tests/test_cli_startup.py checks the reader against Babel's.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from functools import cache
from pathlib import Path

LANGUAGES = ("en", "ru", "uk")
_LOCALES = Path(__file__).parent.parent / "locales"
# A ContextVar, not a global: the server answers users of different languages at once.
_current: ContextVar[str] = ContextVar("saleskpi_language", default="en")


def resolve_language(preferred: str | None = None) -> str:
    """The first supported language among the setting and the system locale."""
    for candidate in (preferred, os.environ.get("SALESKPI_LANG"), os.environ.get("LANG")):
        if candidate:
            code = candidate.split("_")[0].split(".")[0].lower()
            if code == "ua":  # a common mistake for Ukrainian
                code = "uk"
            if code in LANGUAGES:
                return code
    return "en"


def set_language(lang: str) -> None:
    _current.set(resolve_language(lang))


def current_language() -> str:
    return _current.get()


@cache
def _catalog(lang: str) -> dict[str, str]:
    path = _LOCALES / lang / "LC_MESSAGES" / "saleskpi.po"
    if lang == "en" or not path.is_file():
        return {}
    return read_translations(path.read_text(encoding="utf-8"))


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"'}


def _unquote(text: str) -> str:
    """A PO string literal's value: the quotes removed, the C escapes Babel writes undone."""
    body = text.strip()[1:-1]
    if "\\" not in body:
        return body
    out: list[str] = []
    chars = iter(body)
    for char in chars:
        if char == "\\":
            following = next(chars, "")
            out.append(_ESCAPES.get(following, "\\" + following))
        else:
            out.append(char)
    return "".join(out)


def read_translations(po_text: str) -> dict[str, str]:
    """msgid -> msgstr of a PO file's translated, non-fuzzy, singular messages.

    Comments (``#`` lines, obsolete ``#~`` entries among them) are skipped except
    the flags line; an entry ends at a blank line, a comment or the next msgid.
    """
    found: dict[str, str] = {}
    entry: dict[str, list[str]] = {}
    fuzzy = False
    field = ""

    def finish() -> None:
        msgid, msgstr = "".join(entry.get("msgid", ())), "".join(entry.get("msgstr", ()))
        if msgid and msgstr and "msgid_plural" not in entry and not fuzzy:
            found[msgid] = msgstr

    for raw in po_text.splitlines():
        line = raw.strip()
        if line.startswith('"'):
            if field:
                entry[field].append(_unquote(line))
            continue
        keyword, _sep, rest = line.partition(" ")
        if not line or line.startswith("#") or (
                keyword in ("msgctxt", "msgid") and "msgstr" in entry):
            if "msgstr" in entry:
                finish()
                entry, fuzzy, field = {}, False, ""
            if line.startswith("#,"):
                fuzzy = fuzzy or "fuzzy" in (flag.strip() for flag in line[2:].split(","))
            if not line or line.startswith("#"):
                continue
        field = "msgstr" if keyword.startswith("msgstr") else keyword
        entry.setdefault(field, []).append(_unquote(rest))
    if "msgstr" in entry:
        finish()
    return found


def _(message: str, /, **values: object) -> str:
    """Translate ``message`` into the current language and fill in ``{values}``."""
    text = _catalog(_current.get()).get(message, message)
    return text.format(**values) if values else text


def pick(texts: dict[str, str], fallback: str = "") -> str:
    """Choose the current language's text from a {lang: text} mapping (catalogue names)."""
    return texts.get(_current.get()) or texts.get("en") or fallback
