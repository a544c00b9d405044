"""Written transcripts of real recordings -> the words that are spoken.

Used for the asterisk prompts (en, es, fr) and the fillets dialogue (cs). Bracketed notes
(``[ascending tones]``) are not speech and are removed; numbers are spelled out with num2words in
the transcript's language; the phone keys ``*`` and ``#`` become the words an IVR prompt uses for
them; the rest goes through the project's ``normalize_text`` (lowercase, no punctuation), so
corpus transcripts and scoring agree. Every change is reported so a recipe can count it.

Example:
    >>> from recipes.spoken_text import spoken_form
    >>> spoken_form("Press 1, then #.", "en")
    ('press one then pound', ['numbers', 'symbols'])
"""

from __future__ import annotations

import re

from num2words import num2words

from speechprompt.data.text import normalize_text

NUM2WORDS_LANG = {"en": "en", "es": "es", "fr": "fr", "cs": "cs"}
KEY_WORDS = {  # what the prompts say for the telephone keys
    "en": {"*": "star", "#": "pound"},
    "es": {"*": "asterisco", "#": "numeral"},
    "fr": {"*": "étoile", "#": "dièse"},
    "cs": {"*": "hvězdička", "#": "mřížka"},
}
_BRACKETED = re.compile(r"\[[^\]]*\]")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


def spell_number(match: re.Match, lang: str) -> str:
    token = match.group(0)
    if "." in token or "," in token:
        whole, fraction = re.split(r"[.,]", token)
        point = {"en": "point", "es": "punto", "fr": "virgule", "cs": "celá"}[lang]
        digits = " ".join(num2words(int(d), lang=NUM2WORDS_LANG[lang]) for d in fraction)
        return f" {num2words(int(whole), lang=NUM2WORDS_LANG[lang])} {point} {digits} "
    return f" {num2words(int(token), lang=NUM2WORDS_LANG[lang])} "


def spoken_form(text: str, lang: str) -> tuple[str, list[str]]:
    """``(normalised words, list of changes made)``; the words are ``""`` when nothing is speech."""
    if lang not in NUM2WORDS_LANG:
        raise ValueError(f"unsupported language {lang!r}: choose one of {sorted(NUM2WORDS_LANG)}")
    changes = []
    if _BRACKETED.search(text):
        text = _BRACKETED.sub(" ", text)
        changes.append("annotations")
    if _NUMBER.search(text):
        text = _NUMBER.sub(lambda m: spell_number(m, lang), text)
        changes.append("numbers")
    if any(key in text for key in KEY_WORDS[lang]):
        for key, word in KEY_WORDS[lang].items():
            text = text.replace(key, f" {word} ")
        changes.append("symbols")
    # num2words writes hyphenated compounds ("twenty-one"); hyphens become spaces like all punctuation
    return normalize_text(text), changes
