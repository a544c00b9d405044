"""The backbone families by name: build a random one, or load any saved backbone folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from speechprompt.backbones.base import BACKBONE_FILE, SpeechSeq2Seq, read_backbone_spec
from speechprompt.backbones.errors import BackboneError
from speechprompt.backbones.wav2vec2_seq2seq import Wav2Vec2Seq2Seq
from speechprompt.backbones.whisper import WhisperSeq2Seq

# family name -> class that builds and loads it
BACKBONE_FAMILIES: dict[str, type[SpeechSeq2Seq]] = {
    **{family: Wav2Vec2Seq2Seq for family in Wav2Vec2Seq2Seq.families},
    "whisper": WhisperSeq2Seq,
}


def build_backbone(family: str, size: str, vocab_size: int, **overrides: Any) -> SpeechSeq2Seq:
    """A randomly initialised backbone: `family` in BACKBONE_FAMILIES, `size` e.g. "tiny" or "small"."""
    if family not in BACKBONE_FAMILIES:
        raise BackboneError(f"unknown backbone family {family!r}; choose one of {sorted(BACKBONE_FAMILIES)}")
    cls = BACKBONE_FAMILIES[family]
    if cls is Wav2Vec2Seq2Seq:
        return cls.build(size, vocab_size, encoder_type=family, **overrides)
    return cls.build(size, vocab_size, **overrides)


PICKLED_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl")


def refuse_pickled_weights(directory: Path) -> None:
    """A folder whose weights are pickles (and not safetensors) is refused: unpickling can run code."""
    if not directory.is_dir() or any(directory.glob("*.safetensors")):
        return
    pickled = sorted(p.name for pattern in PICKLED_WEIGHTS for p in directory.glob(pattern))
    if pickled:
        raise BackboneError(f"{directory}: its weights are pickles ({', '.join(pickled)}), and pickles are refused "
                            "(loading one can run code); save the model as safetensors where it was made "
                            "(save_pretrained writes model.safetensors)")


def load_backbone(directory: str | Path) -> SpeechSeq2Seq:
    """Load a backbone folder written by `save_pretrained`, whatever its family.

    A plain transformers Whisper folder (no `speechprompt_backbone.json`) is wrapped as it is.
    """
    directory = Path(directory)
    refuse_pickled_weights(directory)
    config_path = directory / "config.json"
    if not (directory / BACKBONE_FILE).is_file() and config_path.is_file():
        model_type = json.loads(config_path.read_text()).get("model_type")
        if model_type == "whisper":
            return WhisperSeq2Seq.from_transformers(directory)
        if model_type in Wav2Vec2Seq2Seq.families:
            raise BackboneError(f"{directory} holds a bare {model_type} encoder: add a decoder with "
                                "Wav2Vec2Seq2Seq.from_pretrained_encoder(dir, decoder_size, vocab_size)")
    spec = read_backbone_spec(directory)
    family = spec["family"]
    if family not in BACKBONE_FAMILIES:
        raise BackboneError(f"{directory}: unknown backbone family {family!r}; "
                            f"known: {sorted(BACKBONE_FAMILIES)}")
    return BACKBONE_FAMILIES[family].from_pretrained(directory)

