"""Audio longer than a backbone's input window, cut into pieces the backbone can take.

Whisper's encoder has a fixed number of positions (30 s of audio for the released checkpoints), so a
longer recording cannot be decoded in one piece. The Transcriber cuts it at the quietest 25 ms of the
last few seconds before each limit (in a pause where there is one, rather than inside a word),
decodes every piece as an utterance of its own, in the same length-sorted batches as everything
else, and joins the pieces' texts in order. Backbones without such a limit (wav2vec2 encoders) are
never cut.

    limit = max_input_samples(backbone)            # 479_999 for a released Whisper, None for wav2vec2
    pieces = split(wave, limit)                     # [(S_1,), (S_2,), ...], each at most limit samples
"""

from __future__ import annotations

import numpy as np
import torch

FRAME, HOP = 400, 160  # 25 ms frames every 10 ms at 16 kHz: the energy resolution of a cut
SEARCH_SECONDS = 5.0  # how far before the limit the quietest frame is looked for


def max_input_samples(backbone) -> int | None:
    """The longest input, in samples, the backbone's encoder accepts; None when it has no limit."""
    window = getattr(backbone, "window_samples", None)
    positions = getattr(getattr(getattr(backbone, "model", None), "config", None), "max_source_positions", None)
    if window is None or positions is None:
        return None
    # the largest length whose encoder frames still fit (framing rounds, so search rather than divide)
    low, high = 1, int(window) + 4 * FRAME
    while low < high:
        mid = (low + high + 1) // 2
        if int(backbone.feature_lengths(torch.tensor([mid]))[0]) <= int(positions):
            low = mid
        else:
            high = mid - 1
    return low


def frame_energy(wave: np.ndarray) -> np.ndarray:
    """(S,) samples, S >= FRAME -> (F,) mean power of each 25 ms frame, 10 ms apart."""
    frames = np.lib.stride_tricks.sliding_window_view(np.asarray(wave, dtype=np.float64), FRAME)[::HOP]
    return (frames ** 2).mean(axis=1)


def cut_points(wave: np.ndarray, max_samples: int, sample_rate: int = 16000) -> list[int]:
    """(S,) samples -> increasing sample indices where to cut, so that no piece exceeds ``max_samples``."""
    if max_samples < 2 * FRAME:
        raise ValueError(f"max_samples={max_samples}: too short to cut audio in (at least {2 * FRAME})")
    search = min(int(SEARCH_SECONDS * sample_rate), max_samples // 2)
    cuts, start = [], 0
    while len(wave) - start > max_samples:
        low = start + max_samples - search
        quietest = int(np.argmin(frame_energy(wave[low:start + max_samples])))
        start = low + quietest * HOP + FRAME // 2  # the middle of the quietest frame
        cuts.append(start)
    return cuts


def split(wave: np.ndarray, max_samples: int | None) -> list[np.ndarray]:
    """(S,) samples -> pieces of at most ``max_samples`` (the wave itself when it fits or there is no limit)."""
    if max_samples is None or len(wave) <= max_samples:
        return [wave]
    bounds = [0, *cut_points(wave, max_samples), len(wave)]
    return [wave[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
