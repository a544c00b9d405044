"""All-silent audio: detected when an utterance is loaded, collected, and reported with count + ids."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

SILENCE_PEAK = 1e-4  # peak |sample| below this (-80 dBFS) counts as all-silent


def is_silent(samples: np.ndarray, peak: float = SILENCE_PEAK) -> bool:
    return samples.size > 0 and float(np.abs(samples).max()) < peak


class SilentAudio:
    """Wraps loaders so that each all-silent utterance is noted (and still returned)."""

    def __init__(self, peak: float = SILENCE_PEAK):
        self.peak = peak
        self.ids: list[str] = []

    def watch(self, key: str, load: Callable[[], np.ndarray]) -> Callable[[], np.ndarray]:
        def loaded() -> np.ndarray:
            samples = load()
            if is_silent(samples, self.peak) and key not in self.ids:
                self.ids.append(key)
            return samples

        return loaded

    def report(self, what: str = "utterance(s)", shown: int = 10) -> str | None:
        """``N utterance(s) are all-silent audio (peak below ...): id id ...``, or None."""
        if not self.ids:
            return None
        ids = sorted(self.ids)
        more = f" ... (+{len(ids) - shown})" if len(ids) > shown else ""
        return (f"{len(ids)} {what} are all-silent audio (peak below {self.peak:g}), processed anyway: "
                + " ".join(ids[:shown]) + more)
