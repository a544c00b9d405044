"""recipes.librispeech on a tiny fake LibriSpeech + Libri-light tree of generated FLAC files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from recipes import librispeech
from recipes.librispeech import LibriSpeechError
from speechprompt.data.kaldi_dir import DataDir
from speechprompt.data.validate import validate


def _chapter(folder, speaker: int, chapter: int, lines: dict[int, str], seconds: float = 0.5,
             audio_only: tuple[int, ...] = ()) -> list[str]:
    """One ``<spk>/<chapter>/`` with a FLAC per transcript line (plus ``audio_only`` extra files)."""
    path = folder / str(speaker) / str(chapter)
    path.mkdir(parents=True)
    tone = (0.1 * np.sin(2 * np.pi * 200 * np.arange(int(16000 * seconds)) / 16000)).astype(np.float32)
    for utt in (*lines, *audio_only):
        sf.write(path / f"{speaker}-{chapter}-{utt:04d}.flac", tone, 16000, format="FLAC", subtype="PCM_16")
    body = "".join(f"{speaker}-{chapter}-{utt:04d} {text}\n" for utt, text in lines.items())
    (path / f"{speaker}-{chapter}.trans.txt").write_text(body)
    return [f"{speaker}-{chapter}-{utt:04d}" for utt in lines]


@pytest.fixture
def tree(tmp_path):
    """LibriSpeech/{dev-clean,test-clean} and librispeech_finetuning/{1h/0..5,9h}/{clean,other}."""
    ids: dict[str, list[str]] = {}
    ls = tmp_path / "LibriSpeech"
    ids["dev_clean"] = _chapter(ls / "dev-clean", 84, 121123, {0: "GO DO YOU HEAR", 1: "BUT IN LESS THAN FIVE MINUTES"})
    ids["test_clean"] = _chapter(ls / "test-clean", 1089, 134686, {0: "HE HOPED THERE WOULD BE STEW", 1: "STUFF IT INTO YOU"})
    ft = tmp_path / "librispeech_finetuning"
    speaker = 100
    for fold in range(6):
        for part in ("clean", "other"):
            speaker += 1
            got = _chapter(ft / "1h" / str(fold) / part, speaker, 7, {0: f"FOLD {fold} {part.upper()}", 1: "I'M HERE"})
            ids.setdefault(f"1h/{fold}", []).extend(got)
    ids["9h"] = _chapter(ft / "9h" / "clean", 200, 9, {0: "NINE HOURS"}) + _chapter(ft / "9h" / "other", 201, 9, {3: "MORE"})
    return tmp_path, ids


def test_builds_every_set_from_the_layout(tree, tmp_path):
    root, ids = tree
    built = librispeech.build(tmp_path / "out", librispeech=root, librilight=root,
                              sets="train_10min,train_1h,train_10h,dev_clean,test_clean")
    data = {name: DataDir.read(path) for name, path in built.items()}
    assert data["train_10min"].utt_ids == sorted(ids["1h/0"])
    assert data["train_1h"].utt_ids == sorted(sum((ids[f"1h/{f}"] for f in range(6)), []))
    assert data["train_10h"].utt_ids == sorted(data["train_1h"].utt_ids + ids["9h"])
    assert data["dev_clean"].utt_ids == ids["dev_clean"]
    assert data["test_clean"].text["1089-134686-0000"] == "he hoped there would be stew"
    assert data["train_10min"].text["101-7-0001"] == "i'm here"
    assert data["test_clean"].utt2spk["1089-134686-0001"] == "1089"
    assert data["dev_clean"].durations()["84-121123-0000"] == pytest.approx(0.5)
    wav = data["dev_clean"].wav_scp["84-121123-0001"]
    assert wav == str((root / "LibriSpeech/dev-clean/84/121123/84-121123-0001.flac").resolve())
    for path in built.values():
        assert validate(path)[1] == []
    manifest = [json.loads(line) for line in (built["test_clean"] / "manifest.jsonl").read_text().splitlines()]
    assert manifest[0]["raw_text"] == "HE HOPED THERE WOULD BE STEW" and len(manifest[0]["sha256"]) == 64
    assert manifest[0]["transcript"].endswith("1089-134686.trans.txt:1")


def test_roots_may_be_the_named_folders_themselves(tree, tmp_path):
    root, ids = tree
    built = librispeech.build(tmp_path / "out", librispeech=root / "LibriSpeech",
                              librilight=root / "librispeech_finetuning", sets="train_10min,dev_clean")
    assert DataDir.read(built["train_10min"]).utt_ids == sorted(ids["1h/0"])


def test_malformed_transcript_line_names_file_and_line(tree, tmp_path):
    root, _ = tree
    trans = root / "LibriSpeech/dev-clean/84/121123/84-121123.trans.txt"
    trans.write_text(trans.read_text() + "84-121123-0002\n")
    with pytest.raises(LibriSpeechError, match=r"84-121123\.trans\.txt:3: utterance 84-121123-0002 has no transcript"):
        librispeech.build(tmp_path / "out", librispeech=root, sets="dev_clean")
    trans.write_text("84-999-0000 WRONG CHAPTER\n")
    with pytest.raises(LibriSpeechError, match=r"trans\.txt:1: utterance 84-999-0000 belongs to .* chapter 999"):
        librispeech.build(tmp_path / "out", librispeech=root, sets="dev_clean")
    trans.write_text("hello there\n")
    with pytest.raises(LibriSpeechError, match=r"trans\.txt:1: 'hello' is not an utterance id"):
        librispeech.build(tmp_path / "out", librispeech=root, sets="dev_clean")


def test_unpaired_audio_and_transcripts_are_counted_not_dropped_silently(tmp_path, capsys):
    ls = tmp_path / "LibriSpeech" / "test-clean"
    _chapter(ls, 61, 70968, {0: "HE BEGAN", 1: "A WAIL"}, audio_only=(5, 6))
    (ls / "61/70968/61-70968-0001.flac").unlink()
    built = librispeech.build(tmp_path / "out", librispeech=tmp_path, sets="test_clean")
    assert DataDir.read(built["test_clean"]).utt_ids == ["61-70968-0000"]
    report = json.loads((tmp_path / "out/librispeech/report.json").read_text())["test_clean"]
    assert report["counts"] == {"audio without transcript (skipped)": 2, "transcript without audio (skipped)": 1}
    assert report["examples"]["transcript without audio"][0].endswith("61-70968.trans.txt:2")
    assert "audio without transcript (skipped) 2" in capsys.readouterr().out
    with pytest.raises(LibriSpeechError, match="audio without transcript.*61-70968-0005.flac"):
        librispeech.build(tmp_path / "out", librispeech=tmp_path, sets="test_clean", strict=True)


def test_missing_folders_and_options_are_clear_errors(tree, tmp_path):
    root, _ = tree
    with pytest.raises(LibriSpeechError, match="set train_1h needs --librilight"):
        librispeech.build(tmp_path / "out", librispeech=root, sets="train_1h")
    with pytest.raises(LibriSpeechError, match="no test-other/ in it"):
        librispeech.build(tmp_path / "out", librispeech=root, sets="test_other")
    (root / "librispeech_finetuning/1h/3/other").rename(root / "moved")
    with pytest.raises(LibriSpeechError, match=r"missing Libri-light folder\(s\) .*1h/3/other"):
        librispeech.build(tmp_path / "out", librilight=root, sets="train_1h")
    with pytest.raises(LibriSpeechError, match="unknown"):
        librispeech.build(tmp_path / "out", librilight=root, sets="train_100h")


def test_quick_shortens_evaluation_sets_and_is_rebuilt_only_when_asked(tree, tmp_path, capsys, monkeypatch):
    root, ids = tree
    monkeypatch.setattr(librispeech, "QUICK_EVAL_SECONDS", 0.4)  # one 0.5 s utterance of each
    built = librispeech.build(tmp_path / "out", librispeech=root, librilight=root, quick=True,
                              sets="train_10min,dev_clean")
    assert DataDir.read(built["train_10min"]).utt_ids == sorted(ids["1h/0"])
    assert len(DataDir.read(built["dev_clean"]).utt_ids) == 1
    again = librispeech.build(tmp_path / "out", librispeech=root, librilight=root, quick=True,
                              sets="train_10min,dev_clean")
    assert again == built and "already built" in capsys.readouterr().out
    librispeech.build(tmp_path / "out", librispeech=root, librilight=root, sets="train_10min,dev_clean")
    assert len(DataDir.read(built["dev_clean"]).utt_ids) == 2  # other options: rebuilt
