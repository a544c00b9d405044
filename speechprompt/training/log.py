"""What a training run leaves to read: a JSONL log, a learning curve, and a run.sh that repeats it."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path


class JsonlLog:
    """Append-only ``train_log.jsonl``; on resume, records after the checkpoint's step are dropped
    so the log reads as one uninterrupted run."""

    def __init__(self, path: str | Path, truncate_after_step: int = 0, enabled: bool = True):
        self.path = Path(path)
        self.enabled = enabled
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if truncate_after_step and self.path.is_file():
            kept = [line for line in self.read() if line.get("step", 0) <= truncate_after_step]
            self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))
        elif not truncate_after_step:
            self.path.write_text("")

    def write(self, record: dict) -> None:
        if self.enabled:
            with open(self.path, "a") as f:
                f.write(json.dumps(record) + "\n")

    def read(self) -> list[dict]:
        records = []
        for line in self.path.read_text().splitlines() if self.path.is_file() else []:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by a kill; the resumed run rewrites it
        return records


def plot_learning_curve(log_path: str | Path, out_png: str | Path) -> Path | None:
    """Train loss, dev loss (and dev WER on a second axis) against step, as a PNG (matplotlib, Agg)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # matplotlib is the optional 'plot' extra
        return None
    records = JsonlLog(log_path, enabled=False).read() if Path(log_path).is_file() else []
    if not records:
        return None
    train = [(r["step"], r["loss"]) for r in records if "loss" in r]
    dev = [(r["step"], r["dev_loss"]) for r in records if "dev_loss" in r]
    wer = [(r["step"], r["dev_wer"]) for r in records if r.get("dev_wer") is not None]
    fig, ax = plt.subplots(figsize=(7, 4))
    if train:
        ax.plot(*zip(*train, strict=True), label="train loss", lw=1)
    if dev:
        ax.plot(*zip(*dev, strict=True), "o-", label="dev loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if wer:
        ax2 = ax.twinx()
        ax2.plot(*zip(*wer, strict=True), "s--", color="tab:red", label="dev WER (%)")
        ax2.set_ylabel("WER (%)")
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.legend(handles, labels, loc="upper right")
    fig.tight_layout()
    out_png = Path(out_png)
    tmp = out_png.with_name(out_png.stem + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(out_png)
    return out_png


def write_run_script(exp_dir: str | Path, argv: Sequence[str], *, world_size: int | None = None) -> Path:
    """Write ``<exp_dir>/run.sh`` that repeats this run (same command, folder, environment knobs)."""
    import shlex
    import sys

    exp_dir = Path(exp_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)
    world_size = world_size or int(os.environ.get("WORLD_SIZE", "1"))
    launcher = [sys.executable, "-m", "speechprompt.cli"]
    if world_size > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                    f"--nproc_per_node={world_size}", "-m", "speechprompt.cli"]
    lines = ["#!/usr/bin/env bash", "# Repeats this experiment; extra arguments are appended (e.g. --resume).",
             "set -euo pipefail", f"cd {shlex.quote(os.getcwd())}"]
    for var in ("OMP_NUM_THREADS", "CUDA_VISIBLE_DEVICES"):
        if var in os.environ:
            lines.append(f"export {var}={shlex.quote(os.environ[var])}")
    argv = [a for a in argv if a != "--resume"]  # run.sh repeats the run; `run.sh --resume` continues it
    lines.append(" ".join(shlex.quote(a) for a in [*launcher, *argv]) + ' "$@"')
    path = exp_dir / "run.sh"
    # a new file moved into place: a shell still reading the old run.sh (a resumed run) keeps its copy
    tmp = exp_dir / f".run.sh.tmp-{os.getpid()}"
    tmp.write_text("\n".join(lines) + "\n")
    tmp.chmod(0o755)
    os.replace(tmp, path)
    return path
