"""Errors in training read like errors elsewhere (issue 19, point 5): one line, exit status 2 (1 for
`data`), no traceback, nothing left behind."""

from __future__ import annotations

import os

import pytest
import serving_fixtures as fx  # tests/ is on pytest's pythonpath
import torch
from safetensors.torch import load_file

from speechprompt.cli import main
from speechprompt.data.kaldi_dir import DataDir


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("errors")
    backbone, tokenizer = fx.make_backbone(root)
    artifact = fx.make_prompt_artifact(backbone, root / "asr", tokenizer, seed=1)
    waves = fx.write_waves(root / "audio", 3)
    utts = [f"s-u{i}" for i in range(3)]
    DataDir(wav_scp={u: str(p) for u, p in zip(utts, waves, strict=True)}, text={u: "set an alarm" for u in utts},
            utt2spk={u: "s" for u in utts}).write(root / "data")
    (root / "bad.wav").write_bytes(b"not audio at all")
    DataDir(wav_scp={"s-u0": str(waves[0]), "s-u9": str(root / "bad.wav")}, text={"s-u0": "set", "s-u9": "an"},
            utt2spk={"s-u0": "s", "s-u9": "s"}).write(root / "bad")
    (root / "empty").mkdir()
    for name in ("wav.scp", "utt2spk", "text"):
        (root / "empty" / name).write_text("")
    return root, artifact


def one_line(capsys, verb):
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith(f"speechprompt {verb}: "), err
    return err


TRAIN = ["method.name=prompt", "method.options.num_prompts=2", "optim.max_steps=1", "optim.warmup_steps=0",
         "experiment.progress=false"]


@pytest.mark.parametrize("case, message", [
    ("bad_train", "bad/wav.scp:2: s-u9: cannot decode audio"),
    ("bad_dev", "bad/wav.scp:2: s-u9: cannot decode audio"),
    ("nan_lr", "optim.lr: expected a finite number, got 'nan'"),
    ("empty", "empty: no utterances (utt2spk is empty)"),
    ("cuda", "experiment.device cuda: no CUDA GPU is visible"),
    ("occupied", "is a file, not a folder"),
])
def test_train_errors_are_one_line_and_leave_nothing(setup, tmp_path, capsys, case, message):
    if case == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    root, _ = setup
    exp = tmp_path / "exp"
    train, extra = root / "data", []
    if case == "bad_train":
        train = root / "bad"
    elif case == "bad_dev":
        extra = [f"data.dev={root / 'bad'}"]
    elif case == "nan_lr":
        extra = ["optim.lr=nan"]
    elif case == "empty":
        train = root / "empty"
    elif case == "cuda":
        extra = ["experiment.device=cuda"]
    elif case == "occupied":
        exp.write_text("a file where the experiment folder should go\n")
    rc = main(["train", f"data.train={train}", f"data.tokenizer={root / 'tokenizer'}",
               f"backbone.path={root / 'backbone'}", f"experiment.dir={exp}", *TRAIN, *extra])
    assert rc == 2 and message in one_line(capsys, "train")
    assert not exp.is_dir()


@pytest.mark.parametrize("option, value, message", [
    ("--max-len", "0", "--max-len 0: must be at least 1 token"),
    ("--length-penalty", "nan", "--length-penalty nan: must be a finite number"),
    ("--batch-seconds", "nan", "--batch-seconds nan: must be a finite number above 0"),
    ("--device", "cuda", "--device cuda: no CUDA GPU is visible"),
])
def test_decode_and_transcribe_options(setup, tmp_path, capsys, option, value, message):
    if value == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    root, artifact = setup
    assert main(["decode", "--backbone", str(root / "backbone"), "--task", str(artifact), "--data", str(root / "data"),
                 "--out", str(tmp_path / "d"), option, value]) == 2
    assert message in one_line(capsys, "decode") and not (tmp_path / "d").exists()
    assert main(["transcribe", str(root / "audio" / "utt00.wav"), "--backbone", str(root / "backbone"),
                 "--prompt", f"a={artifact}", option, value]) == 2
    assert message in one_line(capsys, "transcribe")


def test_decode_refuses_empty_data_and_unwritable_out(setup, tmp_path, capsys, monkeypatch):
    root, artifact = setup
    base = ["decode", "--backbone", str(root / "backbone"), "--task", str(artifact)]
    assert main([*base, "--data", str(root / "empty"), "--out", str(tmp_path / "d")]) == 2
    assert "no utterances (utt2spk is empty)" in one_line(capsys, "decode")
    (tmp_path / "file").write_text("x")
    assert main([*base, "--data", str(root / "data"), "--out", str(tmp_path / "file")]) == 2
    assert "is a file, not a folder" in one_line(capsys, "decode")
    monkeypatch.setattr(os, "access", lambda *args, **kwargs: False)  # a read-only folder (root ignores modes)
    assert main([*base, "--data", str(root / "data"), "--out", str(tmp_path / "ro" / "d")]) == 2
    assert "is not writable" in one_line(capsys, "decode") and not (tmp_path / "ro").exists()


@pytest.mark.parametrize("seconds", ["0", "-3", "nan"])
def test_subset_seconds(setup, tmp_path, capsys, seconds):
    root, _ = setup
    assert main(["data", "subset", str(root / "data"), str(tmp_path / "s"), "--seconds", seconds]) == 1
    assert "the audio budget must be a positive number of seconds" in one_line(capsys, "data subset")
    assert not (tmp_path / "s").exists()


def test_pickled_backbone_weights_are_refused(setup, tmp_path, capsys):
    root, artifact = setup
    folder = tmp_path / "pickled"
    folder.mkdir()
    for name in ("config.json", "generation_config.json", "speechprompt_backbone.json"):
        if (root / "backbone" / name).is_file():
            (folder / name).write_bytes((root / "backbone" / name).read_bytes())
    torch.save(load_file(str(root / "backbone" / "model.safetensors")), folder / "pytorch_model.bin")
    assert main(["decode", "--backbone", str(folder), "--task", str(artifact), "--data", str(root / "data"),
                 "--out", str(tmp_path / "d")]) == 2
    err = one_line(capsys, "decode")
    assert "pytorch_model.bin" in err and "pickles are refused" in err and "weights_only" not in err
