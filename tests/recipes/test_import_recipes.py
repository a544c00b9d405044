"""Importing a user's Kaldi data dir or local Hugging Face dataset into our layout."""

from __future__ import annotations

import io
import json

import datasets
import numpy as np
import pytest
import soundfile as sf

from recipes import hf_dataset, kaldi_dir
from recipes.corpus_files import RecipeError
from speechprompt.data.kaldi_dir import DataDir, DataDirError
from speechprompt.data.validate import validate


def _tone(seconds: float, rate: int) -> np.ndarray:
    return (0.2 * np.sin(2 * np.pi * 300 * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def _kaldi_source(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    sf.write(tmp_path / "rec1.wav", np.stack([_tone(3.0, 8000)] * 2, axis=1), 8000)  # 8 kHz stereo
    (src / "wav.scp").write_text(f"rec1 {tmp_path / 'rec1.wav'}\n")
    (src / "segments").write_text("spkA-u1 rec1 0.0 1.0\nspkA-u2 rec1 1.5 3.0\n")
    (src / "text").write_text("spkA-u1 Hello, World!\nspkA-u2 It's DONE.\n")
    (src / "utt2spk").write_text("spkA-u1 spkA\nspkA-u2 spkA\n")
    (src / "utt2task").write_text("spkA-u1 asr\nspkA-u2 asr\n")
    return src


def test_kaldi_dir_import_cuts_segments_normalises_and_validates(tmp_path):
    target = kaldi_dir.import_data_dir(_kaldi_source(tmp_path), tmp_path / "out", name="mine", set_name="train")
    assert validate(target)[1] == []
    data = DataDir.read(target)
    assert data.segments is None and data.text == {"spkA-u1": "hello world", "spkA-u2": "it's done"}
    assert data.utt2task == {"spkA-u1": "asr", "spkA-u2": "asr"}
    assert data.durations() == pytest.approx({"spkA-u1": 1.0, "spkA-u2": 1.5}, abs=1e-3)
    assert sf.info(data.wav_scp["spkA-u1"]).samplerate == 16000
    manifest = [json.loads(line) for line in (target / "manifest.jsonl").read_text().splitlines()]
    assert manifest[1]["start"] == 1.5 and manifest[1]["raw_text"] == "It's DONE."


def test_kaldi_dir_import_refuses_a_broken_dir(tmp_path):
    src = _kaldi_source(tmp_path)
    (src / "utt2spk").write_text("spkA-u2 spkA\nspkA-u1 spkA\n")  # unsorted
    with pytest.raises(DataDirError, match="utt2spk:2: spkA-u1: not sorted"):
        kaldi_dir.import_data_dir(src, tmp_path / "out", name="mine", set_name="train")


def _hf_rows():
    rows = []
    for i in range(3):
        buffer = io.BytesIO()
        sf.write(buffer, _tone(0.5 + 0.25 * i, 22050), 22050, format="WAV")
        rows.append({"bytes": buffer.getvalue(), "path": f"clip{i}.wav"})
    features = datasets.Features({"audio": {"bytes": datasets.Value("binary"), "path": datasets.Value("string")},
                                  "sentence": datasets.Value("string"), "client": datasets.Value("string"),
                                  "key": datasets.Value("string")})
    dataset = datasets.Dataset.from_dict({"audio": rows, "sentence": ["Good morning!", "", "See you, Bob."],
                                          "client": ["c1", "c2", "c1"], "key": ["a", "b", "c"]}, features=features)
    return dataset.cast_column("audio", datasets.Audio())


@pytest.mark.parametrize("kind", ["save_to_disk", "parquet", "audiofolder"])
def test_hf_dataset_import_from_each_local_format(tmp_path, kind):
    dataset = _hf_rows()
    if kind == "save_to_disk":
        source = tmp_path / "saved"
        datasets.DatasetDict({"train": dataset}).save_to_disk(str(source))
    elif kind == "parquet":
        source = tmp_path / "data.parquet"
        dataset.to_parquet(str(source))
    else:
        source = tmp_path / "folder"
        source.mkdir()
        for i in range(3):
            sf.write(source / f"clip{i}.wav", _tone(0.5 + 0.25 * i, 22050), 22050)
        (source / "metadata.csv").write_text("file_name,sentence,client,key\nclip0.wav,Good morning!,c1,a\n"
                                             "clip1.wav,,c2,b\nclip2.wav,\"See you, Bob.\",c1,c\n")
    target = hf_dataset.import_dataset(source, tmp_path / "out", name="hf", set_name="train", split=None,
                                       text_column="sentence", speaker_column="client", id_column="key")
    assert validate(target)[1] == []
    data = DataDir.read(target)
    assert data.text == {"c1-a": "good morning", "c1-c": "see you bob"}  # the empty row is skipped and counted
    assert data.utt2spk == {"c1-a": "c1", "c1-c": "c1"}
    assert data.durations() == pytest.approx({"c1-a": 0.5, "c1-c": 1.0}, abs=1e-3)


def test_hf_dataset_names_a_missing_column(tmp_path):
    source = tmp_path / "data.parquet"
    _hf_rows().to_parquet(str(source))
    with pytest.raises(RecipeError, match=r"no column\(s\) \['transcript'\]"):
        hf_dataset.import_dataset(source, tmp_path / "out", name="hf", set_name="x", text_column="transcript")
