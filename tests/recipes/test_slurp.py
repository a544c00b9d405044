"""recipes.slurp on a tiny fake tree in SLURP's layout (generated audio, a few JSONL lines)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from recipes import slurp
from recipes.corpus_files import RecipeError
from recipes.slu_targets import write_targets
from speechprompt.data.audio import write_audio
from speechprompt.data.kaldi_dir import DataDir
from speechprompt.score.slu import read_gold


def record(slurp_id: int, words: str, intent: str, entities: list[tuple[str, list[int]]], files: list[str]) -> dict:
    scenario, action = intent.split("_", 1)
    return {"slurp_id": slurp_id, "sentence": words, "intent": intent, "scenario": scenario, "action": action,
            "tokens": [{"surface": w, "id": i, "lemma": w, "pos": "NN"} for i, w in enumerate(words.split())],
            "entities": [{"type": t, "span": s} for t, s in entities],
            "recordings": [{"file": f, "wer": 0.0, "ent_wer": 0.0, "status": "correct"} for f in files]}


SETS = {
    "train": [record(1, "wake me up at five am", "alarm_set", [("time", [4, 5])], ["audio-1-headset.flac", "audio-1.flac"]),
              record(2, "Is it raining in Paris", "weather_query", [("place_name", [4])], ["audio-2-headset.flac"])],
    "devel": [record(3, "play some jazz", "play_music", [("music_genre", [2])], ["audio-3-headset.flac", "audio-3.flac"])],
    "test": [record(4, "turn the lights off", "iot_hue_lightoff", [], ["audio-4-headset.flac", "audio-404.flac"]),
             record(5, "what time is it", "datetime_query", [], ["audio-5.flac"])],
}
MISSING_AUDIO = {"audio-404.flac"}


def make_tree(root: Path) -> Path:
    jsonl_dir = root / "slurp" / "dataset" / "slurp"
    jsonl_dir.mkdir(parents=True)
    audio = root / "slurp_real"
    audio.mkdir()
    for k, (name, records) in enumerate(SETS.items()):
        (jsonl_dir / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        for r in records:
            for rec in r["recordings"]:
                if rec["file"] not in MISSING_AUDIO:
                    n = 4000 + 800 * (k + r["slurp_id"])
                    write_audio(audio / rec["file"], 0.2 * np.sin(np.arange(n) / 9.0).astype(np.float32))
    return root


def test_import_writes_data_dirs_gold_and_counts_skipped_recordings(tmp_path, capsys):
    dirs = slurp.build(tmp_path / "out", slurp=make_tree(tmp_path / "SLURP"))
    assert sorted(dirs) == ["devel", "test", "train"]
    train = DataDir.read(dirs["train"])
    assert train.utt_ids == ["audio-1", "audio-1-headset", "audio-2-headset"]
    assert train.text["audio-2-headset"] == "is it raining in paris"
    assert train.utt2spk["audio-1"] == "audio-1"
    assert train.utt2dur["audio-1"] == pytest.approx((4000 + 800) / 16000, abs=1e-3)
    assert Path(train.wav_scp["audio-1"]).is_absolute()
    assert (dirs["train"] / "utt2intent").read_text().splitlines()[0] == "audio-1 alarm_set"

    test = DataDir.read(dirs["test"])
    assert test.utt_ids == ["audio-4-headset", "audio-5"]
    skipped = (dirs["test"] / "skipped.txt").read_text().splitlines()
    assert len(skipped) == 1 and skipped[0].startswith("audio-404\t") and "audio missing" in skipped[0]
    assert "'skipped_recordings': 1" in capsys.readouterr().out

    # the gold beside each dir is what the scorer reads, keyed by utterance id, without skipped recordings
    gold = read_gold(dirs["test"] / "slurp.jsonl")
    assert sorted(gold) == test.utt_ids
    assert gold["audio-4-headset"].annotation.intent == "iot_hue_lightoff"
    # and the targets stage runs on it
    report = write_targets(dirs["train"])
    assert report.written == 3 and not report.transcript_mismatches
    targets = (dirs["train"] / "text_slu").read_text().splitlines()
    assert "audio-1 alarm_set | wake me up at [ time : five am ]" in targets


def test_headset_only_and_rebuild_marker(tmp_path, capsys):
    tree = make_tree(tmp_path / "SLURP")
    dirs = slurp.build(tmp_path / "out", slurp=tree, sets=["devel"], recordings="headset")
    assert DataDir.read(dirs["devel"]).utt_ids == ["audio-3-headset"]
    assert "not a headset recording" in (dirs["devel"] / "skipped.txt").read_text()
    capsys.readouterr()
    slurp.build(tmp_path / "out", slurp=tree, sets=["devel"], recordings="headset")
    assert "up to date" in capsys.readouterr().out


def test_malformed_lines_name_file_and_line(tmp_path):
    tree = make_tree(tmp_path / "SLURP")
    devel = tree / "slurp" / "dataset" / "slurp" / "devel.jsonl"
    good = devel.read_text()
    devel.write_text(good + '{"slurp_id": 9, "sentence": "x"\n')
    with pytest.raises(RecipeError, match=r"devel\.jsonl:2: not valid JSON"):
        slurp.build(tmp_path / "out", slurp=tree, sets=["devel"])
    devel.write_text(good + json.dumps({"slurp_id": 9, "intent": "a_b", "sentence": "x"}) + "\n")
    with pytest.raises(RecipeError, match=r"devel\.jsonl:2: 'recordings'"):
        slurp.build(tmp_path / "out", slurp=tree, sets=["devel"])
    bad_span = record(9, "play jazz", "play_music", [("music_genre", [5])], ["audio-9.flac"])
    devel.write_text(good + json.dumps(bad_span) + "\n")
    with pytest.raises(RecipeError, match=r"devel\.jsonl:2: entity 0 \(music_genre\) span"):
        slurp.build(tmp_path / "out", slurp=tree, sets=["devel"], strict=True)
    # without strict, the sentence is skipped with its recordings, counted and listed with its line
    dirs = slurp.build(tmp_path / "out", slurp=tree, sets=["devel"])
    assert DataDir.read(dirs["devel"]).utt_ids == ["audio-3", "audio-3-headset"]
    skipped = (dirs["devel"] / "skipped.txt").read_text()
    assert skipped.startswith("audio-9\t") and "devel.jsonl:2" in skipped and "annotation: " in skipped
    assert '"skipped_bad_annotations": 1' in (tmp_path / "out" / "slurp" / ".done").read_text()


def test_missing_layout_is_explained(tmp_path):
    with pytest.raises(RecipeError, match="dataset/slurp"):
        slurp.build(tmp_path / "out", slurp=tmp_path)
    tree = make_tree(tmp_path / "SLURP")
    (tree / "slurp_real").rename(tree / "elsewhere")
    with pytest.raises(RecipeError, match="no slurp_real/ audio folder"):
        slurp.build(tmp_path / "out", slurp=tree, sets=["test"])


def test_recipe_imports_and_writes_targets(tmp_path):
    """egs/slurp/slu/run.sh stages 0-1 on the fake tree: data dirs, gold and text_slu for every set."""
    import os
    import subprocess
    import sys

    run_sh = Path(__file__).resolve().parents[2] / "egs" / "slurp" / "slu" / "run.sh"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    out = subprocess.run([str(run_sh), "--slurp", str(make_tree(tmp_path / "SLURP")), "--corpora", str(tmp_path / "c"),
                          "--exp", str(tmp_path / "exp"), "--backbone", "here", "--stop-stage", "1"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    for set_name, count in (("train", 3), ("devel", 2), ("test", 2)):
        lines = (tmp_path / "c" / "slurp" / "data" / set_name / "text_slu").read_text().splitlines()
        assert len(lines) == count
    assert (tmp_path / "exp" / ".done" / "stage1").is_file()
