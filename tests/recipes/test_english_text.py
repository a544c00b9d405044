"""Sentence cleaning for the synthetic English corpus."""

from __future__ import annotations

from recipes import english_text

VOCAB = {"the", "cat", "sat", "on", "mat", "a", "i", "dog", "don't", "know", "jones", "rev", "fell", "and", "ran"}


def test_clean_sentence_normalises_and_drops_with_reasons():
    clean = english_text.clean_sentence
    assert clean('The cat sat on the "mat"!', VOCAB) == ("the cat sat on the mat", "kept")
    assert clean("I don't know.", VOCAB) == ("i don't know", "kept")
    assert clean("The 3 cats sat.", VOCAB) == (None, "digits")
    assert clean("The cat sat on $5.", VOCAB)[1] == "digits"
    assert clean("The cat sat on / mat.", VOCAB) == (None, "symbols")
    assert clean("The cat.", VOCAB) == (None, "length")
    assert clean("The NASA cat sat.", VOCAB) == (None, "acronym")
    assert clean("The cat sat on x.", VOCAB) == (None, "single letter")
    assert clean("The zebra sat on the mat.", VOCAB) == (None, "not in dictionary")
    assert clean("The cat & the dog ran.", VOCAB) == ("the cat and the dog ran", "kept")


def test_split_sentences_keeps_abbreviations_and_drops_attributions():
    pieces = english_text.split_sentences("The Rev. Jones fell.  The cat sat!\n\t\t-- Somebody Famous")
    assert pieces == ["The Rev. Jones fell.", "The cat sat!"]


def test_fortune_sentences_deduplicates_and_counts(tmp_path):
    fortunes = tmp_path / "fortunes"
    fortunes.mkdir()
    (fortunes / "one").write_text("The cat sat on the mat.\n%\nThe cat sat on the mat!\n%\nThe 2 dogs ran.\n%\n")
    (fortunes / "one.dat").write_bytes(b"\0\1")  # index files are ignored
    words = tmp_path / "words"
    words.write_text("\n".join(sorted(VOCAB)) + "\n")
    sentences, report = english_text.fortune_sentences(fortunes, words)
    assert sentences == ["the cat sat on the mat"]
    assert report["dropped: duplicate"] == 1 and report["dropped: digits"] == 1 and report["kept"] == 1
