"""Builders shared by the decode / transcribe tests: a tiny sharpened backbone, prompt artifacts, audio files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from speechprompt.backbones import build_backbone
from speechprompt.data.audio import write_audio
from speechprompt.data.text import train_tokenizer
from speechprompt.tuning import build_tuned_model

TEXTS = ["set an alarm", "play music loud", "weather today | [ date : monday ]"]


def make_backbone(out_dir: Path, seed: int = 0, family: str = "wav2vec2"):
    """A tiny backbone (wav2vec2, or whisper) whose vocabulary is the test tokenizer's, with large weights so that
    random decoding emits varied tokens; saved to ``out_dir/backbone``, tokenizer to ``out_dir/tokenizer``."""
    tokenizer = train_tokenizer("char", TEXTS, out_dir / "tokenizer")
    torch.manual_seed(seed)
    backbone = build_backbone(family, "tiny", vocab_size=tokenizer.vocab_size)
    with torch.no_grad():
        for name, param in backbone.named_parameters():
            if param.dim() >= 2:
                param.normal_(0.0, 1.0 if "embed_tokens" in name else 0.5)
    backbone.save_pretrained(out_dir / "backbone")
    return backbone, out_dir / "tokenizer"


def make_prompt_artifact(backbone, out_dir: Path, tokenizer_dir: Path, seed: int, output: str | None = None) -> Path:
    """A prompt artifact built directly (seeded prompt table, scaled up so tasks decode differently)."""
    model = build_tuned_model(backbone, "prompt", {"num_prompts": 4, "seed": seed, "init_range": 3.0})
    model.save_artifact(out_dir, tokenizer_dir)
    model.method.detach_hooks()
    if output is not None:
        meta = json.loads((out_dir / "task.json").read_text())
        meta["output"] = output
        (out_dir / "task.json").write_text(json.dumps(meta))
    return out_dir


def write_waves(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """``count`` wav files of 0.3-1.2 s noise + tone, different lengths, in ``folder`` and a sub-folder."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        n = int(rng.integers(4800, 19200))
        t = np.arange(n) / 16000
        wave = 0.3 * np.sin(2 * np.pi * (200 + 150 * i) * t) + 0.05 * rng.standard_normal(n)
        sub = folder / "sub" if i % 2 else folder
        sub.mkdir(parents=True, exist_ok=True)
        paths.append(write_audio(sub / f"utt{i:02d}.wav", wave.astype(np.float32)))
    return paths
