"""`speechprompt score` end to end on small files: printed summary, result files, clear errors."""

from __future__ import annotations

import json

import pytest

from speechprompt.cli import main


def test_score_asr(tmp_path, capsys):
    (tmp_path / "text").write_text("u1 turn the lights off\nu2 good night\n")
    (tmp_path / "hyp").write_text("u1 turn lights off\n")
    rc = main(["score", "--task", "asr", "--ref", str(tmp_path / "text"), "--hyp", str(tmp_path / "hyp"),
               "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert rc == 0
    # u1: 1 deletion; u2: no hypothesis -> 2 deletions; 3 errors / 6 words = 50 %
    assert "%WER 50.00 [ 3 / 6, 0 ins, 3 del, 0 sub ]" in out
    assert "missing hypotheses: 1" in out
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"wer.json", "wer_summary.txt", "per_utt.txt"}


def test_score_slu_with_text_gold(tmp_path, capsys):
    (tmp_path / "gold").write_text("u1 alarm_set | wake me at [ time : five am ]\nu2 weather_query | is it raining\n")
    (tmp_path / "hyp").write_text("u1 alarm_set | wake me at [ time : five am ]\nu2 weather_query | is it [ raining\n")
    rc = main(["score", "--task", "slu", "--ref", str(tmp_path / "gold"), "--hyp", str(tmp_path / "hyp"),
               "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "SLU-F1 100.00" in out and "Intent-Acc 100.00 [ 2 / 2 ]" in out
    assert "format errors: 1 in 1 of 2 utterances" in out
    report = json.loads((tmp_path / "out" / "slu.json").read_text())
    assert report["utterances_with_format_errors"] == ["u2"]


def test_unreadable_input_exits_nonzero_naming_file_and_line(tmp_path, capsys):
    (tmp_path / "text").write_text("u1 a b\nu1 c\n")
    (tmp_path / "hyp").write_text("u1 a b\n")
    rc = main(["score", "--task", "asr", "--ref", str(tmp_path / "text"), "--hyp", str(tmp_path / "hyp"),
               "--out", str(tmp_path / "out")])
    assert rc == 1
    assert f"{tmp_path / 'text'}:2: utterance 'u1' repeats line 1" in capsys.readouterr().err
    (tmp_path / "gold").write_text("u1 alarm_set | wake [ time : five\n")
    rc = main(["score", "--task", "slu", "--ref", str(tmp_path / "gold"), "--hyp", str(tmp_path / "hyp"),
               "--out", str(tmp_path / "out")])
    assert rc == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'gold'}:1: u1: gold is not in the target format: unclosed slot" in err


def test_normalizer_option_takes_a_language_and_is_recorded(tmp_path, capsys):
    (tmp_path / "text").write_text("u1 presione uno para el numero de agente\n")
    (tmp_path / "hyp").write_text("u1 Presione 1 para el número de agente.\n")
    args = ["score", "--task", "asr", "--ref", str(tmp_path / "text"), "--hyp", str(tmp_path / "hyp")]
    assert main(args + ["--out", str(tmp_path / "basic"), "--normalizer", "whisper_basic"]) == 0
    assert main(args + ["--out", str(tmp_path / "es"), "--normalizer", "whisper_basic_nodiacritics:es"]) == 0
    basic = json.loads((tmp_path / "basic" / "wer.json").read_text())
    folded = json.loads((tmp_path / "es" / "wer.json").read_text())
    assert basic["word"]["errors"] == 2 and folded["word"]["errors"] == 0
    assert folded["normalization"] == "whisper_basic_nodiacritics:es"


def test_unknown_normalizer_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "text").write_text("u1 a\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["score", "--task", "asr", "--ref", str(tmp_path / "text"), "--hyp", str(tmp_path / "text"),
              "--out", str(tmp_path / "out"), "--normalizer", "whisper_basic:klingon"])
    assert exit_info.value.code == 2
    assert "cannot spell numbers in 'klingon'" in capsys.readouterr().err
