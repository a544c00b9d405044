"""A Wav2Seq backbone on a released checkpoint's encoder: the pretrained encoder, a decoder for the pseudo language.

Wav2Seq (Wu et al. 2022) starts from a self-supervised encoder (HuBERT) and a new decoder, and
pretrains the pair on a pseudo language derived from the encoder's own hidden states. Here the
encoder is a released Whisper checkpoint's (a fetched name such as ``whisper-tiny.en``, or a
folder), and the decoder is either

- ``fresh``: randomly initialised, of the checkpoint's shape unless ``backbone.overrides`` change
  its depth or width (``decoder_layers``, ``decoder_ffn_dim``, ``decoder_attention_heads``,
  ``max_target_positions``, dropout rates; ``d_model`` is the encoder's), as in Wav2Seq; or
- ``checkpoint``: the checkpoint's own decoder, with a new token embedding and output layer for
  the pseudo vocabulary.

The result keeps the checkpoint's feature front end (Whisper's log-mel, no per-utterance mean
normalisation) and is a backbone made here, not the checkpoint: its tokenizer is the pseudo BPE,
it has no task prefix or suppression lists, and it encodes every utterance on its true length (no
30 s window) in pretraining, adaptation and decoding alike. ``options["encoder_from"]`` names the
source checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import GenerationConfig, WhisperConfig, WhisperForConditionalGeneration

from speechprompt.config import ConfigError

DECODER_INITS = ("fresh", "checkpoint")
# model-config keys a fresh decoder may change (d_model is shared with the encoder in Whisper)
DECODER_KEYS = ("decoder_layers", "decoder_attention_heads", "decoder_ffn_dim", "max_target_positions", "dropout",
                "attention_dropout", "activation_dropout", "decoder_layerdrop")
SPECIAL_IDS = {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2, "decoder_start_token_id": 1}


def load_encoder_source(spec: str | Path):
    """The backbone named by ``spec`` (a fetched checkpoint name, hub alias or folder); Whisper only."""
    from speechprompt.backbones import WhisperSeq2Seq, load_backbone
    from speechprompt.backbones.fetch import resolve_backbone

    backbone = load_backbone(resolve_backbone(spec))
    if not isinstance(backbone, WhisperSeq2Seq):
        raise ConfigError(f"--encoder-from {spec}: a {backbone.family} backbone; only Whisper encoders are taken "
                          "(a wav2vec2/HuBERT encoder gets a decoder with Wav2Vec2Seq2Seq.from_pretrained_encoder)")
    return backbone


def backbone_on_encoder(spec: str | Path, vocab_size: int, decoder: str = "fresh",
                        overrides: dict[str, Any] | None = None):
    """A Whisper backbone with ``spec``'s encoder and a ``decoder`` (see the module docstring) whose
    vocabulary is ``vocab_size`` toolkit ids (pad 0, bos 1, eos 2). Call after seeding torch: a fresh
    decoder and a new embedding are drawn from its RNG."""
    from speechprompt.backbones import WhisperSeq2Seq

    if decoder not in DECODER_INITS:
        raise ConfigError(f"--decoder must be one of {DECODER_INITS}, got {decoder!r}")
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(DECODER_KEYS))
    if unknown:
        raise ConfigError(f"backbone.overrides {unknown}: on a checkpoint's encoder only the decoder can change "
                          f"({', '.join(DECODER_KEYS)})")
    if decoder == "checkpoint" and set(overrides) - {"dropout", "attention_dropout", "activation_dropout"}:
        raise ConfigError("--decoder checkpoint keeps the checkpoint's decoder shape: backbone.overrides may only "
                          "set dropout rates (use --decoder fresh for another shape)")
    source = load_encoder_source(spec)
    name = source.options.get("checkpoint") or str(spec)
    config = source.model.config.to_dict()
    config.update(overrides, vocab_size=vocab_size, **SPECIAL_IDS, suppress_tokens=None, begin_suppress_tokens=None)
    for key in ("forced_decoder_ids", "architectures", "_name_or_path", "transformers_version"):
        config.pop(key, None)
    model = WhisperForConditionalGeneration(WhisperConfig(**config))
    with torch.no_grad():
        model.model.encoder.load_state_dict(source.model.model.encoder.state_dict())
        if decoder == "checkpoint":  # every decoder weight but the token embedding (and the output tied to it)
            state = {k: v for k, v in source.model.model.decoder.state_dict().items() if not k.startswith("embed_tokens.")}
            missing, unexpected = model.model.decoder.load_state_dict(state, strict=False)
            if unexpected or set(missing) != {"embed_tokens.weight"}:
                raise ConfigError(f"{spec}: its decoder does not fit (missing {missing}, unexpected {unexpected})")
    model.generation_config = GenerationConfig.from_model_config(model.config)
    model.eval()
    options = {"pad_id": 0, "bos_id": 1, "eos_id": 2, "encoder_from": name, "decoder_init": decoder}
    backbone = WhisperSeq2Seq(model, options)
    backbone.pad_to_window = False  # the true length, as every backbone made here
    return backbone
