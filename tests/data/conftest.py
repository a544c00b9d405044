"""Fixtures that build small Kaldi data dirs from generated audio (numpy + soundfile)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from speechprompt.data.audio import write_audio


def tone(seconds: float, sr: int = 16000, freq: float = 440.0, seed: int = 0) -> np.ndarray:
    """A tone plus a little noise: (S,) float32."""
    t = np.arange(int(round(seconds * sr))) / sr
    noise = np.random.default_rng(seed).normal(0, 0.01, t.size)
    return (0.3 * np.sin(2 * np.pi * freq * t) + noise).astype(np.float32)


def make_data_dir(root: Path, n: int = 6, speakers: int = 2, text: bool = True, seconds=None) -> Path:
    """A data dir of ``n`` WAV utterances ``spk{k}-utt{i}`` with absolute paths."""
    wav_dir = root / "wav"
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        spk = f"spk{i % speakers}"
        utt = f"{spk}-utt{i:02d}"
        dur = seconds[i] if seconds else 0.5 + 0.25 * i
        path = write_audio(wav_dir / f"{utt}.wav", tone(dur, freq=200 + 50 * i, seed=i), 16000)
        rows.append((utt, spk, path, f"hello world number {i}"))
    rows.sort()
    (data / "wav.scp").write_text("".join(f"{u} {p}\n" for u, _, p, _ in rows))
    (data / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s, _, _ in rows))
    if text:
        (data / "text").write_text("".join(f"{u} {t}\n" for u, _, _, t in rows))
    return data


@pytest.fixture
def data_dir(tmp_path) -> Path:
    return make_data_dir(tmp_path)


@pytest.fixture
def make_dir():
    """Factory fixture: ``make_dir(root, n=6, speakers=2, text=True, seconds=None) -> Path``."""
    return make_data_dir


@pytest.fixture
def make_tone():
    """Factory fixture: ``make_tone(seconds, sr=16000, freq=440.0, seed=0) -> (S,) float32``."""
    return tone
