"""Whisper (`WhisperForConditionalGeneration`) behind the `SpeechSeq2Seq` interface.

Front-end: the log-mel spectrogram of transformers' `WhisperFeatureExtractor` (same mel filters,
STFT, log10, max-8 dB floor and scaling), computed in torch per utterance on its true length, so
nothing is padded to 30 s and the front-end is differentiable and runs on the model's device.
Backbones built here from scratch also subtract each utterance's mean log-mel per band (option
`utterance_cmn`, saved with the backbone): it removes level and channel differences between voices
(flite's kal16 is 8 dB quieter than any espeak voice of the synth pretraining set). Released
checkpoints keep Whisper's own features.
The encoder layers are run by `run_encoder` itself, which is what lifts Whisper's fixed
3000-frame input requirement; audio still cannot exceed `max_source_positions` encoder frames
(30 s for released checkpoints). Checkpoints were trained on 30 s windows, so expect some loss
on short utterances until the backbone or its prompts are adapted.

Where prompts enter:
- encoder features: after both convolutions and the sinusoidal positional embedding (`embed_audio`);
- encoder layers: `encoder_layers` = `WhisperEncoderLayer`s (pre-LN; `run_encoder` applies the final
  layer norm after the loop);
- decoder inputs: `embed_tokens` (learned positions are added in `run_decoder`, continuing from the cache);
- decoder layers: `decoder_layers` = `WhisperDecoderLayer`s.

Batch consistency: mel frames beyond an utterance are zero and the first convolution's output is
zeroed there too, which is exactly the zero padding each convolution sees for a lone utterance;
self- and cross-attention mask padded frames (the stock Whisper decoder does not mask them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn
from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration
from transformers.cache_utils import EncoderDecoderCache
from transformers.masking_utils import create_bidirectional_mask

from speechprompt.backbones.base import (
    BackboneError,
    SpeechSeq2Seq,
    lengths_to_mask,
    new_decoder_cache,
    refuse_unknown_config_keys,
)

WHISPER_SIZES: dict[str, dict[str, Any]] = {
    # a few 10k trainable parameters: unit tests; 10 s of audio at most
    "tiny": dict(d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
                 decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, num_mel_bins=80,
                 max_source_positions=500, max_target_positions=128),
    # CPU-trainable size for recipes (~ whisper-tiny's layout with half the width)
    "small": dict(d_model=256, encoder_layers=4, decoder_layers=3, encoder_attention_heads=4,
                  decoder_attention_heads=4, encoder_ffn_dim=1024, decoder_ffn_dim=1024, num_mel_bins=80,
                  max_source_positions=1500, max_target_positions=448),
    # openai/whisper-base geometry
    "base": dict(d_model=512, encoder_layers=6, decoder_layers=6, encoder_attention_heads=8,
                 decoder_attention_heads=8, encoder_ffn_dim=2048, decoder_ffn_dim=2048, num_mel_bins=80,
                 max_source_positions=1500, max_target_positions=448),
}


class WhisperSeq2Seq(SpeechSeq2Seq):
    """Whisper encoder-decoder; see the module docstring."""

    families: ClassVar[tuple[str, ...]] = ("whisper",)
    model_class = WhisperForConditionalGeneration
    # Whisper's encoder positions are a fixed sinusoidal table (transformers freezes it too)
    fixed_parameter_names = ("model.model.encoder.embed_positions.weight",)

    def __init__(self, model: WhisperForConditionalGeneration, options: dict[str, Any] | None = None):
        config = model.config
        options = dict(options or {})
        # real checkpoints carry Whisper's own special ids; models we build use the toolkit's 0/1/2
        options.setdefault("pad_id", config.pad_token_id)
        options.setdefault("bos_id", config.decoder_start_token_id)
        options.setdefault("eos_id", config.eos_token_id)
        super().__init__(model, options)
        extractor = WhisperFeatureExtractor(feature_size=config.num_mel_bins)
        self.hop_length = extractor.hop_length
        self.n_fft = extractor.n_fft
        # (n_freq, n_mels) filters from the feature extractor; derived, so not saved with the weights
        self.register_buffer("mel_filters", torch.from_numpy(extractor.mel_filters).float(), persistent=False)
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)
        # run the encoder on audio zero-padded to the checkpoint's 30 s window (as Whisper was trained and as
        # transformers' generate runs it) instead of the true length. A run-time choice, not saved with the
        # backbone: released checkpoints default to the window (measured: tiny.en on synth/test 15.1 % WER
        # with it, 42.9 % on the true length), models built here to the true length they were trained on.
        self.pad_to_window = self.is_released_checkpoint

    @property
    def window_samples(self) -> int:
        """Samples of the full input window: 2 mel frames per encoder position (30 s for released checkpoints)."""
        return 2 * int(self.model.config.max_source_positions) * self.hop_length

    @property
    def is_released_checkpoint(self) -> bool:
        """Imported from a released checkpoint (its own tokenizer, prefix and suppression lists)."""
        return bool(self.options.get("checkpoint"))

    @property
    def default_max_len_ratio(self) -> float:
        """Most tokens per encoder frame when decoding: 15 a second for released checkpoints (they derail
        into long wrong outputs on some utterances), 1 per frame for models built here."""
        return 0.3 if self.is_released_checkpoint else 1.0

    @property
    def suppress_ids(self) -> list[int]:
        """The checkpoint's own never-generated ids (generation config ``suppress_tokens``)."""
        if not self.is_released_checkpoint:
            return []
        return list(getattr(self.model.generation_config, "suppress_tokens", None) or [])

    @property
    def begin_suppress_ids(self) -> list[int]:
        """Ids the checkpoint never starts a text with (a blank and end-of-text)."""
        if not self.is_released_checkpoint:
            return []
        return list(getattr(self.model.generation_config, "begin_suppress_tokens", None) or [])

    @property
    def family(self) -> str:
        return "whisper"

    @classmethod
    def build(cls, size: str, vocab_size: int, **overrides: Any) -> WhisperSeq2Seq:
        """Random Whisper of a named size with the toolkit's special ids (pad 0, bos 1, eos 2)."""
        if size not in WHISPER_SIZES:
            raise BackboneError(f"unknown size {size!r} for whisper; choose one of {sorted(WHISPER_SIZES)}")
        kwargs = dict(WHISPER_SIZES[size], vocab_size=vocab_size, pad_token_id=0, bos_token_id=1,
                      eos_token_id=2, decoder_start_token_id=1, dropout=0.1, attention_dropout=0.0,
                      activation_dropout=0.0, begin_suppress_tokens=None, suppress_tokens=None,
                      tie_word_embeddings=True)
        refuse_unknown_config_keys(WhisperConfig, overrides, "Whisper")
        kwargs.update(overrides)
        model = WhisperForConditionalGeneration(WhisperConfig(**kwargs))
        model.eval()
        return cls(model, {"pad_id": 0, "bos_id": 1, "eos_id": 2, "utterance_cmn": True})

    @classmethod
    def from_transformers(cls, directory: str | Path) -> WhisperSeq2Seq:
        """Wrap a plain transformers Whisper folder (e.g. a downloaded openai/whisper-* snapshot)."""
        model = WhisperForConditionalGeneration.from_pretrained(str(directory), local_files_only=True)
        return cls(model.eval())

    # ---- dimensions ----------------------------------------------------------------------
    @property
    def encoder_dim(self) -> int:
        return int(self.model.config.d_model)

    @property
    def decoder_dim(self) -> int:
        return int(self.model.config.d_model)

    @property
    def vocab_size(self) -> int:
        return int(self.model.config.vocab_size)

    @property
    def encoder_layers(self) -> nn.ModuleList:
        return self.model.model.encoder.layers

    @property
    def decoder_layers(self) -> nn.ModuleList:
        return self.model.model.decoder.layers

    # ---- encoder ------------------------------------------------------------------------
    def mel_lengths(self, wave_lengths: torch.Tensor) -> torch.Tensor:
        """(B,) samples -> (B,) log-mel frames (the extractor drops the STFT's last frame)."""
        return wave_lengths.long() // self.hop_length

    def feature_lengths(self, wave_lengths: torch.Tensor) -> torch.Tensor:
        return self.model.model.encoder._get_feat_extract_output_lengths(self.mel_lengths(wave_lengths))

    def log_mel(self, waveform: torch.Tensor) -> torch.Tensor:
        """One utterance (S,) -> (n_mels, S // hop) log-mel, as WhisperFeatureExtractor computes it."""
        # always float32: the log of small powers is meaningless in half precision
        stft = torch.stft(waveform.float(), self.n_fft, self.hop_length, window=self.window.float(),
                          return_complex=True)
        power = stft[..., :-1].abs() ** 2
        log_spec = torch.clamp(self.mel_filters.float().T @ power, min=1e-10).log10()
        log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
        if self.options.get("utterance_cmn"):
            return (log_spec - log_spec.mean(dim=1, keepdim=True)) / 4.0
        return (log_spec + 4.0) / 4.0

    def embed_audio(self, waveforms: torch.Tensor, wave_lengths: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """waveforms (B,S), wave_lengths (B,) -> features (B,T,D) (convs + positions), mask (B,T)."""
        if waveforms.dim() != 2 or wave_lengths.shape != waveforms.shape[:1]:
            raise BackboneError(f"expected waveforms (B,S) and wave_lengths (B,), got "
                                f"{tuple(waveforms.shape)} and {tuple(wave_lengths.shape)}")
        encoder = self.model.model.encoder
        wave_lengths = wave_lengths.to(waveforms.device).long()
        mel_lengths = self.mel_lengths(wave_lengths)
        frame_lengths = self.feature_lengths(wave_lengths)
        for row, (samples, frames) in enumerate(zip(wave_lengths.tolist(), frame_lengths.tolist(), strict=True)):
            if samples <= self.n_fft // 2 or frames < 1:
                raise BackboneError(f"batch row {row} has {samples} samples: too short for a log-mel frame")
            if frames > encoder.max_source_positions:
                raise BackboneError(f"batch row {row} has {samples / 16000:.1f} s of audio: longer than the "
                                    f"{encoder.max_source_positions} encoder positions of this Whisper; "
                                    "segment the audio first")
        if self.pad_to_window:
            return self._embed_window(waveforms, wave_lengths)
        mels = [self.log_mel(waveforms[i, :n]) for i, n in enumerate(wave_lengths.tolist())]
        mel = nn.utils.rnn.pad_sequence([m.T for m in mels], batch_first=True).transpose(1, 2)  # (B,n_mels,M)
        mel = mel.to(encoder.conv1.weight.dtype)
        hidden = nn.functional.gelu(encoder.conv1(mel))
        hidden = hidden * lengths_to_mask(mel_lengths, mel.shape[-1])[:, None, :]
        hidden = nn.functional.gelu(encoder.conv2(hidden)).transpose(1, 2)
        frames = int(frame_lengths.max())
        hidden = hidden[:, :frames] + encoder.embed_positions.weight[:frames]
        return hidden, lengths_to_mask(frame_lengths, frames)

    def _embed_window(self, waveforms: torch.Tensor, wave_lengths: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """Each utterance zero-padded to the full window -> features (B,W,D) with every frame valid (B,W).

        Exactly what WhisperFeatureExtractor + the stock encoder compute on padded audio: the
        log-mel floor is taken over the whole window and the encoder attends to the silence too."""
        encoder = self.model.model.encoder
        window = self.window_samples
        padded = waveforms.new_zeros(len(waveforms), window)
        for row, samples in enumerate(wave_lengths.tolist()):
            padded[row, :samples] = waveforms[row, :samples]
        mel = torch.stack([self.log_mel(row) for row in padded])  # (B,n_mels,2W)
        mel = mel.to(encoder.conv1.weight.dtype)
        hidden = nn.functional.gelu(encoder.conv1(mel))
        hidden = nn.functional.gelu(encoder.conv2(hidden)).transpose(1, 2)
        hidden = hidden + encoder.embed_positions.weight[: hidden.shape[1]]
        return hidden, torch.ones(hidden.shape[:2], dtype=torch.bool, device=hidden.device)

    def run_encoder(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """features (B,T,D), mask (B,T) bool -> hidden (B,T,D)."""
        encoder = self.model.model.encoder
        hidden = nn.functional.dropout(features, p=encoder.dropout, training=self.training)
        attention_mask = create_bidirectional_mask(config=encoder.config, inputs_embeds=hidden, attention_mask=mask)
        for layer in self.encoder_layers:
            if self.training and encoder.layerdrop > 0 and float(torch.rand([])) < encoder.layerdrop:
                continue
            hidden = layer(hidden, attention_mask)
        return encoder.layer_norm(hidden)

    # ---- decoder ------------------------------------------------------------------------
    def embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B,L) -> (B,L,Dd) token embeddings (no positions)."""
        return self.model.model.decoder.embed_tokens(ids)

    @property
    def max_decoder_positions(self) -> int:
        return int(self.model.model.decoder.max_target_positions)

    def run_decoder(self, input_embeds: torch.Tensor, enc_hidden: torch.Tensor, enc_mask: torch.Tensor,
                    cache: EncoderDecoderCache | None = None
                    ) -> tuple[torch.Tensor, EncoderDecoderCache]:
        """input_embeds (B,L,Dd), enc_hidden (B,T,D), enc_mask (B,T) -> logits (B,L,V), cache."""
        decoder = self.model.model.decoder
        if cache is None:
            cache = new_decoder_cache()
        length = input_embeds.shape[1]
        past = cache.get_seq_length()
        self.check_decoder_room(past, length)
        position_ids = torch.arange(past, past + length, device=input_embeds.device)
        hidden = input_embeds + decoder.embed_positions.weight[position_ids].to(input_embeds.dtype)
        hidden = nn.functional.dropout(hidden, p=decoder.dropout, training=self.training)
        hidden = self.run_decoder_layers(hidden, enc_hidden, enc_mask, cache, decoder.config)
        hidden = decoder.layer_norm(hidden)
        return self.model.proj_out(hidden), cache

    def resize_decoder_vocab(self, new_size: int) -> None:
        """Fresh token embedding + output projection of `new_size` rows (pad row zero)."""
        config = self.model.config
        old = self.model.model.decoder.embed_tokens
        pad = 0
        embedding = nn.Embedding(new_size, old.embedding_dim, pad)
        head = nn.Linear(old.embedding_dim, new_size, bias=False)
        nn.init.normal_(embedding.weight, std=config.init_std)
        with torch.no_grad():
            embedding.weight[pad].zero_()
        nn.init.normal_(head.weight, std=config.init_std)
        device = old.weight.device
        self.model.model.decoder.embed_tokens = embedding.to(device)
        self.model.proj_out = head.to(device)
        config.vocab_size = new_size
        # a new vocabulary comes from the toolkit's tokenizers: pad 0, bos 1, eos 2
        self.options.update(pad_id=0, bos_id=1, eos_id=2)
        config.pad_token_id, config.bos_token_id, config.eos_token_id = 0, 1, 2
        config.decoder_start_token_id = 1
        config.suppress_tokens = config.begin_suppress_tokens = None
        if config.tie_word_embeddings:
            self.model.proj_out.weight = self.model.model.decoder.embed_tokens.weight
