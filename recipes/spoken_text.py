"""Written transcripts of real recordings -> the words that are spoken.

Used for the asterisk prompts (en, es, fr) and the fillets dialogue (cs). Bracketed notes
(``[ascending tones]``) are not speech and are removed; numbers are spelled out with num2words in
the transcript's language (``speechprompt.data.spoken_numbers``, which the scoring normalisers of
non-English checkpoints use too); the phone keys ``*`` and ``#`` become the words an IVR prompt uses
for them; the rest goes through the project's ``normalize_text`` (lowercase, no punctuation), so
corpus transcripts and scoring agree. Every change is reported so a recipe can count it.

Example:
    >>> from recipes.spoken_text import spoken_form
    >>> spoken_form("Press 1, then #.", "en")
    ('press one then pound', ['numbers', 'symbols'])
"""

from __future__ import annotations

import re

from speechprompt.data.spoken_numbers import NUMBER, spell_numbers
from speechprompt.data.text import normalize_text

KEY_WORDS = {  # what the prompts say for the telephone keys
    "en": {"*": "star", "#": "pound"},
    "es": {"*": "asterisco", "#": "numeral"},
    "fr": {"*": "étoile", "#": "dièse"},
    "cs": {"*": "hvězdička", "#": "mřížka"},
}
_BRACKETED = re.compile(r"\[[^\]]*\]")


def spoken_form(text: str, lang: str) -> tuple[str, list[str]]:
    """``(normalised words, list of changes made)``; the words are ``""`` when nothing is speech."""
    if lang not in KEY_WORDS:
        raise ValueError(f"unsupported language {lang!r}: choose one of {sorted(KEY_WORDS)}")
    changes = []
    if _BRACKETED.search(text):
        text = _BRACKETED.sub(" ", text)
        changes.append("annotations")
    if NUMBER.search(text):
        text = spell_numbers(text, lang)
        changes.append("numbers")
    if any(key in text for key in KEY_WORDS[lang]):
        for key, word in KEY_WORDS[lang].items():
            text = text.replace(key, f" {word} ")
        changes.append("symbols")
    # num2words writes hyphenated compounds ("twenty-one"); hyphens become spaces like all punctuation
    return normalize_text(text), changes
