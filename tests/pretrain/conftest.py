"""Generated 'speech': utterances made of tone segments from a small phone inventory (seeded)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from speechprompt.data.audio import write_audio

PHONES = [(220.0, 0.3), (440.0, 0.2), (700.0, 0.3), (1200.0, 0.15), (0.0, 0.0)]  # (freq, amplitude); 0 = pause


def phone_utterance(seed: int, seconds: float = 1.0, sr: int = 16000) -> np.ndarray:
    """(S,) float32: 60-160 ms segments, each a tone (or silence) from PHONES, plus light noise."""
    rng = np.random.default_rng(seed)
    pieces, total = [], 0
    while total < seconds * sr:
        freq, amp = PHONES[int(rng.integers(len(PHONES)))]
        n = int(rng.integers(960, 2560))
        t = np.arange(n) / sr
        pieces.append(amp * np.sin(2 * np.pi * freq * t))
        total += n
    wave = np.concatenate(pieces)[: int(seconds * sr)]
    return (wave + rng.normal(0, 0.005, wave.size)).astype(np.float32)


def make_phone_data(root: Path, n: int = 8, seconds: float = 1.0, text: bool = True) -> Path:
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        utt = f"spk{i % 2}-utt{i:02d}"
        path = write_audio(root / "wav" / f"{utt}.wav", phone_utterance(i, seconds), 16000)
        rows.append((utt, f"spk{i % 2}", path, " ".join(["one", "two", "three", "four"][: 1 + i % 4])))
    rows.sort()
    (data / "wav.scp").write_text("".join(f"{u} {p}\n" for u, _, p, _ in rows))
    (data / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s, _, _ in rows))
    if text:
        (data / "text").write_text("".join(f"{u} {t}\n" for u, _, _, t in rows))
    return data


@pytest.fixture
def phone_data(tmp_path) -> Path:
    return make_phone_data(tmp_path / "corpus")
