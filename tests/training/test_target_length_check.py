"""training.cli.check_target_lengths: targets must fit the decoder, except utterances the sampler skips."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from speechprompt.config import ConfigError
from speechprompt.training.cli import check_target_lengths


class _Chars:
    prefix_ids = [1]  # BOS

    def encode(self, text: str) -> list[int]:
        return [4] * len(text)


class _Set:
    def __init__(self, ids, texts):
        self.utt_ids, self.tokenizer = ids, _Chars()
        self.durations = [texts[u][1] for u in ids]
        self._texts = [texts[u][0] for u in ids]

    def __len__(self) -> int:
        return len(self.utt_ids)

    def tokens_of(self, i: int) -> list[int]:
        return self.tokenizer.encode(self._texts[i])


def test_long_target_fails_unless_its_utterance_is_skipped_by_max_utt_seconds():
    backbone = SimpleNamespace(max_decoder_positions=10)
    data = _Set(["a", "b"], {"a": ("short", 1.0), "b": ("x" * 20, 8.0)})
    with pytest.raises(ConfigError, match="utterance b: its target needs 21 decoder positions, the backbone has 10"):
        check_target_lengths(data, backbone)
    check_target_lengths(data, backbone, max_seconds=5.0)  # 'b' is never batched
    with pytest.raises(ConfigError, match="utterance b"):
        check_target_lengths(data, backbone, max_seconds=9.0)
    check_target_lengths(_Set(["b"], {"b": ("x" * 20, 8.0)}), backbone, max_seconds=5.0)  # nothing left to check
