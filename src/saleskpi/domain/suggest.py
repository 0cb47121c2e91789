""""Did you mean": the known names closest to one a user typed."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from anyascii import anyascii

from saleskpi.domain.i18n import _


def close_names(typed: str, known: Iterable[str], limit: int = 5) -> list[str]:
    """Known names like ``typed``: misspelt (difflib), or sharing its start, or in another
    case, or in another alphabet (a team "Київ" for "Kyiv", a rep "Анна Морозова" for
    "Anna Morozova": compared in Latin letters)."""
    names = list(dict.fromkeys(known))
    found: list[str] = []
    for fold in (str.casefold, _latin):
        folded: dict[str, str] = {}
        for name in names:
            folded.setdefault(fold(name), name)
        key = fold(typed)
        found += [folded[key]] if key in folded else []
        found += [folded[m] for m in difflib.get_close_matches(key, list(folded), n=limit,
                                                               cutoff=0.6)]
        stem = key[:4]
        found += [n for n in names if stem and stem in fold(n)]
        if " " not in typed.strip():
            # One word typed for a name of several ("Jak" for Jack Brown, "Smit" for
            # James Smith): the names with a word like it.
            words: dict[str, list[str]] = {}
            for name in names:
                for word in fold(name).split():
                    words.setdefault(word, []).append(name)
            for word in difflib.get_close_matches(key, list(words), n=limit, cutoff=0.75):
                found += words[word]
    return list(dict.fromkeys(found))[:limit]


def _latin(text: str) -> str:
    return anyascii(text).casefold()


def did_you_mean(typed: str, known: Iterable[str], *, list_up_to: int = 0) -> str:
    """"; did you mean a, b?"; when nothing is close, the known names if there are at most
    ``list_up_to`` of them; else ""."""
    names = list(known)
    close = close_names(typed, names)
    if close:
        return "; " + _("did you mean {names}?", names=", ".join(close))
    if names and len(names) <= list_up_to:
        return "; " + _("known: {names}", names=", ".join(names))
    return ""
