"""The SLU target format: built from SLURP records, read back exactly, tolerant of broken text."""

from __future__ import annotations

import json

import pytest

from speechprompt.data.text import normalize_text
from speechprompt.score.slu_format import (
    SLU_MARKUP,
    Entity,
    SluAnnotation,
    SluFormatError,
    annotation_from_slurp,
    parse,
    read_slurp_jsonl,
)

SENTENCE = "Wake me up at five am this Friday"
RECORD = {
    "slurp_id": 7,
    "sentence": SENTENCE,
    "intent": "alarm_set",
    "tokens": [{"surface": w} for w in SENTENCE.split()],
    "entities": [{"type": "time", "span": [4, 5]}, {"type": "date", "span": [6, 7]}],
    "recordings": [{"file": "audio-1-headset.flac"}, {"file": "audio-1.flac"}],
}
TARGET = "alarm_set | wake me up at [ time : five am ] [ date : this friday ]"


def test_target_from_tokens_and_from_sentence_annotation_agree():
    from_tokens = annotation_from_slurp(RECORD, normalize_text)
    assert from_tokens.to_text() == TARGET
    other = {"intent": "alarm_set", "sentence_annotation": "wake me up at [time : five am] [date : this Friday]"}
    assert annotation_from_slurp(other, normalize_text) == from_tokens
    scen = {"scenario": "alarm", "action": "set", "sentence": "Set an alarm!"}
    assert annotation_from_slurp(scen, normalize_text).to_text() == "alarm_set | set an alarm"


def test_round_trip_and_normaliser_keeps_markup():
    annotation = annotation_from_slurp(RECORD, normalize_text)
    parsed = parse(annotation.to_text())
    assert parsed.errors == [] and parsed.annotation == annotation
    assert annotation.transcript == "wake me up at five am this friday"
    assert annotation.entities == [Entity("time", "five am"), Entity("date", "this friday")]
    # the training-side normaliser, told to keep the markup, leaves a target unchanged
    assert normalize_text(TARGET, keep=SLU_MARKUP) == TARGET
    # SLURP's own spacing without blanks inside the brackets reads the same
    assert parse("alarm_set|wake me up at [time:five am] [date:this friday]").annotation == annotation


def test_reserved_symbols_in_words_are_escaped_and_read_back():
    record = {"intent": "x_y", "tokens": [{"surface": "a[b"}, {"surface": "c|d:e"}], "entities": [{"type": "t", "span": [1]}]}
    annotation = annotation_from_slurp(record, None)
    assert annotation.to_text() == "x_y | a\\[b [ t : c\\|d\\:e ]"
    assert parse(annotation.to_text()).annotation == annotation


@pytest.mark.parametrize(
    "text, errors, entities, transcript",
    [
        ("alarm_set | wake [ time : five am", ["unclosed slot"], [], "wake five am"),
        ("alarm_set | wake ] me", ["stray ']'"], [], "wake me"),
        ("alarm_set | [ time five am ]", ["without ':'"], [], "time five am"),
        ("alarm_set | [ : five am ]", ["empty type"], [], "five am"),
        ("alarm_set | [ time : ] up", ["empty filler"], [], "up"),
        ("alarm_set | [ time : [ date : friday ]", ["'[' inside"], [Entity("date", "friday")], "friday"),
        ("wake me up", ["no ' | '"], [], "wake me up"),
        (" | wake me", ["empty intent"], [], "wake me"),
        ("alarm_set | [ colour : red ]", ["unknown slot type 'colour'"], [Entity("colour", "red")], "red"),
        ("", ["no ' | '"], [], ""),
        ("[ ] : | ] [", None, [], ""),
    ],
)
def test_parser_counts_format_errors_and_never_raises(text, errors, entities, transcript):
    result = parse(text, known_types={"time", "date"})
    if errors is None:
        assert result.errors  # garbage: some errors, no crash
    else:
        assert len(result.errors) == len(errors)
        for got, want in zip(result.errors, errors, strict=True):
            assert want in got
    assert result.annotation.entities == entities
    assert result.annotation.transcript == transcript


def test_jsonl_reader_keys_and_errors(tmp_path):
    path = tmp_path / "test.jsonl"
    bad_span = dict(RECORD, entities=[{"type": "time", "span": [4, 6]}])
    path.write_text(json.dumps(RECORD) + "\n\n" + json.dumps(bad_span) + "\n")
    with pytest.raises(SluFormatError, match=r"test.jsonl:3: entity 0 \(time\) span \[4, 6\] is not a contiguous"):
        read_slurp_jsonl(path, normalize_text)
    path.write_text(json.dumps(RECORD) + "\n{not json\n")
    with pytest.raises(SluFormatError, match=r"test.jsonl:2: not valid JSON"):
        read_slurp_jsonl(path, normalize_text)
    path.write_text(json.dumps({"sentence": "hi", "id": "u1"}) + "\n")
    with pytest.raises(SluFormatError, match=r"test.jsonl:1: no 'intent'"):
        read_slurp_jsonl(path, normalize_text)
    path.write_text(json.dumps(RECORD) + "\n")
    (record,) = read_slurp_jsonl(path, normalize_text)
    assert record.ids == ["audio-1-headset.flac", "audio-1.flac"]
    assert record.annotation == SluAnnotation(
        "alarm_set", ["wake", "me", "up", "at", Entity("time", "five am"), Entity("date", "this friday")]
    )
