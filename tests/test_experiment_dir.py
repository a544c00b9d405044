"""Run records match the weights (issue 19, point 2): one run per experiment folder (a lock with the
owner's pid, stale locks taken over), and --resume refuses a changed config unless --allow-changes,
which is recorded in train_log.jsonl; recipe runs notice changed inputs."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from types import SimpleNamespace

import pytest
import serving_fixtures as fx  # tests/ is on pytest's pythonpath
import yaml

from recipes.adapt import forget_outdated_run, run_inputs
from speechprompt.cli import main
from speechprompt.data.kaldi_dir import DataDir
from speechprompt.experiment_dir import ExperimentDirError, ExperimentLock, check_resume_config


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_lock_refuses_a_second_run_and_takes_over_a_stale_one(tmp_path):
    messages = []
    with ExperimentLock(tmp_path, log=messages.append):
        owner = json.loads((tmp_path / ".lock").read_text())
        assert owner["pid"] == os.getpid() and owner["host"] == socket.gethostname()
        with pytest.raises(ExperimentDirError, match=rf"is in use by process {os.getpid()} on "):
            ExperimentLock(tmp_path).acquire()
    assert not (tmp_path / ".lock").exists()
    pid = dead_pid()
    (tmp_path / ".lock").write_text(json.dumps({"pid": pid, "host": socket.gethostname()}))
    with ExperimentLock(tmp_path, log=messages.append):
        assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()
    assert messages == [f"taking over the stale lock {tmp_path / '.lock'} (process {pid} is not running)"]


def test_resume_config_changes_refused_or_recorded(tmp_path):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"optim": {"lr": 0.001, "max_steps": 10},
                                                          "experiment": {"progress": True}}))
    same = {"optim": {"lr": 0.001, "max_steps": 10}, "experiment": {"progress": False}}
    assert check_resume_config(tmp_path, same, allow_changes=False) == {}
    changed = {"optim": {"lr": 0.01, "max_steps": 10}, "experiment": {"progress": True}}
    with pytest.raises(ExperimentDirError, match=r"--resume with a changed config \(optim.lr 0.001 -> 0.01\)"):
        check_resume_config(tmp_path, changed, allow_changes=False)
    logged = []
    assert check_resume_config(tmp_path, changed, True, logged.append) == {"optim.lr": (0.001, 0.01)}
    record = json.loads((tmp_path / "train_log.jsonl").read_text())
    assert record["event"] == "config_changed" and record["changes"] == {"optim.lr": {"old": 0.001, "new": 0.01}}
    assert "optim.lr 0.001 -> 0.01" in logged[0]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("expdir")
    fx.make_backbone(root)
    waves = fx.write_waves(root / "audio", 3)
    utts = [f"s-u{i}" for i in range(3)]
    DataDir(wav_scp={u: str(p) for u, p in zip(utts, waves, strict=True)}, text={u: "set an alarm" for u in utts},
            utt2spk={u: "s" for u in utts}).write(root / "data")
    return root


def train(root, exp, *extra):
    return main(["train", f"data.train={root / 'data'}", f"data.tokenizer={root / 'tokenizer'}",
                 f"backbone.path={root / 'backbone'}", f"experiment.dir={exp}", "method.name=prompt",
                 "method.options.num_prompts=2", "optim.max_steps=2", "optim.warmup_steps=0",
                 "experiment.save_every=1", "experiment.eval_every=0", "experiment.progress=false", *extra])


def test_train_resume_with_changed_options_and_a_held_lock(setup, tmp_path, capsys):
    exp = tmp_path / "exp"
    assert train(setup, exp) == 0 and not (exp / ".lock").exists()
    config = (exp / "config.yaml").read_text()
    capsys.readouterr()
    assert train(setup, exp, "--resume", "optim.lr=0.5") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--resume with a changed config (optim.lr 0.001 -> 0.5)" in err
    assert (exp / "config.yaml").read_text() == config
    assert train(setup, exp, "--resume", "--allow-changes", "optim.lr=0.5", "optim.max_steps=3") == 0
    assert "resuming with a changed config (--allow-changes)" in capsys.readouterr().out
    records = [json.loads(x) for x in (exp / "train_log.jsonl").read_text().splitlines()]
    assert any(r.get("event") == "config_changed" and "optim.lr" in r["changes"] for r in records)
    assert yaml.safe_load((exp / "config.yaml").read_text())["optim"]["lr"] == 0.5
    assert "--allow-changes" not in (exp / "run.sh").read_text()
    # a live process holds the folder: refused, nothing removed
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (exp / ".lock").write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname()}))
        assert train(setup, exp, "--resume") == 2
        assert f"is in use by process {holder.pid}" in capsys.readouterr().err
        assert (exp / "config.yaml").is_file() and (exp / ".lock").is_file()
    finally:
        holder.kill()
        holder.wait()
    assert train(setup, exp, "--resume", "optim.lr=0.5", "optim.max_steps=3") == 0  # stale now: taken over
    assert "taking over the stale lock" in capsys.readouterr().out


def test_recipe_run_with_other_inputs_is_run_again(tmp_path, capsys):
    args = SimpleNamespace(backbone="bb", tokenizer=None, train="data/a", dev="data/dev", test="data/test", gold=None,
                           task="asr", text_file=None, override=[])
    run_dir = tmp_path / "run"
    (run_dir / "train").mkdir(parents=True)
    (run_dir / "result.json").write_text("{}")
    (run_dir / "inputs.json").write_text(json.dumps(run_inputs(args, {"optim": {"lr": 1}})))
    forget_outdated_run(run_dir, run_inputs(args, {"optim": {"lr": 1}}), "[prompt seed 1]")
    assert (run_dir / "result.json").is_file()
    args.train = "data/b"
    forget_outdated_run(run_dir, run_inputs(args, {"optim": {"lr": 1}}), "[prompt seed 1]")
    assert "[prompt seed 1] its inputs changed (train): running it again" in capsys.readouterr().out
    assert not (run_dir / "result.json").exists() and not (run_dir / "train").exists()


def test_pretrain_resume_refuses_changed_options_too(setup, tmp_path, capsys):
    common = ["pretrain", "--data", str(setup / "data"), "--targets", "text", "--tokenizer", "char",
              "--out", str(tmp_path / "w2s"), "optim.max_steps=1", "optim.warmup_steps=0", "experiment.progress=false",
              "backbone.size=tiny"]
    assert main(common) == 0 and not (tmp_path / "w2s" / "exp" / ".lock").exists()
    capsys.readouterr()
    assert main([*common, "--resume", "optim.lr=0.5"]) == 2
    assert "--resume with a changed config (optim.lr 0.001 -> 0.5)" in capsys.readouterr().err
    assert main([*common, "--resume", "--allow-changes", "optim.lr=0.5"]) == 0
