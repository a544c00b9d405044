"""Kaldi-compatible features for padded batches, global CMVN, SpecAugment and speed perturbation.

Features come from ``torchaudio.compliance.kaldi`` (the numbers of Kaldi's ``compute-fbank-feats``
/ ``compute-mfcc-feats`` with ``snip_edges=true``), computed utterance by utterance on the valid
samples only, so an utterance's frames do not depend on what it is batched with.

Example::

    config = FeatureConfig(kind="fbank", num_mel_bins=80)
    feats, frame_lengths = compute_features(batch.waveforms, batch.wave_lengths, config)  # (B,T,80), (B,)
    cmvn = GlobalCMVN.compute(DataDir.read("data/train"), config)        # saved as data/train/cmvn.json
    feats = SpecAugment()(cmvn(feats, frame_lengths), frame_lengths)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torchaudio.compliance.kaldi as kaldi
import torchaudio.functional as taf
from safetensors.torch import load_file, save_file

from speechprompt.data.kaldi_dir import DataDir


@dataclass(frozen=True)
class FeatureConfig:
    """Settings of Kaldi fbank / MFCC (the Kaldi option names, in milliseconds and Hz)."""

    kind: str = "fbank"  # "fbank" or "mfcc"
    num_mel_bins: int = 80
    num_ceps: int = 13  # MFCC only
    frame_length: float = 25.0
    frame_shift: float = 10.0
    dither: float = 0.0  # 0 keeps features deterministic
    sample_rate: int = 16000
    # Kaldi reads 16-bit integers; our float waveforms in [-1, 1] are scaled back to that range
    scale: float = 32768.0

    def __post_init__(self):
        if self.kind not in ("fbank", "mfcc"):
            raise ValueError(f"feature kind must be 'fbank' or 'mfcc', got {self.kind!r}")

    @property
    def dim(self) -> int:
        return self.num_mel_bins if self.kind == "fbank" else self.num_ceps

    def fingerprint(self) -> str:
        """Short hash of the settings, for cache keys and for checking CMVN stats belong to them."""
        return hashlib.sha1(json.dumps(dataclasses.asdict(self), sort_keys=True).encode()).hexdigest()[:12]

    def num_frames(self, num_samples: int) -> int:
        """Frames Kaldi makes from ``num_samples`` (snip_edges=true)."""
        window = int(self.sample_rate * self.frame_length / 1000)
        shift = int(self.sample_rate * self.frame_shift / 1000)
        return 0 if num_samples < window else 1 + (num_samples - window) // shift


def utterance_features(waveform: torch.Tensor, config: FeatureConfig = FeatureConfig()) -> torch.Tensor:
    """(S,) float waveform in [-1, 1] -> (T, F) float32 Kaldi features (T may be 0 for very short input)."""
    if config.num_frames(int(waveform.shape[0])) == 0:
        return torch.zeros(0, config.dim)
    x = waveform.detach().to(torch.float32).reshape(1, -1) * config.scale
    common = dict(frame_length=config.frame_length, frame_shift=config.frame_shift, dither=config.dither,
                  sample_frequency=float(config.sample_rate), num_mel_bins=config.num_mel_bins)
    if config.kind == "fbank":
        return kaldi.fbank(x, **common)
    return kaldi.mfcc(x, num_ceps=config.num_ceps, **common)


def compute_features(
    waveforms: torch.Tensor, wave_lengths: torch.Tensor, config: FeatureConfig = FeatureConfig()
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, S) padded waveforms + (B,) sample counts -> (B, T, F) zero-padded features + (B,) frame counts."""
    per_utt = [utterance_features(waveforms[i, : int(n)], config) for i, n in enumerate(wave_lengths.tolist())]
    frame_lengths = torch.tensor([f.shape[0] for f in per_utt], dtype=torch.long)
    feats = torch.zeros(len(per_utt), max(int(frame_lengths.max()), 1) if per_utt else 0, config.dim)
    for i, f in enumerate(per_utt):
        feats[i, : f.shape[0]] = f
    return feats.to(waveforms.device), frame_lengths.to(waveforms.device)


def fbank(waveforms: torch.Tensor, wave_lengths: torch.Tensor, num_mel_bins: int = 80,
          **options) -> tuple[torch.Tensor, torch.Tensor]:
    """Kaldi log-mel filterbank of a padded batch: (B, S), (B,) -> (B, T, num_mel_bins), (B,) frames.

    ``options`` are the other :class:`FeatureConfig` fields (frame_length, frame_shift, dither, ...).
    """
    return compute_features(waveforms, wave_lengths, FeatureConfig("fbank", num_mel_bins=num_mel_bins, **options))


def mfcc(waveforms: torch.Tensor, wave_lengths: torch.Tensor, num_ceps: int = 13,
         **options) -> tuple[torch.Tensor, torch.Tensor]:
    """Kaldi MFCC of a padded batch: (B, S), (B,) -> (B, T, num_ceps), (B,) frames."""
    return compute_features(waveforms, wave_lengths, FeatureConfig("mfcc", num_ceps=num_ceps, **options))


def _valid_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B,) lengths -> (B, T) bool, True on real frames."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


class GlobalCMVN(torch.nn.Module):
    """Global mean and variance normalisation with statistics over every frame of a data dir.

    Stored as JSON (``cmvn.json`` beside the data by default): frame count, sums, sums of squares
    and the feature settings they were computed with.
    """

    FILENAME = "cmvn.json"

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, count: int = 0, config: FeatureConfig | None = None):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))
        self.count = count
        self.config = config

    @classmethod
    def from_frames(cls, frames: Sequence[torch.Tensor], config: FeatureConfig | None = None,
                    floor: float = 1e-5) -> GlobalCMVN:
        total = sum(int(f.shape[0]) for f in frames)
        if total == 0:
            raise ValueError("cannot compute CMVN statistics from zero frames")
        s = sum(f.double().sum(0) for f in frames)
        sq = sum((f.double() ** 2).sum(0) for f in frames)
        mean = s / total
        std = (sq / total - mean**2).clamp_min(floor**2).sqrt()
        return cls(mean.float(), std.float(), total, config)

    @classmethod
    def compute(cls, data: DataDir, config: FeatureConfig = FeatureConfig(), save: bool = True) -> GlobalCMVN:
        """Statistics over every utterance of ``data``; saved to ``<data dir>/cmvn.json`` when it has a path."""
        cmvn = cls.from_frames([f for _, f in iter_features(data, config)], config)
        if save and data.path is not None:
            cmvn.save(data.path / cls.FILENAME)
        return cmvn

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, F) -> (B, T, F) normalised; padding frames (beyond ``lengths``) stay 0."""
        out = (feats - self.mean) / self.std
        if lengths is not None:
            out = out * _valid_mask(lengths, feats.shape[1]).unsqueeze(-1).to(out.dtype)
        return out

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        body = {"count": self.count, "mean": self.mean.tolist(), "std": self.std.tolist(),
                "config": dataclasses.asdict(self.config) if self.config else None,
                "fingerprint": self.config.fingerprint() if self.config else None}
        path.write_text(json.dumps(body, indent=1))
        return path

    @classmethod
    def load(cls, path: str | Path, config: FeatureConfig | None = None) -> GlobalCMVN:
        """Load stats; with ``config``, refuse stats computed with other feature settings."""
        path = Path(path)
        if path.is_dir():
            path = path / cls.FILENAME
        body = json.loads(path.read_text())
        saved = FeatureConfig(**body["config"]) if body.get("config") else None
        if config is not None and saved is not None and saved != config:
            raise ValueError(f"{path}: CMVN stats were computed with {saved}, not {config} — recompute them")
        return cls(torch.tensor(body["mean"]), torch.tensor(body["std"]), body.get("count", 0), saved)


class SpecAugment(torch.nn.Module):
    """Frequency and time masking (torchaudio's masks) that only ever masks real frames.

    Time masks are at most ``time_mask_param`` frames and at most ``max_time_ratio`` of each
    utterance's own length, so short utterances in a batch of long ones are not wiped out.
    Uses torch's global random state (seed it with ``torch.manual_seed`` for repeatable runs).
    """

    def __init__(self, freq_mask_param: int = 27, time_mask_param: int = 40, num_freq_masks: int = 2,
                 num_time_masks: int = 2, max_time_ratio: float = 0.2, mask_value: float = 0.0):
        super().__init__()
        self.freq_mask_param, self.time_mask_param = freq_mask_param, time_mask_param
        self.num_freq_masks, self.num_time_masks = num_freq_masks, num_time_masks
        self.max_time_ratio, self.mask_value = max_time_ratio, mask_value

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T, F) features, (B,) frame counts -> (B, T, F) masked copy (identity in eval mode)."""
        if not self.training:
            return feats
        out = feats.clone()
        for i, n in enumerate(lengths.tolist()):
            if n == 0:
                continue
            spec = out[i, :n].transpose(0, 1).unsqueeze(0)  # (1, F, n): torchaudio's (..., freq, time)
            for _ in range(self.num_freq_masks):
                spec = taf.mask_along_axis(spec, self.freq_mask_param, self.mask_value, axis=1)
            width = min(self.time_mask_param, int(self.max_time_ratio * n))
            for _ in range(self.num_time_masks if width > 0 else 0):
                spec = taf.mask_along_axis(spec, width, self.mask_value, axis=2)
            out[i, :n] = spec.squeeze(0).transpose(0, 1)
        return out


def speed_perturb(waveform: torch.Tensor, factor: float, sample_rate: int = 16000,
                  lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Kaldi-style speed perturbation (tempo and pitch change together) of (..., S) audio.

    ``factor`` 1.1 makes audio 10 % faster (shorter). Returns the new audio and, when given, new lengths.
    """
    if factor == 1.0:
        return waveform, lengths
    return taf.speed(waveform, sample_rate, factor, lengths)


class SpeedPerturb:
    """A ``waveform_transform`` for :class:`SpeechDataset`: a random factor per utterance.

    With ``seed=None`` the factor is drawn from torch's global generator, which training checkpoints
    capture, so a resumed run perturbs its remaining batches as the uninterrupted run would have.
    """

    def __init__(self, factors: Sequence[float] = (0.9, 1.0, 1.1), seed: int | None = None,
                 sample_rate: int = 16000):
        if not factors or any(f <= 0 for f in factors):
            raise ValueError(f"speed perturbation factors must be positive numbers, got {list(factors)}")
        self.factors, self.sample_rate = [float(f) for f in factors], sample_rate
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None

    def __call__(self, waveform: torch.Tensor) -> torch.Tensor:
        index = int(torch.randint(len(self.factors), (), generator=self.generator))
        return speed_perturb(waveform, self.factors[index], self.sample_rate)[0]


class FeatureCache:
    """Features on disk, one safetensors file per utterance under ``root/<config fingerprint>/``.

    Keyed by utterance id and feature settings only: clear the folder when the audio changes.
    """

    def __init__(self, root: str | Path, config: FeatureConfig):
        self.config = config
        self.dir = Path(root) / config.fingerprint()
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "config.json").write_text(json.dumps(dataclasses.asdict(config), indent=1))

    def _file(self, utt_id: str) -> Path:
        safe = utt_id if re.fullmatch(r"[A-Za-z0-9_.\-]+", utt_id) and not utt_id.startswith(".") else (
            "h-" + hashlib.sha1(utt_id.encode()).hexdigest())
        return self.dir / f"{safe}.safetensors"

    def get(self, utt_id: str) -> torch.Tensor | None:
        path = self._file(utt_id)
        if not path.is_file():
            return None
        stored = load_file(path)
        return stored["features"] if _same_id(stored, utt_id) else None  # hashed names could collide

    def put(self, utt_id: str, feats: torch.Tensor) -> None:
        digest = torch.frombuffer(bytearray(hashlib.sha1(utt_id.encode()).digest()), dtype=torch.uint8)
        save_file({"features": feats.contiguous(), "utt_id_hash": digest}, self._file(utt_id))


def _same_id(stored: dict, utt_id: str) -> bool:
    return bytes(stored["utt_id_hash"].tolist()) == hashlib.sha1(utt_id.encode()).digest()


def iter_features(data: DataDir, config: FeatureConfig = FeatureConfig(),
                  cache_dir: str | Path | None = None) -> Iterator[tuple[str, torch.Tensor]]:
    """``(utt_id, (T, F) features)`` for every utterance, read from / written to a cache when given."""
    cache = FeatureCache(cache_dir, config) if cache_dir is not None else None
    for utt in data.utt_ids:
        feats = cache.get(utt) if cache else None
        if feats is None:
            feats = utterance_features(torch.from_numpy(data.load_audio(utt)), config)
            if cache:
                cache.put(utt, feats)
        yield utt, feats
