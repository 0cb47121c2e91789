"""Which encoding a CSV file is in: decoded consistently, or refused with the line.

The policy (docs/mappings.md, "Encodings"):

1. A byte-order mark decides: UTF-8 or UTF-16, and the whole file must decode.
2. A file that decodes as UTF-8 as a whole is UTF-8.
3. A file with some lines in UTF-8 (non-ASCII text that decodes) and others not
   is refused, naming the line where the encoding changes: such a file was
   pasted together, and any single reading garbles part of it.
4. Otherwise one single-byte Cyrillic code page is chosen — Windows-1251
   (Russian and Ukrainian Excel), KOI8-R or Mac Cyrillic — when exactly one of
   them reads the file as plausible Cyrillic text (letters of the Russian and
   Ukrainian alphabets, words in lower, Title or UPPER case, a natural share
   of vowels). Anything else is refused, naming the first line that is not
   ASCII, with a hint to save the file as UTF-8.

Guessing libraries (charset-normalizer) were tried first: on short files such
as a reps.csv of a few names they read KOI8-R and Mac Cyrillic as Windows-1251
and stored garbage, which is worse than a refusal.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from saleskpi.domain.i18n import _

# Candidates for a file that is not UTF-8, in order of preference.
SINGLE_BYTE = ("cp1251", "koi8_r", "mac_cyrillic")
_NAMES = {"cp1251": "Windows-1251", "koi8_r": "KOI8-R", "mac_cyrillic": "Mac Cyrillic"}

_CYRILLIC_LETTERS = "абвгдеёжзийклмнопрстуфхцчшщъыьэюяіїєґў"
_LETTERS = _CYRILLIC_LETTERS + _CYRILLIC_LETTERS.upper()
_VOWELS = set("аеёиоуыэюяіїєАЕЁИОУЫЭЮЯІЇЄ")
# Non-ASCII characters that are not letters but common in Russian and Ukrainian
# office files: dashes, quotes, ellipsis, numero, no-break space, degree, currencies.
_PUNCTUATION = set("–—«»“”„‘’…№\u00a0°€₽₴×·§©®")
_WORD = re.compile(r"[^\W\d_]+")
# Letter frequencies of Russian text (Ukrainian letters added at theirs): the reading
# whose letters are the more common ones wins between two that both look like text.
_FREQUENCY = {
    "о": 0.110, "е": 0.085, "а": 0.080, "и": 0.074, "н": 0.067, "т": 0.063, "с": 0.055,
    "р": 0.047, "в": 0.045, "л": 0.044, "к": 0.035, "м": 0.032, "д": 0.030, "п": 0.028,
    "у": 0.026, "я": 0.020, "ы": 0.019, "ь": 0.017, "г": 0.017, "з": 0.016, "б": 0.016,
    "ч": 0.015, "й": 0.012, "х": 0.0097, "ж": 0.0094, "ш": 0.0073, "ю": 0.0064,
    "ц": 0.0048, "щ": 0.0036, "э": 0.0032, "ф": 0.0026, "ъ": 0.0004, "ё": 0.0004,
    "і": 0.05, "ї": 0.006, "є": 0.004, "ґ": 0.0005, "ў": 0.001,
}
_LOG_FREQUENCY = {letter: math.log(share) for letter, share in _FREQUENCY.items()}
# Of two readings that both look like text, the likelier must win by this much
# (mean log-frequency per letter), or the file is refused as ambiguous.
_MARGIN = 0.3
# Below this many Cyrillic letters the vowel share says nothing.
_MIN_LETTERS_FOR_VOWELS = 8
_VOWEL_SHARE = (0.25, 0.7)


@dataclass(frozen=True)
class EncodingProblem(Exception):
    """The file cannot be decoded consistently; ``line`` is 1-based."""

    line: int
    message: str
    hint: str


def decode(data: bytes) -> tuple[str, str]:
    """(text, encoding) by the policy above, or ``EncodingProblem``."""
    if data.startswith(b"\xef\xbb\xbf"):
        return _strict(data, "utf-8-sig"), "utf-8-sig"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return _strict(data, "utf-16"), "utf-16"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as exc:
        _refuse_cut_off(data, exc)
    _refuse_mixed(data)
    readings: dict[str, tuple[str, float]] = {}  # text -> (encoding, plausibility)
    for encoding in SINGLE_BYTE:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        score = plausibility(text)
        if score is not None and text not in readings:
            readings[text] = (encoding, score)
    ranked = sorted(readings.items(), key=lambda item: -item[1][1])
    if len(ranked) == 1 or (len(ranked) > 1 and ranked[0][1][1] - ranked[1][1][1] >= _MARGIN):
        text, (encoding, _score) = ranked[0]
        return text, encoding
    line = _first_non_ascii_line(data)
    if not readings:
        raise EncodingProblem(
            line,
            _("line {line}: the file is neither UTF-8 nor Cyrillic text in Windows-1251, "
              "KOI8-R or Mac Cyrillic", line=line),
            _save_as_utf8())
    raise EncodingProblem(
        line,
        _("line {line}: the file reads as text in more than one encoding ({encodings}); "
          "cannot tell which is meant", line=line,
          encodings=", ".join(_NAMES[e] for e, _s in readings.values())),
        _save_as_utf8())


def _save_as_utf8() -> str:
    return _("Save the file as UTF-8 (in Excel: Save As > CSV UTF-8) and import it again.")


def _strict(data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise EncodingProblem(
            line,
            _("line {line}: byte {byte} is not valid {encoding}, although the file "
              "starts with a {encoding} byte-order mark", line=line,
              byte=f"0x{data[exc.start]:02X}", encoding=encoding.split("-sig")[0].upper()),
            _save_as_utf8()) from None


def _refuse_cut_off(data: bytes, exc: UnicodeDecodeError) -> None:
    """A UTF-8 file (with non-ASCII text) whose last character is cut in half."""
    head = data[:exc.start]
    if exc.reason == "unexpected end of data" and not head.isascii():
        try:
            head.decode("utf-8")
        except UnicodeDecodeError:
            return
        line = data.count(b"\n") + 1
        raise EncodingProblem(
            line, _("line {line}: the file ends in the middle of a character: it was cut "
                    "off", line=line),
            _("Export or copy the file again, whole."))


def _refuse_mixed(data: bytes) -> None:
    """``EncodingProblem`` at the first line where UTF-8 lines and other lines meet."""
    last: dict[bool, int] = {}  # is UTF-8 -> the last such line with non-ASCII text
    for number, line in enumerate(data.split(b"\n"), start=1):
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
            utf8 = True
        except UnicodeDecodeError:
            utf8 = False
        other_kind = not utf8
        if other_kind in last:
            before = last[other_kind]
            message = (
                _("line {line}: the encoding changes here: line {before} is UTF-8, this "
                  "line is not", line=number, before=before) if not utf8
                else _("line {line}: the encoding changes here: line {before} is not UTF-8, "
                       "this line is", line=number, before=before))
            raise EncodingProblem(
                number, message,
                _("Part of the file was pasted from a file in another encoding. "
                  "Save the whole file as UTF-8 (in Excel: Save As > CSV UTF-8) and "
                  "import it again."))
        last[utf8] = number


def _first_non_ascii_line(data: bytes) -> int:
    for number, line in enumerate(data.split(b"\n"), start=1):
        if not line.isascii():
            return number
    return 1


def plausibility(text: str) -> float | None:
    """How much ``text`` reads like Russian or Ukrainian: the mean log-frequency of its
    Cyrillic letters, or None when it cannot be such text at all.

    None when a non-ASCII word has a letter of no Russian or Ukrainian word, mixes in
    Latin, or has an impossible case pattern ("йЧБО": KOI8-R read as Windows-1251);
    when more than a few non-ASCII characters are neither letters nor common
    punctuation ("Џетров": Mac Cyrillic read as Windows-1251); or when the share of
    vowels is unnatural. One odd word in twenty (a typo with a Latin "c") is let pass.
    """
    good = bad = vowels = 0
    frequency = 0.0
    for word in _WORD.findall(text):
        if word.isascii():
            continue
        fits = all(c in _LETTERS for c in word) and (
            word.islower() or word.isupper() or word.istitle())
        if not fits:
            bad += len(word)
            continue
        good += len(word)
        vowels += sum(c in _VOWELS for c in word)
        frequency += sum(_LOG_FREQUENCY[c.lower()] for c in word)
    odd = sum(1 for c in _WORD.sub("", text) if not c.isascii() and c not in _PUNCTUATION)
    if not good or (bad + odd) * 20 > good:
        return None
    if good >= _MIN_LETTERS_FOR_VOWELS and not (
            _VOWEL_SHARE[0] <= vowels / good <= _VOWEL_SHARE[1]):
        return None
    return frequency / good
