"""Per-utterance problems stay per utterance (issue 19, point 4): too-short audio is skipped and
reported by decode / transcribe and flagged by `data validate`; truncated WAVs, stale utt2dur,
all-silent audio and transcripts that normalise to nothing are detected and reported with ids."""

from __future__ import annotations

import json
import logging
import struct

import numpy as np
import pytest
import serving_fixtures as fx  # tests/ is on pytest's pythonpath

from speechprompt.cli import main
from speechprompt.data.audio import AudioError, load_audio, write_audio
from speechprompt.data.dataset import SpeechDataset
from speechprompt.data.kaldi_dir import DataDir, DataDirError
from speechprompt.data.validate import validate


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("perutt")
    backbone, tokenizer = fx.make_backbone(root)
    artifact = fx.make_prompt_artifact(backbone, root / "asr", tokenizer, seed=1)
    waves = fx.write_waves(root / "audio", 3)
    waves.append(write_audio(root / "audio" / "short.wav", 0.3 * np.ones(160, dtype=np.float32)))  # 10 ms
    waves.append(write_audio(root / "audio" / "silent.wav", np.zeros(8000, dtype=np.float32)))
    utts = ["u0", "u1", "u2", "u3short", "u4silent"]
    DataDir(wav_scp={u: str(p) for u, p in zip(utts, waves, strict=True)},
            text={u: ("..." if u == "u2" else f"set an alarm {i}") for i, u in enumerate(utts)},
            utt2spk={u: "s" for u in utts}).write(root / "data")
    return root, artifact, utts, waves


def test_decode_skips_and_reports_too_short_silent_and_empty(setup, tmp_path, capsys):
    root, artifact, utts, _ = setup
    rc = main(["decode", "--backbone", str(root / "backbone"), "--task", str(artifact), "--data", str(root / "data"),
               "--out", str(tmp_path / "d"), "--max-len", "8"])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err
    assert "skipped u3short: audio has 160 samples" in err and "(10 ms)" in err
    assert "1 utterance(s) are all-silent audio" in err and "u4silent" in err
    assert "1 reference(s) in" in err and "normalise to nothing" in err and "u2" in err
    summary = json.loads((tmp_path / "d" / "decode.json").read_text())
    assert [f["utt_id"] for f in summary["failed"]] == ["u3short"] and summary["decoded"] == 4
    assert summary["silent_audio"] == ["u4silent"] and summary["empty_references"] == ["u2"]


def test_transcribe_skips_too_short_audio(setup, capsys):
    root, artifact, _, waves = setup
    rc = main(["transcribe", *map(str, waves), "--backbone", str(root / "backbone"), "--prompt", f"a={artifact}",
               "--format", "kaldi", "--max-len", "8"])
    out, err = capsys.readouterr()
    assert rc == 1 and len(out.strip().splitlines()) == 4 and "short.wav: audio has 160 samples" in err
    assert "all-silent audio" in err


def test_truncated_wav_is_detected_streaming_header_is_not(tmp_path):
    path = write_audio(tmp_path / "a.wav", 0.1 * np.ones(16000, dtype=np.float32))
    raw = path.read_bytes()
    (tmp_path / "cut.wav").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(AudioError, match=r"truncated WAV file: its header promises 16000 samples but only 79\d\d"):
        load_audio(tmp_path / "cut.wav", utt_id="cut")
    streamed = bytearray(raw)
    streamed[40:44] = struct.pack("<I", 0xFFFFFFFF)  # streaming writers leave the size unknown
    (tmp_path / "stream.wav").write_bytes(bytes(streamed))
    assert load_audio(tmp_path / "stream.wav").shape == (16000,)


def test_validate_flags_short_truncated_and_empty_normalised(setup, tmp_path):
    root, _, _, waves = setup
    raw = waves[0].read_bytes()
    (tmp_path / "cut.wav").write_bytes(raw[: len(raw) - 100])
    data = DataDir(wav_scp={"a": str(waves[1]), "b": str(waves[3]), "c": str(tmp_path / "cut.wav")},
                   text={"a": "?!", "b": "hello", "c": "hello"}, utt2spk={"a": "s", "b": "s", "c": "s"})
    data.write(tmp_path / "d")
    _, problems = validate(tmp_path / "d")
    kinds = {(p.utt_id, p.kind) for p in problems}
    assert kinds == {("a", "empty-text"), ("b", "audio-short"), ("c", "audio-truncated")}
    short = next(p for p in problems if p.kind == "audio-short")
    assert "audio lasts 10.0 ms, shorter than the 25 ms window" in str(short)
    _, problems = validate(tmp_path / "d", min_seconds=0.005)
    assert "audio-short" not in {p.kind for p in problems}


def test_dataset_checks_real_length_and_leaves_out_empty_transcripts(setup, tmp_path, caplog):
    root, _, _, waves = setup
    data = DataDir(wav_scp={"a": str(waves[0]), "b": str(waves[1]), "c": str(waves[2])},
                   text={"a": "one", "b": "two", "c": "- -"}, utt2spk={"a": "s", "b": "s", "c": "s"},
                   utt2dur={"a": 0.01, "b": len(load_audio(waves[1])) / 16000, "c": 0.3})  # a's is stale
    with caplog.at_level(logging.WARNING):
        dataset = SpeechDataset(data)
    assert dataset.utt_ids == ["a", "b"] and dataset.empty_texts == ["c"]
    assert "1 utterance(s) left out, their transcript normalises to nothing: c" in caplog.text
    with pytest.raises(DataDirError, match=r"utt2dur: a: says 0.01 s but the audio lasts .* utt2dur is stale"):
        dataset[0]
    assert dataset[1]["utt_id"] == "b"


def test_dataset_reports_all_silent_audio_once(setup, caplog):
    _, _, _, waves = setup
    data = DataDir(wav_scp={"q": str(waves[4])}, text={"q": "quiet"}, utt2spk={"q": "s"})
    dataset = SpeechDataset(data)
    with caplog.at_level(logging.WARNING):
        dataset[0], dataset[0]
    assert caplog.text.count("utterance q is all-silent audio (1 such so far") == 1 and dataset.silent == {"q"}
