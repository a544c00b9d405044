"""Outputs never destroy inputs: decode --out, data subset / combine OUT (issue 19, point 1)."""

from __future__ import annotations

import pytest
import serving_fixtures as fx  # tests/ is on pytest's pythonpath

from speechprompt.cli import main
from speechprompt.data.kaldi_dir import DataDir


def _data(root, n=3):
    waves = fx.write_waves(root / "audio", n)
    utts = [f"spk{i % 2}-utt{i}" for i in range(n)]
    DataDir(wav_scp={u: str(p) for u, p in zip(utts, waves, strict=True)},
            text={u: f"word {i}" for i, u in enumerate(utts)},
            utt2spk={u: u.split("-")[0] for u in utts}).write(root / "data")
    return root / "data"


def _tables(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.mark.parametrize("where", ["data", "data/decode", "other"])
def test_decode_refuses_out_on_a_data_dir(tmp_path, capsys, where):
    data = _data(tmp_path)
    other = _data(tmp_path / "o")
    out = {"data": data, "data/decode": data / "decode", "other": other}[where]
    before, before_other = _tables(data), _tables(other)
    rc = main(["decode", "--backbone", str(tmp_path / "missing"), "--task", str(tmp_path / "missing"),
               "--data", str(data), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("speechprompt decode: --out ") and "choose another output folder" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert _tables(data) == before and _tables(other) == before_other


def test_subset_and_combine_refuse_an_input_as_out(tmp_path, capsys):
    data = _data(tmp_path)
    before = _tables(data)
    assert main(["data", "subset", str(data), str(data), "--seconds", "1"]) == 1
    assert "is the input data dir" in capsys.readouterr().err
    assert main(["data", "subset", str(data), str(data), "--seconds", "1", "--overwrite"]) == 1
    assert main(["data", "combine", str(data), str(data), "--prefix", "--overwrite"]) == 1
    assert "is the input data dir" in capsys.readouterr().err
    assert _tables(data) == before


def test_combine_and_subset_refuse_a_non_empty_out_unless_overwrite(tmp_path, capsys):
    data = _data(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    assert main(["data", "combine", str(out), str(data)]) == 1
    assert "is not empty" in capsys.readouterr().err and not (out / "wav.scp").exists()
    assert main(["data", "subset", str(data), str(out), "--seconds", "100"]) == 1
    assert not (out / "wav.scp").exists()
    assert main(["data", "combine", str(out), str(data), "--overwrite"]) == 0
    assert len(DataDir.read(out)) == 3 and (out / "notes.txt").read_text() == "mine\n"
    # a new folder, and a folder inside the input, are fine
    assert main(["data", "subset", str(data), str(data / "sub"), "--seconds", "100"]) == 0


@pytest.mark.parametrize("which", ["audio", "scp"])
def test_transcribe_refuses_an_input_as_output(tmp_path, capsys, which):
    data = _data(tmp_path)
    wav = DataDir.read(data).wav_scp["spk0-utt0"]
    target = {"audio": wav, "scp": str(data / "wav.scp")}[which]
    before = open(target, "rb").read()
    rc = main(["transcribe", str(data / "wav.scp"), "--backbone", str(tmp_path / "none"),
               "--prompt", f"a={tmp_path / 'none'}", "--output", target])
    err = capsys.readouterr().err
    assert rc == 2 and "is one of the inputs" in err and len(err.strip().splitlines()) == 1
    assert open(target, "rb").read() == before


def test_subset_and_combine_refuse_an_unwritable_out(tmp_path, capsys, monkeypatch):
    import os

    data = _data(tmp_path)
    monkeypatch.setattr(os, "access", lambda *args, **kwargs: False)  # read-only (root ignores file modes)
    assert main(["data", "combine", str(tmp_path / "ro" / "all"), str(data)]) == 1
    assert "is not writable" in capsys.readouterr().err and not (tmp_path / "ro").exists()
