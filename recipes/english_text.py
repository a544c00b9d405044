"""Real English sentences available offline, cleaned for speech synthesis.

Source: Debian's fortune cookies (``/usr/share/games/fortunes/*``, packages ``fortunes`` and
``fortunes-min``), split into sentences and normalised the way every embedded English corpus is
written: lowercase words and in-word apostrophes, no punctuation, 3-20 words. Sentences are
dropped (and counted, never silently) when a synthesiser would have to guess how to read them:
digits, symbols, acronyms, stray single letters, or words missing from ``/usr/share/dict/words``
(which also rejects code, ASCII art and typos).

Example:
    >>> from recipes.english_text import fortune_sentences
    >>> sentences, report = fortune_sentences()
    >>> report["kept"] > 10000
    True
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

FORTUNES_DIR = Path("/usr/share/games/fortunes")
DICT_WORDS = Path("/usr/share/dict/words")
MIN_WORDS, MAX_WORDS = 3, 20

_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*")
_TOKEN = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*|[^\sA-Za-z]")
# Punctuation a synthesiser reads as prosody only; anything else (digits, $, %, /, ...) is read aloud.
_SILENT_PUNCTUATION = set(".,;:!?\"'()-`")
_ATTRIBUTION = re.compile(r"^\s*(--|\t\t|~)")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
# A full stop after these ends an abbreviation, not a sentence ("Rev. Jones", "Mr. Smith").
_ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "st", "rev", "jr", "sr", "prof", "gen", "col", "capt", "lt", "sgt",
                  "mt", "no", "vs", "etc", "co", "inc", "ltd", "gov", "sen", "rep", "pres", "ave", "fig", "vol"}


class TextSourceError(RuntimeError):
    """A text source that is missing; the message says which package installs it."""


def dictionary_words(path: Path = DICT_WORDS) -> set[str]:
    """Lowercased entries of the system word list (Debian ``wamerican``)."""
    if not path.is_file():
        raise TextSourceError(f"{path} not found — install the Debian package 'wamerican'")
    return {w.strip().lower() for w in path.read_text(encoding="utf-8", errors="replace").splitlines() if w.strip()}


def fortune_files(directory: Path = FORTUNES_DIR) -> list[Path]:
    """The fortune text files (not their ``.dat``/``.u8`` indexes), sorted so the order is fixed."""
    files = sorted(p for p in directory.glob("*") if p.is_file() and "." not in p.name)
    if not files:
        raise TextSourceError(f"no fortune files in {directory} — install the Debian packages 'fortunes' and 'fortunes-min'")
    return files


def clean_sentence(sentence: str, vocabulary: set[str]) -> tuple[str | None, str]:
    """Normalise one sentence; returns ``(text, "kept")`` or ``(None, reason it was dropped)``."""
    if re.search(r"\d", sentence):
        return None, "digits"
    tokens = _TOKEN.findall(sentence.replace("&", " and "))
    if any(not t[0].isalpha() and t not in _SILENT_PUNCTUATION for t in tokens):
        return None, "symbols"
    words = [t for t in tokens if t[0].isalpha()]
    if not MIN_WORDS <= len(words) <= MAX_WORDS:
        return None, "length"
    if any(len(w) > 1 and w.isupper() for w in words):
        return None, "acronym"
    if any(len(w) == 1 and w.lower() not in ("a", "i") for w in words):
        return None, "single letter"
    if any(w.lower() not in vocabulary for w in words):
        return None, "not in dictionary"
    return " ".join(w.lower() for w in words), "kept"


def split_sentences(cookie: str) -> list[str]:
    """One fortune -> its sentences, without attribution lines (``-- Author``)."""
    lines = [line.strip() for line in cookie.splitlines() if not _ATTRIBUTION.match(line)]
    sentences: list[str] = []
    for piece in _SENTENCE_END.split(" ".join(lines)):
        last_word = _WORD.findall(sentences[-1])[-1:] if sentences else []
        if sentences and sentences[-1].endswith(".") and last_word and last_word[0].lower() in _ABBREVIATIONS:
            sentences[-1] += " " + piece
        elif piece.strip() and not piece.lstrip().startswith("--"):  # "-- Author" after the last sentence
            sentences.append(piece)
    return sentences


def fortune_sentences(directory: Path = FORTUNES_DIR, words_path: Path = DICT_WORDS) -> tuple[list[str], Counter]:
    """Unique cleaned sentences in file order, and a count of kept / dropped-by-reason / duplicates."""
    vocabulary = dictionary_words(words_path)
    seen: set[str] = set()
    kept: list[str] = []
    report: Counter = Counter()
    for path in fortune_files(directory):
        body = path.read_text(encoding="utf-8", errors="replace")
        for cookie in re.split(r"\n%\n", body):
            for sentence in split_sentences(cookie):
                text, reason = clean_sentence(sentence, vocabulary)
                if text is None:
                    report[f"dropped: {reason}"] += 1
                elif text in seen:
                    report["dropped: duplicate"] += 1
                else:
                    seen.add(text)
                    kept.append(text)
    report["kept"] = len(kept)
    return kept, report
