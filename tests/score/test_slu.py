"""SLU-F1 (SLURP's definition), span F1, slot-type F1 and intent accuracy on hand-worked examples.

SLURP's rule, per utterance and for each distance (word: filler WER; char: Levenshtein distance
divided by the longer filler): a predicted entity whose type is among the unmatched gold entities
takes the closest gold entity of that type: TP += 1, FP += d, FN += d; otherwise FP += 1; every
gold entity left over: FN += 1. SLU-F1 is the F1 of the word and char counts added together.
"""

from __future__ import annotations

import json

import pytest

from speechprompt.score.slu import GoldExample, read_gold, score_slu, write_slu_results
from speechprompt.score.slu_format import parse


def gold_of(**targets: str) -> dict[str, GoldExample]:
    out = {}
    for utt_id, text in targets.items():
        result = parse(text)
        assert result.errors == []
        out[utt_id] = GoldExample(f"{utt_id}.flac", result.annotation)
    return out


def score_one(gold: str, hyp: str | None):
    hyps = {} if hyp is None else {"u": hyp}
    return score_slu(gold_of(u=gold), hyps, known_types={"time", "date", "place_name"})


GOLD = "alarm_set | wake me up at [ time : five am ]"


def test_exact_match():
    m = score_one(GOLD, GOLD).metrics()
    # word and char: TP 1, FP 0, FN 0 each -> P = R = 1 -> every F1 = 100
    assert m["slu_f1"] == m["span_f1"] == m["slot_type_f1"] == m["intent_accuracy"] == 100.0
    assert m["wer"] == 0.0


def test_wrong_value():
    r = score_one(GOLD, "alarm_set | wake me up at [ time : five pm ]")
    # word distance: "five am" -> "five pm" is 1 substitution / 2 words = 0.5
    # char distance: 1 edit / max(7, 7) characters = 1/7
    # summed: TP = 1 + 1 = 2, FP = FN = 0.5 + 1/7 = 9/14
    # P = R = 2 / (2 + 9/14) = 28/37 -> SLU-F1 = 28/37 = 75.68 %
    assert r.slu.tp == 2 and r.slu.fp == pytest.approx(9 / 14) and r.slu.fn == pytest.approx(9 / 14)
    m = r.metrics()
    assert m["slu_f1"] == pytest.approx(100 * 28 / 37)
    assert m["word_f1"] == pytest.approx(100 * 1 / 1.5)  # P = R = 1 / (1 + 0.5)
    assert m["span_f1"] == 0.0  # value differs: FP 1, FN 1, TP 0
    assert m["slot_type_f1"] == 100.0 and m["intent_accuracy"] == 100.0
    assert m["wer"] == pytest.approx(100 / 6)  # transcript: 1 substitution in 6 words


def test_wrong_type():
    r = score_one(GOLD, "alarm_set | wake me up at [ date : five am ]")
    # "date" is not a gold type: FP += 1; gold "time" left over: FN += 1 (word and char alike)
    # TP = 0 -> P = R = F1 = 0
    assert (r.slu.tp, r.slu.fp, r.slu.fn) == (0, 2, 2)
    m = r.metrics()
    assert m["slu_f1"] == m["span_f1"] == m["slot_type_f1"] == 0.0
    assert m["wer"] == 0.0  # the words are right


def test_missing_and_extra_entities():
    gold = "alarm_set | wake me [ date : friday ] at [ time : five am ]"
    r = score_one(gold, "alarm_set | wake me at [ time : five am ] in the [ place_name : kitchen ]")
    # time: exact (d = 0) -> TP 1; place_name not in gold -> FP 1; date never predicted -> FN 1
    # per distance TP 1, FP 1, FN 1; summed TP 2, FP 2, FN 2 -> P = R = 0.5 -> SLU-F1 = 50 %
    assert (r.slu.tp, r.slu.fp, r.slu.fn) == (2, 2, 2)
    m = r.metrics()
    assert m["slu_f1"] == pytest.approx(50.0)
    assert m["span_f1"] == pytest.approx(50.0)  # TP 1, FP 1, FN 1
    assert m["slot_type_f1"] == pytest.approx(50.0)


def test_empty_prediction_and_missing_hypothesis():
    gold = "alarm_set | wake me up [ date : friday ] at [ time : five am ]"
    r = score_one(gold, "alarm_set | wake me up")
    # no predicted entity: TP 0, FP 0, FN 2 per distance -> P = 0 (TP + FP = 0), R = 0 -> F1 = 0
    assert (r.slu.tp, r.slu.fp, r.slu.fn) == (0, 0, 4)
    assert r.metrics()["slu_f1"] == 0.0 and r.metrics()["intent_accuracy"] == 100.0
    missing = score_one(gold, None)
    assert missing.missing == ["u"] and missing.metrics()["intent_accuracy"] == 0.0
    assert missing.metrics()["wer"] == 100.0  # all 7 words deleted


def test_malformed_tags_are_format_errors():
    gold = "alarm_set | wake me up at [ time : five am ] [ date : friday ]"
    r = score_one(gold, "alarm_set | wake me up at [ time : five am ] [ date friday")
    # the unclosed "[ date friday" is one format error and no entity; its words stay in the transcript
    # entities: time exact -> TP 1 per distance; date unmatched -> FN 1 per distance
    # P = 2 / 2 = 1, R = 2 / 4 = 0.5 -> F1 = 2 * 0.5 / 1.5 = 2/3
    assert r.format_errors == 1
    m = r.metrics()
    assert m["slu_f1"] == pytest.approx(100 * 2 / 3)
    # transcript "... five am date friday" against "... five am friday": 1 insertion / 7 words
    assert m["wer"] == pytest.approx(100 / 7)


def test_closest_gold_entity_is_matched_per_distance():
    gold = "alarm_set | at [ time : five am ] or [ time : six pm ]"
    r = score_one(gold, "alarm_set | at [ time : six am ]")
    # word: "six am" vs "five am" = 1/2, vs "six pm" = 1/2 -> tie, the first gold wins: d = 0.5
    #   TP 1, FP 0.5, FN 0.5 + 1 (the other gold time) = 1.5
    # char: vs "five am" = 3/7 (s->f, x->v, +e), vs "six pm" = 1/6 -> "six pm": d = 1/6
    #   TP 1, FP 1/6, FN 1/6 + 1 = 7/6
    # summed: TP 2, FP 2/3, FN 8/3 -> P = 3/4, R = 3/7 -> F1 = 2 (9/28) / (33/28) = 6/11
    assert r.slu.fp == pytest.approx(2 / 3) and r.slu.fn == pytest.approx(8 / 3)
    assert r.metrics()["slu_f1"] == pytest.approx(100 * 6 / 11)


def test_word_distance_can_exceed_one_as_in_slurp():
    r = score_one("alarm_set | [ time : am ]", "alarm_set | [ time : at five am ]")
    # word: 2 insertions / 1 gold word = 2 -> TP 1, FP 2, FN 2 (no clipping, like jiwer.wer in SLURP)
    assert r.word["time"].fp == 2.0 and r.word["time"].fn == 2.0


def test_slurp_jsonl_gold_and_result_files(tmp_path):
    record = {
        "slurp_id": 1, "intent": "alarm_set", "sentence": "wake me up at five am",
        "tokens": [{"surface": w} for w in "wake me up at five am".split()],
        "entities": [{"type": "time", "span": [4, 5]}],
        "recordings": [{"file": "audio-a.flac"}, {"file": "audio-b.flac"}],
    }
    (tmp_path / "test.jsonl").write_text(json.dumps(record) + "\n")
    gold = read_gold(tmp_path / "test.jsonl")
    assert sorted(gold) == ["audio-a", "audio-b"]
    result = score_slu(gold, {"audio-a": "alarm_set | wake me up at [ time : five am ]", "other": "x | y"})
    assert result.missing == ["audio-b"] and result.extra == ["other"]
    write_slu_results(result, gold, tmp_path / "out")
    lines = (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()
    preds = [json.loads(line) for line in lines]
    # one line per gold recording, the missing one included (empty prediction)
    assert preds[0] == {"file": "audio-a.flac", "scenario": "alarm", "action": "set",
                        "entities": [{"type": "time", "filler": "five am"}], "transcript": "wake me up at five am"}
    assert preds[1]["file"] == "audio-b.flac" and preds[1]["entities"] == []
    report = json.loads((tmp_path / "out" / "slu.json").read_text())
    # audio-a: TP 1 per distance; audio-b: FN 1 per distance -> P = 1, R = 0.5, F1 = 2/3
    assert report["slu_f1"] == pytest.approx(100 * 2 / 3)
    assert report["missing_hypotheses"] == ["audio-b"]
    assert (tmp_path / "out" / "wer.json").exists() and (tmp_path / "out" / "slu_summary.txt").exists()
