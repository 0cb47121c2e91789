"""Messages in English, Russian and Ukrainian.

Messages are written in English in the code and translated by gettext catalogues
(``locales/<lang>/LC_MESSAGES/saleskpi.po``), read with Babel so no compile step
is needed. The language comes from settings (``SALESKPI_LANG``), else from the
system locale (``LANG``), else English.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from functools import cache
from pathlib import Path

from babel.messages.pofile import read_po

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
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=lang)
    return {
        str(m.id): str(m.string)
        for m in catalog
        if m.id and m.string and isinstance(m.id, str) and not m.fuzzy
    }


def _(message: str, /, **values: object) -> str:
    """Translate ``message`` into the current language and fill in ``{values}``."""
    text = _catalog(_current.get()).get(message, message)
    return text.format(**values) if values else text


def pick(texts: dict[str, str], fallback: str = "") -> str:
    """Choose the current language's text from a {lang: text} mapping (catalogue names)."""
    return texts.get(_current.get()) or texts.get("en") or fallback
