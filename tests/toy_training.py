"""A tiny stand-in model and data set for the training-loop tests (run in-process or as a script).

Run as a script (also under torchrun): ``python toy_training.py EXP_DIR key=value ... [--resume]``;
writes ``EXP_DIR/final.safetensors`` with the trained weights.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

VOCAB = 12
FRAME = 160


@dataclass
class ToyBatch:
    waveforms: torch.Tensor  # (B,S)
    wave_lengths: torch.Tensor  # (B,)
    targets: torch.Tensor  # (B,L)
    target_lengths: torch.Tensor  # (B,)

    def to(self, device):
        return ToyBatch(*(t.to(device) for t in (self.waveforms, self.wave_lengths, self.targets, self.target_lengths)))


class ToyDataset(torch.utils.data.Dataset):
    """``n`` utterances of 0.1-0.4 s noise with 3-6 target ids, all derived from the index."""

    def __init__(self, n: int = 12, offset: int = 0):
        self.items = []
        for i in range(offset, offset + n):
            rng = np.random.default_rng(i)
            wave = rng.standard_normal(int(rng.integers(10, 40)) * FRAME).astype(np.float32)
            target = rng.integers(4, VOCAB, size=int(rng.integers(3, 7)))
            self.items.append((torch.from_numpy(wave), torch.from_numpy(target)))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def collate(items) -> ToyBatch:
    waves = nn.utils.rnn.pad_sequence([w for w, _ in items], batch_first=True)
    targets = nn.utils.rnn.pad_sequence([t for _, t in items], batch_first=True)
    return ToyBatch(waves, torch.tensor([len(w) for w, _ in items]), targets, torch.tensor([len(t) for _, t in items]))


def batch_sampler_for(n: int, batch_size: int, seed: int):
    def batches(epoch: int):
        order = np.random.default_rng(seed + epoch).permutation(n).tolist()
        return [order[i : i + batch_size] for i in range(0, n, batch_size)]

    return batches


@dataclass
class Output:
    loss: torch.Tensor
    logits: torch.Tensor
    aux: dict


class ToyModel(nn.Module):
    """Frames -> linear -> masked mean -> per-position logits; a frozen 'backbone' part and dropout."""

    def __init__(self, dropout: float = 0.0, max_len: int = 8):
        super().__init__()
        self.frozen = nn.Linear(FRAME, 16)
        self.frozen.requires_grad_(False)
        self.proj = nn.Linear(16, 16)
        self.positions = nn.Parameter(torch.randn(max_len, 16) * 0.1)
        self.out = nn.Linear(16, VOCAB)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))

    def forward(self, batch: ToyBatch) -> Output:
        delay = float(os.environ.get("TOY_STEP_SLEEP", "0"))
        if delay and self.training:
            time.sleep(delay)
        b, s = batch.waveforms.shape
        frames = batch.waveforms[:, : s // FRAME * FRAME].reshape(b, -1, FRAME)
        mask = (torch.arange(frames.shape[1])[None, :] < (batch.wave_lengths // FRAME)[:, None]).float()
        h = torch.tanh(self.proj(torch.tanh(self.frozen(frames))))
        pooled = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        length = batch.targets.shape[1]
        logits = self.out(self.dropout(pooled[:, None, :] + self.positions[None, :length]))
        loss = nn.functional.cross_entropy(logits.reshape(-1, VOCAB), batch.targets.reshape(-1), ignore_index=0)
        if self.training:
            self.calls += 1
        return Output(loss, logits, {})


def run(exp_dir: str, overrides: list[str], resume: bool = False, batch_size: int = 2, n: int = 10):
    from speechprompt.config import load_config
    from speechprompt.training.loop import train

    cfg = load_config(None, [f"experiment.dir={exp_dir}", "experiment.progress=false", "experiment.device=cpu",
                             "optim.warmup_steps=2", "optim.lr=0.05", "experiment.log_every=1", *overrides])
    torch.manual_seed(cfg.experiment.seed)
    dropout = float(cfg.method.options.get("dropout", 0.0))
    model = ToyModel(dropout)
    result = train(model, ToyDataset(n), cfg, collate_fn=collate,
                   batch_sampler=batch_sampler_for(n, batch_size, cfg.experiment.seed),
                   dev_set=ToyDataset(4, offset=1000), dev_batch_sampler=batch_sampler_for(4, 2, 0),
                   resume=resume, log=lambda *a: print(*a, flush=True))
    if int(os.environ.get("RANK", "0")) == 0:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, os.path.join(exp_dir, "final.safetensors"))
    return model, result


if __name__ == "__main__":
    args = sys.argv[1:]
    resume = "--resume" in args
    args = [a for a in args if a != "--resume"]
    bs = [a for a in args if a.startswith("batch_size=")]
    args = [a for a in args if not a.startswith("batch_size=")]
    _, result = run(args[0], args[1:], resume=resume, batch_size=int(bs[0].split("=")[1]) if bs else 2)
    print(f"stopped={result.stopped} step={result.step}", flush=True)
    sys.exit(0 if result.stopped in ("max_steps", "early_stop") else 130)
