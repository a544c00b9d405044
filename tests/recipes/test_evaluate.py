"""recipes.evaluate: every run of a sweep decoded and scored on another test set, without retraining."""

from __future__ import annotations

import json

import serving_fixtures as fx  # tests/ is on pytest's pythonpath

from recipes import evaluate
from speechprompt.data.kaldi_dir import DataDir
from speechprompt.results import find_runs


def test_evaluate_scores_each_run_on_the_other_test_set(tmp_path, capsys):
    backbone, tokenizer = fx.make_backbone(tmp_path)
    adapt_root = tmp_path / "adapt"
    fields = {"task": "asr", "backbone": "wav2seq", "data_size": "10min", "seed": 1, "metrics": {"wer": 50.0},
              "trainable_params": 10, "backbone_params": backbone.num_parameters(), "artifact_bytes": 100,
              "wall_seconds": 2.0, "test_set": "test_clean"}
    for seed in (1, 2):
        run_dir = adapt_root / "wav2seq" / "10min" / "prompt" / f"seed{seed}"
        fx.make_prompt_artifact(backbone, run_dir / "train" / "artifact", tokenizer, seed=seed)
        (run_dir / "result.json").write_text(json.dumps({**fields, "seed": seed, "method": "prompt"}))
    (tmp_path / "conf" / "method").mkdir(parents=True)
    (tmp_path / "conf" / "adapt.yaml").write_text("decode: {beam: 1, max_len: 8}\n")
    (tmp_path / "conf" / "method" / "prompt.yaml").write_text("method: {name: prompt}\n")
    waves = fx.write_waves(tmp_path / "audio", 3)
    utts = [f"spk-u{i}" for i in range(3)]
    DataDir(wav_scp={u: str(p) for u, p in zip(utts, waves, strict=True)}, text=dict.fromkeys(utts, "set an alarm"),
            utt2spk=dict.fromkeys(utts, "spk")).write(tmp_path / "test_other")

    argv = ["--adapt", str(adapt_root), "--backbone", str(tmp_path / "backbone"), "--test", str(tmp_path / "test_other"),
            "--conf", str(tmp_path / "conf"), "--out", str(tmp_path / "eval")]
    assert evaluate.main(argv) == 0
    runs = find_runs(tmp_path / "eval")
    assert [(r.method, r.seed, r.test_set) for r in runs] == [("prompt", 1, "test_other"), ("prompt", 2, "test_other")]
    assert all(r.metrics["wer"] >= 0 and r.metrics != {"wer": 50.0} and r.wall_seconds == 2.0 for r in runs)
    decode = json.loads((adapt_root / "wav2seq/10min/prompt/seed1/eval_test_other/decode/decode.json").read_text())
    assert decode["decoded"] == 3 and decode["settings"]["max_len"] == 8
    capsys.readouterr()
    assert evaluate.main(argv) == 0 and capsys.readouterr().out.count("done already") == 2


def test_evaluate_without_runs_or_artifacts_fails_clearly(tmp_path, capsys):
    argv = ["--adapt", str(tmp_path / "adapt"), "--backbone", "b", "--test", "t", "--out", str(tmp_path / "o")]
    assert evaluate.main(argv) == 1 and "no result.json" in capsys.readouterr().err
    run_dir = tmp_path / "adapt" / "bb" / "1h" / "lora" / "seed1"
    run_dir.mkdir(parents=True)
    (run_dir / "result.json").write_text(json.dumps({
        "task": "asr", "backbone": "bb", "method": "lora", "data_size": "1h", "seed": 1, "metrics": {"wer": 1.0},
        "trainable_params": 1, "backbone_params": 2, "artifact_bytes": 3, "wall_seconds": 4.0}))
    assert evaluate.main(argv) == 1 and "artifact" in capsys.readouterr().err
