"""Page text in the caller's language, kept per request.

``saleskpi.domain.i18n`` keeps one language for the whole process, which is right for the
CLI; a server renders pages for users of different languages at the same time, so
the web keeps the language in a context variable (set once per request) and reads
the same gettext catalogues. ``set_language`` is still called, for the messages of
the modules the pages call.
"""

from __future__ import annotations

from contextvars import ContextVar

from saleskpi.domain import i18n

_language: ContextVar[str] = ContextVar("saleskpi_web_language", default="en")


def use_language(preferred: str | None) -> str:
    """Speak ``preferred`` (or the best supported fallback) for the rest of this request."""
    lang = i18n.resolve_language(preferred)
    _language.set(lang)
    i18n.set_language(lang)
    return lang


def language() -> str:
    return _language.get()


def _(message: str, /, **values: object) -> str:
    """Translate ``message`` into this request's language and fill in ``{values}``."""
    text = i18n._catalog(_language.get()).get(message, message)
    return text.format(**values) if values else text


def best_match(accept_language: str, default: str | None) -> str:
    """The first supported language of an Accept-Language header, else ``default``."""
    for part in accept_language.split(","):
        code = part.split(";")[0].strip().split("-")[0].lower()
        if code in i18n.LANGUAGES:
            return code
    return i18n.resolve_language(default)
