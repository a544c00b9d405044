from __future__ import annotations

import pytest

from speechprompt.data.text import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    UNK_ID,
    CharTokenizer,
    load_tokenizer,
    normalize_text,
    train_tokenizer,
)

TEXTS = [normalize_text(t) for t in [
    "Press one for sales.", "Please leave a message after the tone!", "Your call is important to us",
    "Thank you for calling; goodbye.", "Dobrý den, jak se máš?", "the number you have dialed is not in service",
    "to repeat this message press star", "we're sorry, all circuits are busy now",
] * 3]


def test_normalize_text():
    assert normalize_text("  Hello,   WORLD!  It’s 3 o'clock. ") == "hello world it's 3 o'clock"
    assert normalize_text("Žluťoučký kůň — 'quoted'") == "žluťoučký kůň quoted"
    assert normalize_text("flight to <city> boston </city>", keep="<>/") == "flight to <city> boston </city>"


@pytest.mark.parametrize("kind", ["char", "bpe", "unigram"])
def test_round_trip_save_load(kind, tmp_path):
    tok = train_tokenizer(kind, TEXTS, tmp_path / kind, vocab_size=60)
    assert (tok.pad_id, tok.bos_id, tok.eos_id, tok.unk_id) == (PAD_ID, BOS_ID, EOS_ID, UNK_ID) == (0, 1, 2, 3)
    loaded = load_tokenizer(tmp_path / kind)
    assert loaded.vocab_size == tok.vocab_size
    for text in TEXTS[:8]:
        ids = loaded.encode(text)
        assert ids == tok.encode(text) and min(ids) > UNK_ID and BOS_ID not in ids and EOS_ID not in ids
        assert loaded.decode(ids) == text
        assert loaded.decode([BOS_ID, *ids, EOS_ID, PAD_ID, PAD_ID]) == text
    assert not list((tmp_path / kind).glob("*.pkl"))
    if kind != "char":
        assert tok.vocab_size <= 60 and len(tok.encode(TEXTS[1])) < len(TEXTS[1])


def test_char_unknown_and_symbols(tmp_path):
    tok = train_tokenizer("char", ["ab <x> ba"], tmp_path, symbols=["<x>"])
    assert tok.encode("<x>") == [tok.tokens.index("<x>")]
    assert tok.encode("q") == [UNK_ID] and "⁇" in tok.decode(tok.encode("aqb"))
    assert isinstance(load_tokenizer(tmp_path), CharTokenizer)
    with pytest.raises(ValueError, match="unknown tokenizer kind"):
        train_tokenizer("word", ["a"], None)
