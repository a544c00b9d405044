"""Frozen encoder outputs kept per utterance, for methods whose trained parameters never reach the encoder.

decoder_prompt (and any method that trains decoder-side weights only) sees the same encoder output for
an utterance in every epoch: computing it once and keeping it turns every later step into a decoder-only
step. Whether that holds is checked on the model, not assumed from the method's name:

- the encoder output of a batch must not require gradients (no trained parameter is upstream of it);
- two encodings of that batch in training mode must be bit-identical (no dropout, SpecAugment, ...);
- optim.freeze_encoder_steps must be 0 (a schedule that unfreezes the encoder later changes it).

The keys are (utterance id, samples, training mode); each value is the utterance's valid frames only,
so a batch of cached utterances is padded again to its own longest one, as the encoder would have.
"""

from __future__ import annotations

import torch
from torch.nn.utils.rnn import pad_sequence

from speechprompt.training import checkpoint as ckpt
from speechprompt.tuning.model import EncoderOutput


class EncoderOutputCache:
    """utt key -> (T_i, D) encoder frames; ``max_bytes`` bounds it (utterances beyond are encoded each time)."""

    def __init__(self, max_bytes: int = 8 * 2**30) -> None:
        self.frames: dict[tuple[str, int, bool], torch.Tensor] = {}
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = self.misses = 0

    def encode(self, model, batch) -> EncoderOutput:
        """batch: data.dataset.Batch -> EncoderOutput hidden (B,T',D), mask (B,T') of the cached frames."""
        keys = [(utt, int(n), model.training) for utt, n in zip(batch.utt_ids, batch.wave_lengths.tolist(), strict=True)]
        missing = [i for i, key in enumerate(keys) if key not in self.frames]
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        fresh: dict[int, torch.Tensor] = {}
        if missing:
            index = torch.tensor(missing, device=batch.wave_lengths.device)
            with torch.no_grad():
                enc = model.encode(batch.waveforms.index_select(0, index), batch.wave_lengths.index_select(0, index),
                                   batch.task_ids.index_select(0, index))
            for row, i in enumerate(missing):
                frames = enc.hidden[row, : int(enc.mask[row].sum())].clone()
                fresh[i] = frames
                size = frames.numel() * frames.element_size()
                if self.bytes + size <= self.max_bytes:
                    self.frames[keys[i]] = frames
                    self.bytes += size
        rows = [fresh[i] if i in fresh else self.frames[key] for i, key in enumerate(keys)]
        lengths = torch.tensor([len(r) for r in rows], device=rows[0].device)
        hidden = pad_sequence(rows, batch_first=True)
        mask = torch.arange(hidden.shape[1], device=hidden.device)[None, :] < lengths[:, None]
        return EncoderOutput(hidden, mask)

    def summary(self) -> str:
        return (f"{len(self.frames)} utterances, {self.bytes / 2**20:.1f} MiB; "
                f"{self.hits} encodings reused, {self.misses} computed")


def why_not_cacheable(model, batch, freeze_encoder_steps: int) -> str | None:
    """None when ``model``'s encoder output of ``batch`` can be cached, else the reason it cannot.

    Leaves torch's random state as it found it: the check's encodings must not shift the dropout
    masks of the run (a resumed run would otherwise differ from an uninterrupted one)."""
    if freeze_encoder_steps != 0:
        return f"optim.freeze_encoder_steps is {freeze_encoder_steps}"
    state, was_training = ckpt.capture_rng_state(), model.training
    try:
        model.train()
        with torch.enable_grad():
            first = model.encode(batch.waveforms, batch.wave_lengths, batch.task_ids)
        if first.hidden.requires_grad:
            return "trained parameters reach the encoder output"
        with torch.no_grad():
            second = model.encode(batch.waveforms, batch.wave_lengths, batch.task_ids)
        if not torch.equal(first.hidden, second.hidden):
            return "the encoder is not deterministic in training mode (dropout or augmentation)"
        return None
    finally:
        model.train(was_training)
        ckpt.restore_rng_state(state)


def attach_if_safe(model, batch, freeze_encoder_steps: int, log) -> EncoderOutputCache | None:
    """Give ``model`` (a TunedModel) an encoder-output cache when ``batch`` shows it is safe; returns it, or None."""
    if why_not_cacheable(model, batch, freeze_encoder_steps) is not None:
        return None
    model.encoder_cache = EncoderOutputCache()
    log("encoder outputs are kept per utterance after their first step: no trained parameter reaches the "
        "encoder and it is deterministic, so later steps run the decoder only")
    return model.encoder_cache
