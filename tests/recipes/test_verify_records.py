"""recipes.verify_records: a record's result.json is checked against its kept hypotheses."""

from __future__ import annotations

import json

from recipes import verify_records
from speechprompt.cli import main as speechprompt
from speechprompt.results import score_metrics


def make_record(root, name, normalizer="whisper_basic:es", hypotheses=True):
    """A finished asr record as recipes.adapt leaves it: decode/{ref,hyp}.trn, score/wer.json, result.json."""
    record = root / name / "seed1"
    (record / "decode").mkdir(parents=True)
    (record / "decode" / "ref.trn").write_text("presione uno para el agente (u1)\ngracias (u2)\n")
    (record / "decode" / "hyp.trn").write_text("Presione 1 para el agentes. (u1)\nGracias. (u2)\n")
    assert speechprompt(["score", "--task", "asr", "--ref", str(record / "decode" / "ref.trn"), "--hyp",
                         str(record / "decode" / "hyp.trn"), "--out", str(record / "score"),
                         "--normalizer", normalizer]) == 0
    (record / "result.json").write_text(json.dumps({"task": "asr", "metrics": score_metrics(record / "score")}))
    if not hypotheses:
        (record / "decode" / "hyp.trn").unlink()
    return record


def test_records_that_hold_what_their_hypotheses_score_pass(tmp_path, capsys):
    make_record(tmp_path, "prompt")
    make_record(tmp_path, "lora", normalizer="speechprompt")
    make_record(tmp_path, "old", hypotheses=False)
    assert verify_records.main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "2 record(s) rescored from their hypotheses, 0 difference(s); 1 record(s) keep no hypotheses" in out


def test_a_result_that_differs_from_its_hypotheses_is_named(tmp_path, capsys):
    record = make_record(tmp_path, "prompt")
    result = json.loads((record / "result.json").read_text())
    assert result["metrics"]["wer"] == 100 / 6  # "agentes": 1 error in 6 words once "1" is spelled "uno"
    result["metrics"]["wer"] = 10.0
    (record / "result.json").write_text(json.dumps(result))
    assert verify_records.main([str(tmp_path)]) == 1
    assert f"{record}: wer 10.0 recorded, {100 / 6} rescored" in capsys.readouterr().out
