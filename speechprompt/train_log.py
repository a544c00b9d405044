"""What a training run leaves to read: a JSONL log of steps and evaluations, and a learning curve."""

from __future__ import annotations

import json
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
