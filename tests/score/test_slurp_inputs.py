"""SLU-F1 reads its inputs as SLURP's evaluate.py does (issue 19, point 8), on hand-computed cases.

(a) gold intent = scenario_action, not the record's ``intent``; (b) gold fillers are SLURP's
lower-cased tokens, predictions compared as written, the symmetric normalisation only under
``slu_f1_normalised``; (c) missing predictions counted as empty, and SLURP's own figure that skips
them; (d) predictions.jsonl keeps fillers as written, fillers with ``[ ] :`` round-trip.
"""

from __future__ import annotations

import json

import pytest

from speechprompt.data.text import normalize_text
from speechprompt.score.slu import read_gold, score_slu, write_slu_results
from speechprompt.score.slu_format import Entity, SluAnnotation, annotation_from_slurp, parse


def slurp_record(slurp_id, words, scenario, action, entities, files, intent=None):
    return {"slurp_id": slurp_id, "sentence": " ".join(words), "intent": intent or f"{scenario}_{action}",
            "scenario": scenario, "action": action, "tokens": [{"surface": w} for w in words],
            "entities": [{"type": t, "span": s} for t, s in entities],
            "recordings": [{"file": f} for f in files]}


def gold_file(tmp_path, *records):
    path = tmp_path / "test.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return read_gold(path)


def test_a_gold_intent_is_scenario_action(tmp_path):
    # the record's own intent field disagrees with scenario + action (as in 37 SLURP test records)
    rec = slurp_record(1, ["wake", "me", "up"], "alarm", "set", [], ["a.flac"], intent="alarm_query")
    gold = gold_file(tmp_path, rec)
    assert gold["a"].as_slurp.intent == gold["a"].annotation.intent == "alarm_set"
    assert annotation_from_slurp(rec, normalize_text).to_text() == "alarm_set | wake me up"  # training target too
    assert score_slu(gold, {"a": "alarm_set | wake me up"}).metrics()["intent_accuracy"] == 100.0
    assert score_slu(gold, {"a": "alarm_query | wake me up"}).metrics()["intent_accuracy"] == 0.0


def test_b_gold_lower_cased_prediction_as_written_normalised_figure_apart(tmp_path):
    rec = slurp_record(1, ["Wake", "me", "at", "Five", "P.M."], "alarm", "set", [("time", [3, 4])], ["a.flac"])
    gold = gold_file(tmp_path, rec)
    assert gold["a"].as_slurp.entities == [Entity("time", "five p.m.")]  # SLURP: surface.lower(), joined
    assert gold["a"].annotation.entities == [Entity("time", "five p m")]  # our normalised target
    r = score_slu(gold, {"a": "alarm_set | wake me at [ time : Five p m ]"})
    # as written: "Five p m" against "five p.m."
    #   word: Five/five substituted, p.m./p substituted, m inserted: 3 / 2 gold words = 1.5
    #   char: F->f, '.'->' ', final '.' deleted = 3 edits / max(9, 8) = 1/3
    #   TP 2, FP = FN = 1.5 + 1/3 = 11/6 -> P = R = 2 / (2 + 11/6) = 12/23
    assert r.slu.tp == 2 and r.slu.fp == pytest.approx(11 / 6) and r.slu.fn == pytest.approx(11 / 6)
    m = r.metrics()
    assert m["slu_f1"] == pytest.approx(100 * 12 / 23)
    assert m["span_f1"] == 0.0
    # both sides normalised: "five p m" == "five p m" -> 100, under its own name only
    assert m["slu_f1_normalised"] == 100.0
    assert any(line.startswith("SLU-F1-normalised 100.00 [ not SLURP's figure") for line in
               write_slu_results(r, gold, tmp_path / "out"))


def test_c_missing_prediction_counted_and_slurp_script_figure(tmp_path):
    rec = slurp_record(1, ["wake", "me", "at", "five"], "alarm", "set", [("time", [3])], ["a.flac", "b.flac"])
    gold = gold_file(tmp_path, rec)
    r = score_slu(gold, {"a": "alarm_set | wake me at [ time : five ]"})
    # a: exact (TP 1 per distance); b missing: empty prediction -> FN 1 per distance
    # counted: TP 2, FP 0, FN 2 -> P 1, R 1/2 -> F1 2/3; SLURP's script skips b: TP 2, FP 0, FN 0 -> 1
    m = r.metrics()
    assert m["slu_f1"] == pytest.approx(100 * 2 / 3) and m["slu_f1_slurp_script"] == 100.0
    assert m["intent_accuracy"] == 50.0 and m["intent_accuracy_slurp_script"] == 100.0
    lines = write_slu_results(r, gold, tmp_path / "out")
    assert "missing hypotheses: 1 of 2 (scored as empty predictions): b" in lines
    assert "SLURP's evaluate.py skips them: SLU-F1 100.00, Intent-Acc 100.00 over the 1 predicted" in lines
    report = json.loads((tmp_path / "out" / "slu.json").read_text())
    assert report["slu_f1_slurp_script"] == 100.0 and report["missing_hypotheses"] == ["b"]


def test_d_fillers_as_written_and_reserved_symbols_round_trip(tmp_path):
    annotation = SluAnnotation("alarm_set", ["at", Entity("time", "10:30"), "[laughs]", Entity("x", "a|b\\c")])
    text = annotation.to_text()
    assert text == "alarm_set | at [ time : 10\\:30 ] \\[laughs\\] [ x : a\\|b\\\\c ]"
    parsed = parse(text)
    assert parsed.errors == [] and parsed.annotation == annotation
    assert normalize_text(text, keep="[]:|_\\") == text
    # a SLURP record whose filler holds ':' keeps it in the target built without normalisation
    rec = slurp_record(1, ["at", "10:30"], "alarm", "set", [("time", [1])], ["a.flac"])
    assert parse(annotation_from_slurp(rec, None).to_text()).annotation.entities == [Entity("time", "10:30")]
    gold = gold_file(tmp_path, rec)
    assert gold["a"].as_slurp.entities == [Entity("time", "10:30")]
    r = score_slu(gold, {"a": "alarm_set | at [ time : 10\\:30 ]"})
    assert r.metrics()["slu_f1"] == 100.0
    write_slu_results(score_slu(gold, {"a": "Alarm_set | at [ time : Ten Thirty ]"}), gold, tmp_path / "out")
    pred = json.loads((tmp_path / "out" / "predictions.jsonl").read_text())
    assert pred["scenario"] == "Alarm" and pred["entities"] == [{"type": "time", "filler": "Ten Thirty"}]


def test_text_gold_slurp_view_lower_cases_fillers_only(tmp_path):
    (tmp_path / "gold.txt").write_text("u alarm_set | at [ time : Five ]\n")
    gold = read_gold(tmp_path / "gold.txt")
    assert gold["u"].as_slurp == SluAnnotation("alarm_set", [Entity("time", "five")])
