"""The training loop: exact resume after SIGKILL, DDP == one process, corrupt checkpoints, signals."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from speechprompt.config import OptimConfig
from speechprompt.training import checkpoint as ckpt
from speechprompt.training.loop import epoch_batches, lr_at, write_run_script

TOY = Path(__file__).parent.parent / "toy_training.py"
import toy_training as toy  # noqa: E402 (tests/ is on pytest's pythonpath)


def _env(**extra):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONHASHSEED="0", **extra)
    env.pop("WORLD_SIZE", None)
    env.pop("RANK", None)
    return env


def _run_toy(exp, *overrides, resume=False, env=None, launcher=(sys.executable,), timeout=120):
    cmd = [*launcher, str(TOY), str(exp), *overrides] + (["--resume"] if resume else [])
    return subprocess.run(cmd, env=env or _env(), capture_output=True, text=True, timeout=timeout)


def _losses(exp):
    rows = [json.loads(line) for line in (Path(exp) / "train_log.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if "loss" in r]


def _assert_same_weights(a, b, atol=0.0, skip=()):
    wa, wb = load_file(str(Path(a) / "final.safetensors")), load_file(str(Path(b) / "final.safetensors"))
    assert wa.keys() == wb.keys()
    for k in set(wa) - set(skip):
        assert torch.allclose(wa[k].float(), wb[k].float(), atol=atol, rtol=0), k


COMMON = ["optim.max_steps=12", "experiment.save_every=2", "experiment.eval_every=4",
          "method.options.dropout=0.2", "experiment.keep_last=3"]


def _in_process(exp, overrides):
    """Run the toy trainer here, single-threaded like the subprocesses (same float reductions)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return toy.run(str(exp), overrides)
    finally:
        torch.set_num_threads(threads)


def test_sigkill_mid_epoch_then_resume_equals_uninterrupted(tmp_path):
    _in_process(tmp_path / "full", COMMON)

    exp = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(TOY), str(exp), *COMMON], env=_env(TOY_STEP_SLEEP="0.15"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    target = ckpt.step_dir(exp / "checkpoints", 6)  # 5 batches per epoch: step 6 is mid-epoch 1
    deadline = time.time() + 60
    while not target.is_dir() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert target.is_dir(), proc.stderr.read()
    assert not (exp / "final.safetensors").exists()
    assert max(int(p.name.split("-")[1]) for p in ckpt.list_checkpoints(exp / "checkpoints")) < 12

    _, _, _, state = ckpt.load_latest(exp / "checkpoints")
    assert state["elapsed"]["wall"] >= 0.15 * state["step"]  # every step slept 0.15 s
    resumed = _run_toy(exp, *COMMON, resume=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stdout
    _assert_same_weights(tmp_path / "full", exp)
    assert _losses(exp) == pytest.approx(_losses(tmp_path / "full"), abs=0, rel=0)
    # the killed sitting's training time, up to the checkpoint resumed from, is carried into the summary
    summary = json.loads((exp / "train_summary.json").read_text())
    assert summary["earlier_sittings_seconds"] == pytest.approx(state["elapsed"])
    fresh = json.loads((tmp_path / "full" / "train_summary.json").read_text())
    assert fresh["earlier_sittings_seconds"] == {"wall": 0.0, "cpu": 0.0}


def test_two_process_ddp_matches_one_process_with_same_global_batch(tmp_path):
    base = ["optim.max_steps=6", "experiment.save_every=0", "experiment.eval_every=3"]
    _in_process(tmp_path / "one", [*base, "optim.grad_accum=2"])
    launcher = (sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2")
    two = _run_toy(tmp_path / "two", *base, "optim.grad_accum=1", launcher=launcher, timeout=180)
    assert two.returncode == 0, two.stderr[-3000:]
    assert len(_losses(tmp_path / "two")) == 6
    assert _losses(tmp_path / "two") == pytest.approx(_losses(tmp_path / "one"), rel=1e-5, abs=1e-6)
    # 'calls' counts forward passes per process: 12 micro-batches on one, 6 on each of two
    _assert_same_weights(tmp_path / "one", tmp_path / "two", atol=1e-5, skip=["calls"])
    dev = [json.loads(x)["dev_loss"] for x in (tmp_path / "two" / "train_log.jsonl").read_text().splitlines()
           if "dev_loss" in x]
    dev1 = [json.loads(x)["dev_loss"] for x in (tmp_path / "one" / "train_log.jsonl").read_text().splitlines()
            if "dev_loss" in x]
    assert dev == pytest.approx(dev1, rel=1e-5)


def test_truncated_checkpoint_is_reported_and_previous_used(tmp_path, capsys):
    exp = tmp_path / "exp"
    toy.run(str(exp), ["optim.max_steps=6", "experiment.save_every=2", "experiment.keep_last=3"])
    latest = ckpt.step_dir(exp / "checkpoints", 6)
    weights = latest / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:50])
    messages = []
    path, _, _, state = ckpt.load_latest(exp / "checkpoints", warn=messages.append)
    assert path.name == "step-00000004" and state["step"] == 4
    assert any("step-00000006" in m and "truncated" in m for m in messages)

    (ckpt.step_dir(exp / "checkpoints", 4) / "state.json").write_text('{"step": 4, "fil')  # cut JSON too
    messages.clear()
    path, *_ = ckpt.load_latest(exp / "checkpoints", warn=messages.append)
    assert path.name == "step-00000002"
    assert any("not valid JSON" in m for m in messages)

    # a resumed run says so and continues from the usable checkpoint
    model, result = toy.run(str(exp), ["optim.max_steps=8", "experiment.save_every=2", "experiment.keep_last=3"],
                            resume=True)
    out = capsys.readouterr().out
    assert "unusable" in out and "resumed from" in out and "step-00000002" in out
    assert result.step == 8


def test_sigterm_saves_a_checkpoint_before_exit(tmp_path):
    exp = tmp_path / "exp"
    proc = subprocess.Popen([sys.executable, str(TOY), str(exp), "optim.max_steps=500", "experiment.save_every=0"],
                            env=_env(TOY_STEP_SLEEP="0.05"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = exp / "train_log.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and (not log.is_file() or len(log.read_text().splitlines()) < 3):
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "stopped=signal:SIGTERM" in out
    saved = ckpt.list_checkpoints(exp / "checkpoints")
    assert saved and 3 <= ckpt.verify_checkpoint(saved[-1])["step"] < 500


def test_lr_schedule_and_sharding():
    cfg = OptimConfig(lr=1.0, warmup_steps=4, max_steps=14, schedule="linear")
    lrs = [lr_at(s, cfg) for s in range(14)]
    assert lrs[:4] == [0.25, 0.5, 0.75, 1.0] and lrs[4] == 1.0 and lrs[-1] == pytest.approx(0.1)
    cos = OptimConfig(lr=1.0, warmup_steps=0, max_steps=10, schedule="cosine", min_lr_ratio=0.1)
    assert lr_at(0, cos) == 1.0 and lr_at(10, cos) == pytest.approx(0.1) and lr_at(5, cos) == pytest.approx(0.55)

    def sampler(epoch):
        return [[i] for i in range(7)]

    r0, r1 = epoch_batches(sampler, 0, 0, 2, 1), epoch_batches(sampler, 0, 1, 2, 1)
    assert r0.batches == [[0], [2], [4]] and r1.batches == [[1], [3], [5]] and r0.dropped == 1
    with pytest.raises(ValueError, match="fewer than processes x grad_accum"):
        epoch_batches(sampler, 0, 0, 4, 2)


def test_early_stopping_and_outputs(tmp_path):
    exp = tmp_path / "exp"
    _, result = toy.run(str(exp), ["optim.max_steps=200", "optim.lr=5", "optim.warmup_steps=0",
                                   "experiment.eval_every=1", "experiment.early_stop_patience=2",
                                   "experiment.save_every=0"])
    assert result.stopped == "early_stop" and result.step < 200
    assert result.best_step is not None and (exp / "checkpoints" / "best" / "model.safetensors").is_file()
    assert (exp / "learning_curve.png").stat().st_size > 1000
    summary = json.loads((exp / "train_summary.json").read_text())
    assert summary["stopped"] == "early_stop" and summary["best_step"] == result.best_step
    run_sh = write_run_script(exp, ["train", "--config", "c.yaml"])
    assert os.access(run_sh, os.X_OK) and "speechprompt.cli train --config c.yaml" in run_sh.read_text()


def test_best_metric_last_logs_dev_loss_but_keeps_the_final_step(tmp_path):
    exp = tmp_path / "exp"
    _, result = toy.run(str(exp), ["optim.max_steps=8", "optim.lr=5", "optim.warmup_steps=0",
                                   "experiment.eval_every=2", "experiment.early_stop_patience=1",
                                   "experiment.best_metric=last", "experiment.save_every=0"])
    records = [json.loads(line) for line in (exp / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "dev_loss" in r] == [2, 4, 6, 8]
    assert result.stopped == "max_steps" and result.step == 8, "'last' must not stop early on dev loss"
    assert result.best_step is None and not (exp / "checkpoints" / "best").exists()


def test_optimizer_state_round_trips_without_pickle(tmp_path):
    model = toy.ToyModel()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model(toy.collate([toy.ToyDataset(2)[i] for i in range(2)])).loss.backward()
    opt.step()
    ckpt.save_checkpoint(tmp_path / "c", {"w": torch.ones(2)}, opt, {"step": 1})
    tensors, opt_state, state = ckpt.load_checkpoint(tmp_path / "c")
    fresh = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.1)
    fresh.load_state_dict(opt_state)
    for a, b in zip(opt.state.values(), fresh.state.values(), strict=True):
        assert torch.equal(a["exp_avg_sq"], b["exp_avg_sq"]) and float(a["step"]) == float(b["step"])
    assert state["step"] == 1 and not list(tmp_path.glob(".*tmp*"))


def test_bf16_autocast_keeps_trained_parameters_fp32(tmp_path):
    model, result = toy.run(str(tmp_path / "bf16"), ["optim.max_steps=3", "optim.precision=bf16",
                                                     "experiment.save_every=0", "experiment.eval_every=3"])
    assert result.step == 3
    assert all(p.dtype == torch.float32 for p in model.parameters() if p.requires_grad)
    losses = _losses(tmp_path / "bf16")
    assert len(losses) == 3 and all(torch.isfinite(torch.tensor(losses)))


def test_keep_last_prunes_old_checkpoints(tmp_path):
    toy.run(str(tmp_path / "exp"), ["optim.max_steps=10", "experiment.save_every=2", "experiment.keep_last=2",
                                    "experiment.eval_every=5"])
    names = [p.name for p in ckpt.list_checkpoints(tmp_path / "exp" / "checkpoints")]
    assert names == ["step-00000008", "step-00000010"]
    best = ckpt.verify_checkpoint(tmp_path / "exp" / "checkpoints" / "best")
    assert best["kind"] == "best" and best["step"] in (5, 10)


def test_spec_augment_masks_encoder_features_only_in_training():
    from speechprompt.backbones import build_backbone
    from speechprompt.training.cli import attach_spec_augment

    torch.manual_seed(0)
    backbone = build_backbone("wav2vec2", "tiny", vocab_size=10)
    waves, lengths = torch.randn(2, 16000), torch.tensor([16000, 12000])
    backbone.eval()
    clean, _ = backbone.embed_audio(waves, lengths)
    attach_spec_augment(backbone)
    same, _ = backbone.embed_audio(waves, lengths)
    assert torch.equal(clean, same)
    backbone.train()
    backbone.model.encoder.config.mask_time_prob = 0.0  # only our masks
    masked, mask = backbone.embed_audio(waves, lengths)
    assert masked.shape == clean.shape and not torch.allclose(masked, clean)


def _tone_data(root: Path, n: int = 6) -> Path:
    from speechprompt.data.audio import write_audio

    data = root / "data"
    data.mkdir(parents=True)
    rows = []
    for i in range(n):
        t = np.arange(int(16000 * (0.6 + 0.1 * i))) / 16000
        wave = (0.3 * np.sin(2 * np.pi * (200 + 60 * i) * t)).astype(np.float32)
        rows.append((f"s-u{i}", write_audio(root / f"u{i}.wav", wave, 16000), ["yes no", "no", "yes"][i % 3]))
    (data / "wav.scp").write_text("".join(f"{u} {p}\n" for u, p, _ in rows))
    (data / "utt2spk").write_text("".join(f"{u} s\n" for u, _, _ in rows))
    (data / "text").write_text("".join(f"{u} {t}\n" for u, _, t in rows))
    return data


def test_real_backbone_resume_is_exact_with_augmentation_and_dropout(tmp_path):
    """finetune on a tiny wav2vec2 (dropout, time masking via NumPy's RNG, SpecAugment, speed perturbation):
    stopping after step 3 and resuming ends in the same weights and losses as one uninterrupted run."""
    from speechprompt.config import load_config
    from speechprompt.training.cli import train_task

    data = _tone_data(tmp_path)
    common = [f"data.train={data}", "method.name=finetune", "optim.max_steps=6", "optim.warmup_steps=1",
              "data.max_batch_seconds=2", "data.spec_augment=true", "data.speed_perturb=[0.9,1.0,1.1]",
              "experiment.save_every=3",
              "experiment.progress=false", "experiment.log_every=1", "experiment.eval_every=0"]
    for name in ("full", "cut"):
        assert train_task(load_config(None, [*common, f"experiment.dir={tmp_path / name}"]), ["train"]) == 0
    cut = tmp_path / "cut"
    shutil.rmtree(cut / "checkpoints" / "step-00000006")
    shutil.rmtree(cut / "artifact")
    assert train_task(load_config(None, [*common, f"experiment.dir={cut}"]), ["train"], resume=True) == 0
    a = load_file(str(tmp_path / "full" / "artifact" / "task.safetensors"))
    b = load_file(str(cut / "artifact" / "task.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert _losses(cut) == _losses(tmp_path / "full") and len(_losses(cut)) == 6


def test_non_finite_gradients_skip_the_update_then_stop(tmp_path, monkeypatch):
    original = toy.ToyModel.forward

    def exploding(self, batch):
        out = original(self, batch)
        return toy.Output(out.loss * float("inf"), out.logits, {})

    monkeypatch.setattr(toy.ToyModel, "forward", exploding)
    with pytest.raises(FloatingPointError, match="non-finite gradient"):
        toy.run(str(tmp_path / "exp"), ["optim.max_steps=20", "experiment.save_every=0", "experiment.eval_every=0"])
    rows = [json.loads(x) for x in (tmp_path / "exp" / "train_log.jsonl").read_text().splitlines()]
    assert rows and rows[-1]["skipped_steps"] >= 9


def test_fresh_run_in_a_used_folder_replaces_old_checkpoints(tmp_path, capsys):
    exp = tmp_path / "exp"
    toy.run(str(exp), ["optim.max_steps=8", "experiment.save_every=4", "experiment.eval_every=4"])
    toy.run(str(exp), ["optim.max_steps=4", "experiment.save_every=2", "experiment.eval_every=0"])
    assert "removing 2 checkpoint(s) of an earlier run" in capsys.readouterr().out
    assert [p.name for p in ckpt.list_checkpoints(exp / "checkpoints")] == ["step-00000002", "step-00000004"]
    assert not (exp / "checkpoints" / "best").exists()
