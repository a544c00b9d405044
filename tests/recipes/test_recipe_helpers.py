"""The small helpers the egs recipes call: recipes.dev_split and recipes.check_backbone."""

from __future__ import annotations

import json

import pytest

from recipes import check_backbone, dev_split
from recipes.corpus_files import RecipeError, Utterance, write_data_dir, write_jsonl
from speechprompt.data.kaldi_dir import DataDir

TEXTS = ["press one", "press two", "goodbye", "please hold", "press one", "thank you", "goodbye", "try again"]


@pytest.fixture
def source(tmp_path):
    """A data dir of 8 two-second utterances, two sentences said twice (audio is never read)."""
    utts = [Utterance(f"spk-{i:02d}", "spk", text, str(tmp_path / f"{i}.flac"), 2.0) for i, text in enumerate(TEXTS)]
    path = tmp_path / "test"
    write_data_dir(path, utts)
    write_jsonl(path / "manifest.jsonl", [{"utt_id": u.utt_id, "raw_text": u.text.upper()} for u in utts])
    return path


def test_dev_split_keeps_transcript_groups_together_and_is_deterministic(source, tmp_path):
    dev, rest = dev_split.split_dev(source, tmp_path / "dev", tmp_path / "rest", seconds=5.0, seed=1)
    assert sorted(dev.utt_ids + rest.utt_ids) == DataDir.read(source).utt_ids
    assert not set(dev.utt_ids) & set(rest.utt_ids)
    assert sum(dev.durations().values()) >= 5.0 and len(dev.utt_ids) <= 4
    assert not set(dev.text.values()) & set(rest.text.values())  # no sentence on both sides
    again, _ = dev_split.split_dev(source, tmp_path / "dev2", tmp_path / "rest2", seconds=5.0, seed=1)
    assert again.utt_ids == dev.utt_ids
    others = {tuple(dev_split.split_dev(source, tmp_path / f"d{s}", tmp_path / f"r{s}", 5.0, seed=s)[0].utt_ids)
              for s in range(2, 8)}
    assert len(others) > 1  # the seed matters
    written = DataDir.read(tmp_path / "rest")
    assert written.utt_ids == rest.utt_ids and written.durations() == rest.durations()
    manifest = [json.loads(x) for x in (tmp_path / "dev" / "manifest.jsonl").read_text().splitlines()]
    assert [r["utt_id"] for r in manifest] == dev.utt_ids


def test_dev_split_refuses_to_take_everything(source, tmp_path):
    with pytest.raises(RecipeError, match="not enough to keep anything"):
        dev_split.split_dev(source, tmp_path / "dev", tmp_path / "rest", seconds=100.0)
    assert dev_split.main([str(source), "--seconds", "100", "--dev", str(tmp_path / "d"),
                           "--rest", str(tmp_path / "r")]) == 1


def test_check_backbone_says_how_to_build_a_missing_one(tmp_path):
    with pytest.raises(RecipeError, match=r"does not exist — build it with: cd egs/synth/asr && ./run.sh"):
        check_backbone.check_backbone(tmp_path / "wav2seq", made_by="cd egs/synth/asr && ./run.sh --stop-stage 2")
    (tmp_path / "half").mkdir()
    with pytest.raises(RecipeError, match="not a backbone folder .*--backbone DIR"):
        check_backbone.check_backbone(tmp_path / "half")
    assert check_backbone.main([str(tmp_path / "half")]) == 1


def test_check_backbone_loads_a_saved_backbone(tmp_path):
    from speechprompt.backbones import build_backbone

    backbone = build_backbone("wav2vec2", "tiny", 12)
    backbone.save_pretrained(tmp_path / "bb")
    line = check_backbone.check_backbone(tmp_path / "bb")
    assert f"{backbone.num_parameters():,} parameters" in line and "vocabulary 12" in line
    (tmp_path / "bb" / "model.safetensors").write_bytes(b"broken")
    with pytest.raises(RecipeError, match="does not load"):
        check_backbone.check_backbone(tmp_path / "bb")


def test_size_label_is_a_label_the_report_orders_by_hours(tmp_path, capsys):
    from recipes.data_size import main, size_label
    from speechprompt.report import _SIZE

    labels = [size_label(s) for s in (5, 600, 3600, 5400, 36000)]
    assert labels == ["5s", "10min", "1h", "1.5h", "10h"]
    assert all(_SIZE.match(label) for label in labels)
    with pytest.raises(ValueError):
        size_label(-1)
    utts = [Utterance(f"spk-{i}", "spk", "hello", str(tmp_path / f"{i}.flac"), 45.0) for i in range(4)]
    write_data_dir(tmp_path / "train", utts)
    assert main([str(tmp_path / "train")]) == 0 and capsys.readouterr().out.strip() == "3min"
