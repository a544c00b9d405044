"""Wav2vec2-family encoder (Wav2Vec2 / HuBERT / WavLM) + BART-style text decoder (the Wav2Seq shape).

Held in transformers' `SpeechEncoderDecoderModel` (encoder `Wav2Vec2Model` / `HubertModel` /
`WavLMModel`, decoder `BartForCausalLM`), so `save_pretrained` / `from_pretrained` are transformers'
own and real checkpoints load (see `wav2seq_convert.py` for fairseq Wav2Seq ones).

Where prompts enter:
- encoder features: after the convolutional feature encoder and the feature projection (`embed_audio`),
  before the positional convolution, so prompt vectors also get a positional embedding;
- encoder layers: `encoder_layers` = the transformers encoder layers (post-LN or pre-LN "stable layer
  norm" variants; the final layer norm is applied by `run_encoder` after the loop when required);
- decoder inputs: `embed_tokens` returns scaled token embeddings; learned positions are added in
  `run_decoder` and continue from the cache length;
- decoder layers: `decoder_layers` = the `BartDecoderLayer`s.

Batch consistency: with `feat_extract_norm="layer"` every convolution frame depends only on its own
receptive field, so the batched front-end equals the per-utterance one on valid frames; with
`"group"` (wav2vec2-base / HuBERT-base checkpoints, normalised over time) the front-end runs per
utterance on its true length instead.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn
from transformers import (
    BartConfig,
    BartForCausalLM,
    HubertConfig,
    HubertModel,
    SpeechEncoderDecoderConfig,
    SpeechEncoderDecoderModel,
    Wav2Vec2Config,
    Wav2Vec2Model,
    WavLMConfig,
    WavLMModel,
)
from transformers.cache_utils import EncoderDecoderCache
from transformers.masking_utils import create_bidirectional_mask

from speechprompt.backbones.base import (
    BackboneError,
    SpeechSeq2Seq,
    lengths_to_mask,
    new_decoder_cache,
    refuse_unknown_config_keys,
)

ENCODERS: dict[str, tuple[type, type]] = {
    "wav2vec2": (Wav2Vec2Config, Wav2Vec2Model),
    "hubert": (HubertConfig, HubertModel),
    "wavlm": (WavLMConfig, WavLMModel),
}

# Encoder geometry per size. All front-ends have a total stride of 320 samples (20 ms frames at
# 16 kHz) and (except `tiny`) a receptive field of about 400 samples, like wav2vec2.
ENCODER_SIZES: dict[str, dict[str, Any]] = {
    # a few 10k parameters: unit tests
    "tiny": dict(conv_dim=(16, 16, 16), conv_kernel=(10, 8, 4), conv_stride=(5, 8, 8),
                 hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                 num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4),
    # ~3.9M encoder parameters, the CPU recipes' backbone: a 4-layer front-end (receptive field 425
    # samples) and 4 transformer layers. Chosen with benchmarks/backbone_speed.py: about 1.8x the
    # training throughput of the 7-layer 64-256 channel front-end with 6 layers (2.3x under bf16)
    # Pre-LN layers ("stable layer norm"): trained from scratch on 2 h of speech, post-LN layers collapsed
    # to a time-constant output within 250 steps (std over time 2e-5); pre-LN ones kept varying (0.03).
    "small": dict(conv_dim=(32, 64, 128, 128), conv_kernel=(10, 8, 8, 4), conv_stride=(5, 4, 4, 4),
                  hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024,
                  num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16, mask_time_prob=0.05,
                  mask_time_length=5, do_stable_layer_norm=True),
    # wav2vec2-base / HuBERT-base geometry (95M encoder), layer-norm front-end
    "base": dict(conv_dim=(512,) * 7, conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2),
                 hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                 num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16, mask_time_prob=0.05),
}
DECODER_SIZES: dict[str, dict[str, Any]] = {
    # decoder width differs from the encoder's on purpose: exercises the enc->dec projection
    "tiny": dict(d_model=24, decoder_layers=2, decoder_attention_heads=2, decoder_ffn_dim=48,
                 max_position_embeddings=128),
    "small": dict(d_model=256, decoder_layers=2, decoder_attention_heads=4, decoder_ffn_dim=1024,
                  max_position_embeddings=1024),
    "base": dict(d_model=768, decoder_layers=6, decoder_attention_heads=12, decoder_ffn_dim=3072,
                 max_position_embeddings=1024),
}


class _WavLMLayerView(nn.Module):
    """Calls one WavLM layer as `layer(hidden) -> hidden`, supplying the shared relative position bias.

    WavLM layers return `(hidden, position_bias)` and only layer 0 owns the bias table; the view keeps
    the interface uniform so hooks see plain tensors. Not registered as a submodule (no weights of its own).
    """

    def __init__(self, layer: nn.Module, index: int, bias_source: nn.Module):
        super().__init__()
        self.layer, self.index = layer, index
        self.__dict__["bias_source"] = bias_source  # layer 0's attention, not re-registered

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        batch, frames, _ = hidden.shape
        attn = self.bias_source
        bias = attn.compute_bias(frames, frames)  # (1, H, T, T)
        bias = bias.repeat(batch, 1, 1, 1).view(batch * attn.num_heads, frames, frames)
        with warnings.catch_warnings():
            # transformers' WavLM attention pairs a bool padding mask with a float bias; torch warns
            warnings.filterwarnings("ignore", message="Support for mismatched key_padding_mask")
            return self.layer(hidden, attention_mask=attention_mask, position_bias=bias, index=self.index)[0]


class Wav2Vec2Seq2Seq(SpeechSeq2Seq):
    """Wav2Vec2 / HuBERT / WavLM encoder + BART decoder; see the module docstring.

    Options (saved in `speechprompt_backbone.json`): `normalize_waveform` (zero-mean unit-variance
    per utterance, as wav2vec2-large checkpoints expect), `embedding_layer_norm` (BART's layer norm
    after token + position embeddings; off for converted fairseq decoders), `pad_id`/`bos_id`/`eos_id`
    (bos is the id decoding starts from).
    """

    families: ClassVar[tuple[str, ...]] = tuple(ENCODERS)
    model_class = SpeechEncoderDecoderModel

    def __init__(self, model: SpeechEncoderDecoderModel, options: dict[str, Any] | None = None):
        super().__init__(model, options)
        encoder_type = model.config.encoder.model_type
        if encoder_type not in ENCODERS:
            raise BackboneError(f"encoder type {encoder_type!r} is not one of {sorted(ENCODERS)}")
        if not isinstance(model.decoder, BartForCausalLM):
            raise BackboneError(f"decoder must be BartForCausalLM, got {type(model.decoder).__name__}")
        self._encoder_type = encoder_type
        if encoder_type == "wavlm":
            layers = model.encoder.encoder.layers
            views = [_WavLMLayerView(layer, i, layers[0].attention) for i, layer in enumerate(layers)]
            self.__dict__["_layer_views"] = nn.ModuleList(views)  # outside the registered tree

    @property
    def family(self) -> str:
        return self._encoder_type

    @classmethod
    def build(cls, size: str, vocab_size: int, encoder_type: str = "wav2vec2", **overrides: Any
              ) -> Wav2Vec2Seq2Seq:
        """Random backbone: `size` in ENCODER_SIZES; `overrides` go to the encoder config
        (`enc_*` prefix stripped) or decoder config (`dec_*` prefix stripped)."""
        if size not in ENCODER_SIZES:
            raise BackboneError(f"unknown size {size!r} for {encoder_type}; choose one of {sorted(ENCODER_SIZES)}")
        if encoder_type not in ENCODERS:
            raise BackboneError(f"unknown encoder type {encoder_type!r}; choose one of {sorted(ENCODERS)}")
        enc_kwargs = dict(dict(feat_extract_norm="layer", do_stable_layer_norm=False, hidden_dropout=0.1,
                               attention_dropout=0.1, activation_dropout=0.0, feat_proj_dropout=0.0,
                               layerdrop=0.0), **ENCODER_SIZES[size])
        enc_kwargs.setdefault("mask_time_prob", 0.0)
        dec_kwargs = _decoder_kwargs(size, vocab_size)
        config_class, _ = ENCODERS[encoder_type]
        dec_overrides = {key[4:]: value for key, value in overrides.items() if key.startswith("dec_")}
        enc_overrides = {key.removeprefix("enc_"): value for key, value in overrides.items() if not key.startswith("dec_")}
        refuse_unknown_config_keys(config_class, enc_overrides, f"{encoder_type} encoder")
        refuse_unknown_config_keys(BartConfig, dec_overrides, "decoder (dec_)")
        enc_kwargs.update(enc_overrides)
        dec_kwargs.update(dec_overrides)
        enc_kwargs["num_feat_extract_layers"] = len(enc_kwargs["conv_dim"])
        config = SpeechEncoderDecoderConfig.from_encoder_decoder_configs(
            config_class(**enc_kwargs), BartConfig(**dec_kwargs))
        model = SpeechEncoderDecoderModel(config=config)
        model.eval()
        return cls(model, _toolkit_options(normalize_waveform=False))

    @classmethod
    def from_pretrained_encoder(cls, encoder_dir: str | Path, decoder_size: str, vocab_size: int,
                                **decoder_overrides: Any) -> Wav2Vec2Seq2Seq:
        """A released encoder in transformers format (e.g. a local facebook/hubert-base-ls960 snapshot;
        `*ForCTC` folders work too) + a freshly initialised decoder of `decoder_size`.

        Waveform normalisation follows the folder's `preprocessor_config.json` (`do_normalize`).
        """
        encoder_dir = Path(encoder_dir)
        config_path = encoder_dir / "config.json"
        if not config_path.is_file():
            raise BackboneError(f"{config_path} not found: not a transformers model folder")
        encoder_type = json.loads(config_path.read_text()).get("model_type")
        if encoder_type not in ENCODERS:
            raise BackboneError(f"{config_path}: model_type {encoder_type!r} is not one of {sorted(ENCODERS)}")
        if decoder_size not in DECODER_SIZES:
            raise BackboneError(f"unknown decoder size {decoder_size!r}; choose one of {sorted(DECODER_SIZES)}")
        encoder = ENCODERS[encoder_type][1].from_pretrained(str(encoder_dir), local_files_only=True)
        decoder = BartForCausalLM(BartConfig(**{**_decoder_kwargs(decoder_size, vocab_size), **decoder_overrides}))
        model = SpeechEncoderDecoderModel(encoder=encoder, decoder=decoder)
        model.eval()
        preprocessor = encoder_dir / "preprocessor_config.json"
        normalize = bool(json.loads(preprocessor.read_text()).get("do_normalize", False)) \
            if preprocessor.is_file() else False
        return cls(model, _toolkit_options(normalize_waveform=normalize))

    # ---- dimensions ----------------------------------------------------------------------
    @property
    def encoder_dim(self) -> int:
        return int(self.model.config.encoder.hidden_size)

    @property
    def decoder_dim(self) -> int:
        return int(self.model.config.decoder.d_model)

    @property
    def vocab_size(self) -> int:
        return int(self.model.config.decoder.vocab_size)

    @property
    def encoder_layers(self) -> nn.ModuleList:
        if self._encoder_type == "wavlm":
            return self.__dict__["_layer_views"]
        return self.model.encoder.encoder.layers

    @property
    def decoder_layers(self) -> nn.ModuleList:
        return self._bart.layers

    @property
    def _bart(self) -> nn.Module:
        return self.model.decoder.model.decoder

    # ---- encoder ------------------------------------------------------------------------
    def feature_lengths(self, wave_lengths: torch.Tensor) -> torch.Tensor:
        return self.model.encoder._get_feat_extract_output_lengths(wave_lengths).long()

    def embed_audio(self, waveforms: torch.Tensor, wave_lengths: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """waveforms (B,S) float, wave_lengths (B,) -> features (B,T,D), mask (B,T) bool."""
        if waveforms.dim() != 2 or wave_lengths.shape != waveforms.shape[:1]:
            raise BackboneError(f"expected waveforms (B,S) and wave_lengths (B,), got "
                                f"{tuple(waveforms.shape)} and {tuple(wave_lengths.shape)}")
        wave_lengths = wave_lengths.to(waveforms.device).long()
        frame_lengths = self.feature_lengths(wave_lengths)
        if bool((frame_lengths < 1).any()):
            row = int(torch.nonzero(frame_lengths < 1)[0])
            raise BackboneError(f"batch row {row} has {int(wave_lengths[row])} samples: shorter than the "
                                "400-sample (25 ms) receptive field of the feature encoder")
        valid = lengths_to_mask(wave_lengths, waveforms.shape[1])
        waveforms = waveforms.float().masked_fill(~valid, 0.0)
        if self.options.get("normalize_waveform"):
            waveforms = _zero_mean_unit_var(waveforms, wave_lengths, valid)
        encoder = self.model.encoder
        waveforms = waveforms.to(encoder.feature_extractor.conv_layers[0].conv.weight.dtype)
        if encoder.config.feat_extract_norm == "group":
            # group norm normalises over time: padding would leak in, so run each utterance alone
            per_utt = [encoder.feature_extractor(waveforms[i:i + 1, : int(n)])[0].transpose(0, 1)
                       for i, n in enumerate(wave_lengths)]
            conv = nn.utils.rnn.pad_sequence(per_utt, batch_first=True)
        else:
            conv = encoder.feature_extractor(waveforms).transpose(1, 2)
        frames = int(frame_lengths.max())
        conv = conv[:, :frames]
        mask = lengths_to_mask(frame_lengths, frames)
        features = encoder.feature_projection(conv)
        if isinstance(features, tuple):  # wav2vec2 / WavLM also return the normalised conv output
            features = features[0]
        if self.training and encoder.config.mask_time_prob > 0:
            features = encoder._mask_hidden_states(features, attention_mask=mask)
        return features, mask

    def run_encoder(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """features (B,T,D), mask (B,T) bool -> hidden (B,T,D)."""
        stack = self.model.encoder.encoder
        config = self.model.encoder.config
        # zero padded frames so the positional convolution sees the same input as for a lone utterance
        hidden = features.masked_fill(~mask[..., None], 0.0)
        hidden = hidden + stack.pos_conv_embed(hidden)
        if not config.do_stable_layer_norm:
            hidden = stack.layer_norm(hidden)
        hidden = stack.dropout(hidden)
        if self._encoder_type == "wavlm":
            attention_mask = mask.long()  # WavLM attention takes the 2-D padding mask
        else:
            attention_mask = create_bidirectional_mask(config=config, inputs_embeds=hidden, attention_mask=mask)
        for layer in self.encoder_layers:
            if self.training and config.layerdrop > 0 and float(torch.rand([])) < config.layerdrop:
                continue
            hidden = layer(hidden, attention_mask=attention_mask)
        if config.do_stable_layer_norm:
            hidden = stack.layer_norm(hidden)
        return hidden

    # ---- decoder ------------------------------------------------------------------------
    def embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B,L) -> (B,L,Dd) scaled token embeddings (no positions)."""
        return self._bart.embed_tokens(ids)

    @property
    def max_decoder_positions(self) -> int:
        return int(self._bart.max_target_positions)

    def run_decoder(self, input_embeds: torch.Tensor, enc_hidden: torch.Tensor, enc_mask: torch.Tensor,
                    cache: EncoderDecoderCache | None = None
                    ) -> tuple[torch.Tensor, EncoderDecoderCache]:
        """input_embeds (B,L,Dd), enc_hidden (B,T,D), enc_mask (B,T) -> logits (B,L,V), cache."""
        bart = self._bart
        if cache is None:
            cache = new_decoder_cache()
        length = input_embeds.shape[1]
        past = cache.get_seq_length()
        self.check_decoder_room(past, length)
        if hasattr(self.model, "enc_to_dec_proj"):
            enc_hidden = self.model.enc_to_dec_proj(enc_hidden)
        position_ids = torch.arange(past, past + length, device=input_embeds.device)
        hidden = input_embeds + bart.embed_positions(None, past, position_ids=position_ids).to(input_embeds.dtype)
        if self.options.get("embedding_layer_norm", True):  # BART has it; fairseq/Wav2Seq decoders do not
            hidden = bart.layernorm_embedding(hidden)
        hidden = nn.functional.dropout(hidden, p=bart.dropout, training=self.training)
        hidden = self.run_decoder_layers(hidden, enc_hidden, enc_mask, cache, bart.config)
        return self.model.decoder.lm_head(hidden), cache

    def resize_decoder_vocab(self, new_size: int) -> None:
        """Fresh decoder token embedding + output layer of `new_size` rows (pad row zero)."""
        decoder = self.model.decoder
        old = self._bart.embed_tokens
        embedding = type(old)(new_size, old.embedding_dim, 0, embed_scale=old.embed_scale)
        head = nn.Linear(old.embedding_dim, new_size, bias=False)
        std = decoder.config.init_std
        nn.init.normal_(embedding.weight, std=std)
        with torch.no_grad():
            embedding.weight[0].zero_()
        nn.init.normal_(head.weight, std=std)
        device = old.weight.device
        decoder.set_input_embeddings(embedding.to(device))
        decoder.lm_head = head.to(device)
        decoder.config.vocab_size = new_size
        self.model.config.decoder.vocab_size = new_size
        # a new vocabulary comes from the toolkit's tokenizers: pad 0, bos 1, eos 2
        self.options.update(pad_id=0, bos_id=1, eos_id=2)
        decoder.config.pad_token_id, decoder.config.bos_token_id, decoder.config.eos_token_id = 0, 1, 2
        decoder.config.decoder_start_token_id = 1
        if decoder.config.tie_word_embeddings:
            decoder.lm_head.weight = embedding.weight


def _decoder_kwargs(size: str, vocab_size: int) -> dict[str, Any]:
    """BartConfig arguments for a randomly initialised decoder with the toolkit's special ids."""
    return dict(DECODER_SIZES[size], vocab_size=vocab_size, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                decoder_start_token_id=1, dropout=0.1, attention_dropout=0.1, activation_dropout=0.0,
                scale_embedding=True, encoder_layers=0, is_decoder=True, add_cross_attention=True,
                tie_word_embeddings=True)


def _toolkit_options(normalize_waveform: bool) -> dict[str, Any]:
    return {"normalize_waveform": normalize_waveform, "embedding_layer_norm": True,
            "pad_id": 0, "bos_id": 1, "eos_id": 2}


def _zero_mean_unit_var(waveforms: torch.Tensor, lengths: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Per-utterance normalisation over valid samples, as transformers' Wav2Vec2FeatureExtractor does."""
    counts = lengths.clamp(min=1).to(waveforms.dtype)[:, None]
    mean = waveforms.sum(1, keepdim=True) / counts
    var = ((waveforms - mean).masked_fill(~valid, 0.0) ** 2).sum(1, keepdim=True) / counts
    return ((waveforms - mean) / torch.sqrt(var + 1e-7)).masked_fill(~valid, 0.0)
