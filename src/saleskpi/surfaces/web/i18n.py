"""Page text in the caller's language, kept per request (``saleskpi.domain.i18n``)."""

from __future__ import annotations

from saleskpi.domain import i18n

# The domain's ``_`` and language: one ContextVar, set once per request, so users of
# different languages are served at the same time.
_ = i18n._
language = i18n.current_language


def use_language(preferred: str | None) -> str:
    """Speak ``preferred`` (or the best supported fallback) for the rest of this request."""
    lang = i18n.resolve_language(preferred)
    i18n.set_language(lang)
    return lang


def best_match(accept_language: str, default: str | None) -> str:
    """The first supported language of an Accept-Language header, else ``default``."""
    for part in accept_language.split(","):
        code = part.split(";")[0].strip().split("-")[0].lower()
        if code in i18n.LANGUAGES:
            return code
    return i18n.resolve_language(default)


def role_names() -> dict[str, str]:
    """Each role as the pages name it, in the reader's language."""
    return {"admin": _("admin"), "head": _("head of sales"), "team_lead": _("team lead"),
            "rep": _("rep")}
