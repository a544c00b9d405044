"""The interface every speech encoder-decoder backbone exposes to the tuning methods.

A backbone is split at the points where parameter-efficient methods enter:

```
waveforms (B,S) --embed_audio--> features (B,T,D), mask (B,T)      <- prompts are prepended here
features --run_encoder--> hidden (B,T,D)      encoder_layers[i]     <- deep prompts / adapters hook here
ids (B,L) --embed_tokens--> (B,L,Dd)                                <- decoder prompts are prepended here
(B,L,Dd) + hidden --run_decoder--> logits (B,L,V), cache   decoder_layers[i]
```

Every layer in `encoder_layers` / `decoder_layers` is called as `layer(hidden (B,T,D), ...)` and
returns the hidden states (B,T,D) as a plain tensor, so forward pre-hooks and hooks see the same
thing on every family. All weights live in one transformers model (`self.model`), so
`save_pretrained` / `from_pretrained` are transformers' own; a small `speechprompt_backbone.json`
beside the transformers config names the family and the options that are not part of it.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.cache_utils import DynamicCache, EncoderDecoderCache
from transformers.masking_utils import create_bidirectional_mask, create_causal_mask
from transformers.utils import logging as transformers_logging

from speechprompt.backbones.errors import BackboneError

# transformers 5 draws a progress bar for every load and save of a few-MB model: recipe logs drowned in them
transformers_logging.disable_progress_bar()

BACKBONE_FILE = "speechprompt_backbone.json"
CTC_HEAD_FILE = "ctc_head.safetensors"  # optional: a linear CTC output layer on the encoder (blank = pad id)
# transformers writes these into config.json; they name the software, not the model.
_VOLATILE_CONFIG_KEYS = {"transformers_version", "_name_or_path", "architectures", "dtype", "torch_dtype",
                         "_attn_implementation_autoset", "_commit_hash", "output_attentions",
                         "output_hidden_states", "return_dict", "use_cache"}


def refuse_unknown_config_keys(config_class: type, keys, what: str) -> None:
    """Raise BackboneError naming the keys that ``config_class`` does not define.

    transformers configs keep unknown keyword arguments silently, so a misspelt override
    (``dropuot``) would otherwise build a backbone that ignores it."""
    unknown = sorted(set(keys) - set(config_class().to_dict()))
    if unknown:
        raise BackboneError(f"unknown {what} config keys {unknown} in the backbone overrides")


def new_decoder_cache() -> EncoderDecoderCache:
    """An empty KV cache for `run_decoder` (self-attention and cross-attention parts)."""
    return EncoderDecoderCache(DynamicCache(), DynamicCache())


def lengths_to_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B,) lengths -> (B, max_len) bool mask, True on valid positions."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


class SpeechSeq2Seq(nn.Module, ABC):
    """A frozen-able speech encoder-decoder with the split points tuning methods need.

    Attributes: `model` (the transformers model holding every weight), `family`, `options`
    (JSON-serialisable family options saved beside the model), `encoder_dim`, `decoder_dim`,
    `vocab_size`, `pad_id`, `bos_id`, `eos_id`, `encoder_layers`, `decoder_layers`.
    """

    families: ClassVar[tuple[str, ...]]  # the family names this class builds and loads
    model_class: ClassVar[type[PreTrainedModel]]
    # weights that are not learned (e.g. a sinusoidal position table): fine-tuning leaves them alone
    fixed_parameter_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, model: PreTrainedModel, options: dict[str, Any] | None = None):
        super().__init__()
        self.model = model
        self.options = dict(options or {})
        self.ctc_head: nn.Linear | None = None  # see add_ctc_head
        self.train(model.training)  # the wrapper's mode drives dropout / masking in the split points

    @property
    @abstractmethod
    def family(self) -> str:
        """The family name saved in `speechprompt_backbone.json` (a key of BACKBONE_FAMILIES)."""

    # ---- building and loading -------------------------------------------------------------
    @classmethod
    @abstractmethod
    def build(cls, size: str, vocab_size: int, **overrides: Any) -> SpeechSeq2Seq:
        """A randomly initialised backbone of a named size (`tiny`, `small`, ...)."""

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> SpeechSeq2Seq:
        """Load a backbone saved by `save_pretrained` (local folder only, safetensors weights)."""
        directory = Path(directory)
        spec = read_backbone_spec(directory)
        if spec["family"] not in cls.families:
            raise BackboneError(f"{directory / BACKBONE_FILE}: family is {spec['family']!r}, "
                                f"not one of {cls.families}; use speechprompt.backbones.load_backbone")
        model = cls.model_class.from_pretrained(str(directory), local_files_only=True)
        model.eval()
        backbone = cls(model, spec.get("options", {}))
        if (directory / CTC_HEAD_FILE).is_file():
            backbone.load_ctc_head(directory / CTC_HEAD_FILE)
        return backbone

    def save_pretrained(self, directory: str | Path) -> None:
        """Write the transformers model (config.json + safetensors), `speechprompt_backbone.json` and,
        when the backbone has one, its CTC head (`ctc_head.safetensors`)."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(str(directory))
        spec = {"family": self.family, "options": self.options}
        (directory / BACKBONE_FILE).write_text(json.dumps(spec, indent=2, sort_keys=True) + "\n")
        if self.ctc_head is not None:
            state = {name: t.detach().to("cpu").contiguous() for name, t in self.ctc_head.state_dict().items()}
            save_file(state, str(directory / CTC_HEAD_FILE))

    # ---- the CTC head -----------------------------------------------------------------------
    def add_ctc_head(self) -> nn.Linear:
        """A fresh linear CTC output layer on the encoder: hidden (B,T,D) -> logits (B,T,vocab_size).

        The blank is the pad id, which never occurs inside a target. Joint CTC/attention training
        (Watanabe et al. 2017) makes the encoder carry the transcript on its own, which an
        attention-only encoder-decoder trained from scratch on a few hours of speech fails to learn.
        """
        reference = next(self.model.parameters())
        self.ctc_head = nn.Linear(self.encoder_dim, self.vocab_size).to(reference.device)
        return self.ctc_head

    def load_ctc_head(self, path: Path) -> None:
        from safetensors.torch import load_file

        state = load_file(str(path))
        weight = state.get("weight")
        if weight is None or tuple(weight.shape) != (self.vocab_size, self.encoder_dim):
            shape = None if weight is None else tuple(weight.shape)
            raise BackboneError(f"{path}: CTC head weight of shape {shape} does not fit this backbone "
                                f"(needs {(self.vocab_size, self.encoder_dim)})")
        self.add_ctc_head().load_state_dict(state)

    def ctc_log_probs(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden (B,T,D) encoder output -> float32 CTC log-probabilities (B,T,V); blank = pad id."""
        if self.ctc_head is None:
            raise BackboneError("this backbone has no CTC head: pretrain or adapt it with a CTC weight > 0")
        return self.ctc_head(hidden).float().log_softmax(-1)

    def resize_vocab(self, new_size: int) -> None:
        """Replace the decoder token embedding and output layer (and the CTC head, if any) with fresh ones."""
        self.resize_decoder_vocab(new_size)
        if self.ctc_head is not None:
            self.add_ctc_head()

    def fingerprint(self) -> str:
        """sha256 (hex, 16 chars) of the family, options, model config and every weight.

        Stable across `save_pretrained` / `from_pretrained`; changes when any weight changes.
        """
        digest = hashlib.sha256()
        config = _stable_config(self.model.config.to_dict())
        digest.update(json.dumps({"family": self.family, "options": self.options, "config": config},
                                 sort_keys=True, default=str).encode())
        weights = dict(self.model.state_dict())
        if self.ctc_head is not None:
            weights.update({f"ctc_head.{name}": t for name, t in self.ctc_head.state_dict().items()})
        for name, tensor in sorted(weights.items()):
            data = tensor.detach().to("cpu").contiguous()
            digest.update(f"{name}:{data.dtype}:{tuple(data.shape)}".encode())
            digest.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
        return digest.hexdigest()[:16]

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def encoder_parameter_names(self) -> list[str]:
        """Names (as in `named_parameters`) of the speech encoder's weights: front end, layers, norms;
        not the decoder, an encoder-to-decoder projection or the CTC head."""
        return [name for name, _ in self.model.named_parameters(prefix="model")
                if ".encoder." in f".{name}." and ".decoder." not in f".{name}."]

    # ---- the split points -----------------------------------------------------------------
    @abstractmethod
    def embed_audio(self, waveforms: torch.Tensor, wave_lengths: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """waveforms (B,S) float 16 kHz, wave_lengths (B,) -> features (B,T,D), mask (B,T) bool."""

    @property
    @abstractmethod
    def max_decoder_positions(self) -> int:
        """How many decoder input positions (prefix vectors + BOS + tokens) the decoder can take."""

    def check_decoder_room(self, past: int, length: int) -> None:
        """Refuse decoder input beyond the learned positions (cache ``past`` + ``length`` new positions)."""
        if past + length > self.max_decoder_positions:
            raise BackboneError(f"decoder input of {past + length} positions exceeds the "
                                f"{self.max_decoder_positions} learned positions of this backbone")

    def run_decoder_layers(self, hidden: torch.Tensor, enc_hidden: torch.Tensor, enc_mask: torch.Tensor,
                           cache: EncoderDecoderCache, config) -> torch.Tensor:
        """hidden (B,L,Dd) after embeddings -> (B,L,Dd) through `decoder_layers` (causal self-attention
        over cache + new positions, cross-attention masked to real encoder frames)."""
        batch, length, _ = hidden.shape
        past = cache.get_seq_length()
        self_mask = create_causal_mask(
            config=config, inputs_embeds=hidden,
            attention_mask=torch.ones(batch, past + length, dtype=torch.bool, device=hidden.device),
            cache=cache.self_attention_cache)
        cross_mask = create_bidirectional_mask(config=config, inputs_embeds=hidden,
                                               attention_mask=enc_mask, encoder_hidden_states=enc_hidden)
        for layer in self.decoder_layers:
            hidden = layer(hidden, self_mask, enc_hidden, encoder_attention_mask=cross_mask,
                           cache=cache, use_cache=True)
        return hidden

    @abstractmethod
    def feature_lengths(self, wave_lengths: torch.Tensor) -> torch.Tensor:
        """(B,) sample counts -> (B,) encoder frame counts produced by `embed_audio`."""

    @abstractmethod
    def run_encoder(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """features (B,T,D), mask (B,T) bool -> hidden (B,T,D) (padded frames carry garbage)."""

    @abstractmethod
    def embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B,L) long -> token embeddings (B,L,Dd), without positions."""

    @abstractmethod
    def run_decoder(self, input_embeds: torch.Tensor, enc_hidden: torch.Tensor, enc_mask: torch.Tensor,
                    cache: EncoderDecoderCache | None = None
                    ) -> tuple[torch.Tensor, EncoderDecoderCache]:
        """input_embeds (B,L,Dd), enc_hidden (B,T,D), enc_mask (B,T) -> logits (B,L,V), cache.

        Positions continue from the cache length, so a call with P prefix vectors + L tokens
        followed by one-token calls numbers the new token P+L, P+L+1, ...
        """

    @abstractmethod
    def resize_decoder_vocab(self, new_size: int) -> None:
        """Replace the decoder token embedding and output layer with freshly initialised ones."""

    @property
    @abstractmethod
    def encoder_layers(self) -> nn.ModuleList:
        """The transformer encoder layers, in order."""

    @property
    @abstractmethod
    def decoder_layers(self) -> nn.ModuleList:
        """The transformer decoder layers, in order."""

    @property
    @abstractmethod
    def encoder_dim(self) -> int: ...

    @property
    @abstractmethod
    def decoder_dim(self) -> int: ...

    @property
    @abstractmethod
    def vocab_size(self) -> int: ...

    @property
    def pad_id(self) -> int:
        return int(self.options.get("pad_id", 0))

    @property
    def bos_id(self) -> int:
        return int(self.options.get("bos_id", 1))

    @property
    def eos_id(self) -> int:
        return int(self.options.get("eos_id", 2))

    # ---- conveniences built on the split points -------------------------------------------
    def encode(self, waveforms: torch.Tensor, wave_lengths: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """waveforms (B,S), wave_lengths (B,) -> hidden (B,T,D), mask (B,T) without any prompt."""
        features, mask = self.embed_audio(waveforms, wave_lengths)
        return self.run_encoder(features, mask), mask

    @staticmethod
    def reorder_cache(cache: EncoderDecoderCache, index: torch.Tensor, cross: bool = True) -> EncoderDecoderCache:
        """Select / repeat batch rows of a cache in place (beam search): index (B',) long.

        ``cross=False`` leaves the cross-attention keys and values as they are: right when every row is
        replaced by a row with the same encoder output (beams of one utterance), and it saves copying
        rows x frames x width x layers of them at every step (the 30 s window: 1500 frames a row).
        """
        if cross:
            cache.reorder_cache(index)
        else:
            cache.self_attention_cache.reorder_cache(index)
        return cache


def _stable_config(config: dict[str, Any]) -> dict[str, Any]:
    """Config dict without keys that depend on the software version or the folder it came from."""
    out = {}
    for key, value in config.items():
        if key in _VOLATILE_CONFIG_KEYS:
            continue
        out[key] = _stable_config(value) if isinstance(value, dict) else value
    return out


def read_backbone_spec(directory: Path) -> dict[str, Any]:
    """Read `speechprompt_backbone.json` from a saved backbone folder."""
    path = directory / BACKBONE_FILE
    if not path.is_file():
        raise BackboneError(f"{path} not found: {directory} is not a folder written by "
                            "SpeechSeq2Seq.save_pretrained (or build one with build_backbone)")
    try:
        spec = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise BackboneError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(spec, dict) or "family" not in spec:
        raise BackboneError(f"{path}: needs a 'family' entry")
    return spec
