"""Numbers written as digits -> the words that are spoken, in the text's language (num2words).

Corpus builders spell the numbers of their reference transcripts this way (``recipes/spoken_text.py``),
and the scoring normalisers of non-English Whisper checkpoints spell those of the hypotheses the same
way: a checkpoint writes "presione 1" where the reference says "presione uno", which is no word error.

Example:
    >>> spell_numbers("presione 1 o 2,5", "es")
    'presione  uno  o  dos punto cinco '
"""

from __future__ import annotations

import re

from num2words import num2words

# our language code -> num2words' (they agree for every language used so far)
NUM2WORDS_LANG = {"en": "en", "es": "es", "fr": "fr", "cs": "cs", "de": "de", "it": "it", "pt": "pt"}
DECIMAL_POINT = {"en": "point", "es": "punto", "fr": "virgule", "cs": "celá", "de": "komma", "it": "virgola",
                 "pt": "vírgula"}
NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


def spell_number(token: str, lang: str) -> str:
    """One number (``"42"``, ``"2,5"``) as words, padded with spaces; decimals digit by digit."""
    code = NUM2WORDS_LANG[lang]
    if "." in token or "," in token:
        whole, fraction = re.split(r"[.,]", token)
        digits = " ".join(num2words(int(d), lang=code) for d in fraction)
        return f" {num2words(int(whole), lang=code)} {DECIMAL_POINT[lang]} {digits} "
    return f" {num2words(int(token), lang=code)} "


def spell_numbers(text: str, lang: str) -> str:
    """``text`` with every number spelled out in ``lang`` (one of ``NUM2WORDS_LANG``)."""
    if lang not in NUM2WORDS_LANG:
        raise ValueError(f"cannot spell numbers in {lang!r}: choose one of {sorted(NUM2WORDS_LANG)}")
    return NUMBER.sub(lambda m: spell_number(m.group(0), lang), text)
