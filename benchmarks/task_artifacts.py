"""Random task artifacts on a real backbone, for timing-only benchmark runs.

A prompt table's values do not change what decoding computes per step, so timing (not WER) can be
measured with artifacts made here: the same method, sizes and file format as trained ones, values
drawn at random. A released checkpoint's artifacts carry its own tokenizer and decoder prefix; a
backbone built here gets a character tokenizer of exactly its vocabulary.
"""

from __future__ import annotations

from pathlib import Path

import torch

from speechprompt.data.text import SPECIALS, CharTokenizer, load_tokenizer
from speechprompt.data.whisper_tokenizer import is_checkpoint_tokenizer_dir
from speechprompt.tuning import build_tuned_model


def tokenizer_for(backbone, work: Path, language: str | None = None) -> tuple[Path, dict]:
    """(tokenizer folder, method options it implies) for random artifacts on ``backbone``."""
    folder = getattr(backbone, "source_dir", None)
    if folder is not None and is_checkpoint_tokenizer_dir(folder):
        tokenizer = load_tokenizer(folder, language)
        return tokenizer.save(work / "tokenizer"), tokenizer.method_options()
    # one character per id of the backbone's vocabulary, all in the CJK block (printable, no surrogates)
    count = backbone.vocab_size - len(SPECIALS)
    if count > 0x9FFF - 0x4E00:
        raise ValueError(f"a vocabulary of {backbone.vocab_size} ids needs the backbone's own tokenizer")
    CharTokenizer(list(SPECIALS) + [chr(0x4E00 + i) for i in range(count)]).save(work / "tokenizer")
    return work / "tokenizer", {}


def random_artifacts(backbone, work: Path, count: int, method: str = "prompt", options: dict | None = None,
                     language: str | None = None, scale: float = 0.5) -> list[Path]:
    """``count`` artifacts of ``method`` on ``backbone`` in ``work``/<method>NNN, every trained value uniform in
    [-scale, scale] (seeded by the index); the backbone is left as it was."""
    tokenizer_dir, tokenizer_options = tokenizer_for(backbone, work, language)
    made = []
    for index in range(count):
        model = build_tuned_model(backbone, method, {**tokenizer_options, **(options or {}), "seed": index})
        generator = torch.Generator().manual_seed(index)
        with torch.no_grad():
            for param in model.method.parameters():
                if param.requires_grad:
                    param.copy_((torch.rand(param.shape, generator=generator) * 2 - 1) * scale)
        out = work / f"{method}{index:03d}"
        model.save_artifact(out, tokenizer_dir)
        model.release()
        made.append(out)
    return made
