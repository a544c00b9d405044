"""Frame-level features that the pseudo-language k-means clusters.

- ``MfccFeatures``: Kaldi MFCC (13 cepstra, 25 ms / 10 ms, no energy) + deltas + delta-deltas
  = 39 dims at 100 frames/s, as HuBERT's and Wav2Seq's first iteration.
- ``HiddenStateFeatures``: the output of encoder layer ``layer`` of an existing backbone
  (layer 0: the feature encoder's output), at the backbone's frame rate: the second iteration, or
  the first one on a pretrained encoder (a released Whisper checkpoint, on each utterance's true length).
"""

from __future__ import annotations

import torch
import torchaudio

from speechprompt.data.features import FeatureConfig, utterance_features
from speechprompt.decoding.long_form import max_input_samples, split

SAMPLE_RATE = 16000


class MfccFeatures:
    """waveform (S,) float32 at 16 kHz -> (T, 39) float32, T = 1 + (S - 400) // 160."""

    name = "mfcc"
    frame_rate = 100.0

    def __init__(self, num_ceps: int = 13):
        self.num_ceps = num_ceps
        self.dim = 3 * num_ceps

    def config(self) -> dict:
        return {"feature": self.name, "num_ceps": self.num_ceps}

    @torch.no_grad()
    def __call__(self, waveform: torch.Tensor) -> torch.Tensor:
        # the data layer's Kaldi MFCC (int16 scale, no dither: labels must not depend on the RNG)
        mfcc = utterance_features(waveform, FeatureConfig(kind="mfcc", num_ceps=self.num_ceps, dither=0.0))
        if mfcc.shape[0] == 0:
            return torch.zeros(0, self.dim)
        feats = mfcc.transpose(0, 1)  # (C, T)
        delta = torchaudio.functional.compute_deltas(feats)
        ddelta = torchaudio.functional.compute_deltas(delta)
        return torch.cat([feats, delta, ddelta], dim=0).transpose(0, 1).contiguous()


class _StopForward(Exception):
    pass


class HiddenStateFeatures:
    """waveform (S,) -> (T, D) hidden states of encoder layer ``layer`` (1-based; 0 = feature encoder).

    Every utterance is encoded alone on its true length: a released Whisper checkpoint's 30 s input
    window is switched off (``pad_to_window``), so T = the encoder's frames of the audio itself (50 a
    second for Whisper) and the positional embeddings are those of positions 0..T-1. Audio longer than
    the encoder's positions (Whisper: 30 s) is cut at pauses, as the Transcriber cuts it, and the
    pieces' frames are joined in order: no utterance is lost to the window. ``source`` (a
    fetched name or folder) is recorded in ``config()``, so the same pseudo language can label other
    data later without naming the backbone again.
    """

    name = "hidden"

    def __init__(self, backbone, layer: int, device: str | torch.device = "cpu", source: str | None = None):
        n = len(backbone.encoder_layers)
        if not 0 <= layer <= n:
            raise ValueError(f"layer {layer} does not exist: the backbone has encoder layers 1..{n} (0 = feature encoder)")
        self.backbone = backbone.eval().to(device)
        if getattr(backbone, "pad_to_window", False):
            backbone.pad_to_window = False
        self.layer = layer
        self.source = source
        self.device = torch.device(device)
        self.dim = getattr(backbone, "encoder_dim", None)
        self.fingerprint = backbone.fingerprint()
        self.max_samples = max_input_samples(backbone)  # None: no window (wav2vec2 encoders)
        probe = self(torch.zeros(SAMPLE_RATE))  # one second of silence
        self.frame_rate, self.dim = float(probe.shape[0]), int(probe.shape[1])

    def config(self) -> dict:
        config = {"feature": self.name, "layer": self.layer, "backbone_fingerprint": self.fingerprint,
                  "backbone_family": self.backbone.family}
        if self.source is not None:
            config["backbone"] = self.source
        return config

    @torch.no_grad()
    def __call__(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.layers(waveform, [self.layer])[self.layer]

    @torch.no_grad()
    def layers(self, waveform: torch.Tensor, layers: list[int]) -> dict[int, torch.Tensor]:
        """waveform (S,) -> {layer: (T, D)} for several layers in one pass (stops after the deepest);
        audio longer than the encoder's window is encoded piece by piece, T = the pieces' frames."""
        pieces = split(waveform.numpy(), self.max_samples)  # [waveform] when it fits or there is no window
        if len(pieces) == 1:
            return self._piece_layers(waveform, layers)
        encoded = [self._piece_layers(torch.from_numpy(piece), layers) for piece in pieces]
        return {k: torch.cat([piece[k] for piece in encoded]) for k in layers}

    def _piece_layers(self, waveform: torch.Tensor, layers: list[int]) -> dict[int, torch.Tensor]:
        if waveform.numel() < 400:
            return {k: torch.zeros(0, self.dim or 0) for k in layers}
        wave = waveform.float()[None].to(self.device)
        features, mask = self.backbone.embed_audio(wave, torch.tensor([wave.shape[1]], device=self.device))
        captured = {0: features}
        deepest = max(layers)
        handles = []

        def grab(index):
            def hook(module, args, output):
                captured[index] = output[0] if isinstance(output, tuple) else output
                if index == deepest:
                    raise _StopForward  # later layers are not needed

            return hook

        for k in sorted(set(layers) - {0}):
            handles.append(self.backbone.encoder_layers[k - 1].register_forward_hook(grab(k)))
        try:
            if deepest > 0:
                self.backbone.run_encoder(features, mask)
        except _StopForward:
            pass
        finally:
            for handle in handles:
                handle.remove()
        return {k: captured[k][0].float().cpu() for k in layers}
