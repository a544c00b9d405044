"""Greedy and beam search: batch consistency, cache correctness, length guard, and a hand-built case."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from speechprompt.backbones import build_backbone
from speechprompt.decoding.search import beam_search, greedy_search, length_limits
from speechprompt.tuning import build_tuned_model

LENGTHS = (8000, 5600, 7000)
METHOD_SETTINGS = {
    "prompt": {"num_prompts": 3},
    "decoder_prompt": {"num_prompts": 2},
    "deep_prompt": {"num_prompts": 2, "encoder": True, "decoder": True},
    "ulpt": {"num_prompts": 3, "rank": 2},
    "mept": {"num_experts": 3, "expert_len": 2, "top_k": 2},
    "lora": {"rank": 2},
    "adapter": {"bottleneck": 4, "decoder_layers": None},
    "finetune": {"parts": ["decoder_layers"]},
}


def sharpened_backbone(family: str):
    """A tiny random backbone with large weights, so decoding produces varied, non-tied outputs."""
    torch.manual_seed(0)
    backbone = build_backbone(family, "tiny", vocab_size=30)
    with torch.no_grad():
        for name, param in backbone.named_parameters():
            if param.dim() >= 2:
                param.normal_(0.0, 1.0 if "embed_tokens" in name else 0.5)
    return backbone


@pytest.fixture(scope="module", params=[(f, m) for f in ("wav2vec2", "whisper") for m in METHOD_SETTINGS], ids=str)
def model(request):
    family, method = request.param
    tuned = build_tuned_model(sharpened_backbone(family), method, dict(METHOD_SETTINGS[method], seed=3))
    with torch.no_grad():  # LoRA and adapters start as the identity: give them something to do
        for name, param in tuned.method.named_parameters():
            if name.endswith("up") or name.endswith("up.weight"):
                param.normal_(0.0, 0.5)
    return tuned.eval()


def audio():
    generator = torch.Generator().manual_seed(1)
    waves = torch.randn(len(LENGTHS), max(LENGTHS), generator=generator) * 0.1
    for row, n in enumerate(LENGTHS):
        waves[row, n:] = 0.0
    return waves, torch.tensor(LENGTHS), torch.zeros(len(LENGTHS), dtype=torch.long)


def rows(waves, lengths, tasks, index):
    return waves[index : index + 1, : int(lengths[index])], lengths[index : index + 1], tasks[index : index + 1]


def test_greedy_alone_equals_in_batch(model):
    waves, lengths, tasks = audio()
    together = greedy_search(model, waves, lengths, tasks, max_len=12)
    assert any(together), "the sharpened model should emit tokens"
    for index in range(len(LENGTHS)):
        assert greedy_search(model, *rows(waves, lengths, tasks, index), max_len=12)[0] == together[index]


def test_beam_alone_equals_in_batch(model):
    waves, lengths, tasks = audio()
    together = beam_search(model, waves, lengths, tasks, beam_size=3, max_len=12)
    for index in range(len(LENGTHS)):
        alone = beam_search(model, *rows(waves, lengths, tasks, index), beam_size=3, max_len=12)
        assert alone[0] == together[index]


def test_an_utterance_whose_beam_search_is_over_leaves_the_batch(model, monkeypatch):
    """The short utterance's limit ends its search first: later steps run only the other utterances' K rows
    (and still give what each gives alone, checked above)."""
    waves, lengths, tasks = audio()
    lengths = lengths.clone()
    lengths[1] = 1600  # 0.1 s: a limit of a couple of tokens
    waves[1, 1600:] = 0.0
    seen = []
    step = model.decode_step

    def counting_step(enc, prefix, cache, task_ids):
        seen.append(prefix.shape[0])
        return step(enc, prefix, cache, task_ids)

    monkeypatch.setattr(model, "decode_step", counting_step)
    together = beam_search(model, waves, lengths, tasks, beam_size=3, max_len=12, max_len_ratio=0.3)
    monkeypatch.undo()
    assert seen[0] == 3 * len(LENGTHS) and min(seen) < seen[0]
    alone = beam_search(model, *rows(waves, lengths, tasks, 0), beam_size=3, max_len=12, max_len_ratio=0.3)
    assert alone[0] == together[0]


def test_beam_size_one_equals_greedy(model):
    waves, lengths, tasks = audio()
    assert beam_search(model, waves, lengths, tasks, beam_size=1, max_len=12) == greedy_search(
        model, waves, lengths, tasks, max_len=12
    )


def test_cached_greedy_equals_recomputing_the_whole_prefix(model):
    """decode_step with the KV cache (and decoder prompts inside it) == a fresh pass over the prefix."""
    waves, lengths, tasks = audio()
    hyps = greedy_search(model, waves, lengths, tasks, max_len=8)
    with torch.no_grad():
        enc = model.encode(waves, lengths, tasks)
        for row, hyp in enumerate(hyps):
            prefix = [model.bos_id]
            for token in hyp:
                ids = torch.tensor([prefix])
                single = enc.index_select(torch.tensor([row]))
                log_probs, _ = model.decode_step(single, ids, None, tasks[row : row + 1])
                assert int(log_probs.argmax()) == token
                prefix.append(token)


def test_outputs_respect_the_length_guard_and_drop_specials(model):
    waves, lengths, tasks = audio()
    ratio = 0.1
    limits = length_limits(model, lengths, max_len=50, max_len_ratio=ratio)
    frames = model.backbone.feature_lengths(lengths).tolist()
    assert limits == [math.ceil(ratio * f) for f in frames]
    # never past the decoder's learned positions (prompt prefix and BOS take their share)
    capacity = model.backbone.max_decoder_positions - model.method.decoder_prefix_len - 1
    assert length_limits(model, lengths, max_len=10**6, max_len_ratio=1e6) == [capacity] * len(frames)
    for hyps in (
        greedy_search(model, waves, lengths, tasks, max_len=50, max_len_ratio=ratio),
        beam_search(model, waves, lengths, tasks, beam_size=2, max_len=50, max_len_ratio=ratio),
    ):
        for hyp, limit in zip(hyps, limits, strict=True):
            assert len(hyp) <= limit
            assert model.eos_id not in hyp


class ScriptedModel:
    """Next-token distributions fixed by the last token; the cache must mirror the prefix.

    vocab: 0 pad, 1 bos, 2 eos, 3 A, 4 B. P(A|bos)=.6, P(B|bos)=.4; P(eos|A)=.4, P(eos|B)=.9.
    Greedy picks A then EOS (p=.24); the best sequence is B EOS (p=.36).
    """

    bos_id, eos_id, prefix_len = 1, 2, 1
    table = {1: [0, 0, 0, 0.6, 0.4], 3: [0, 0, 0.4, 0.3, 0.3], 4: [0, 0, 0.9, 0.05, 0.05], 2: [0, 0, 1, 0, 0]}

    def prefix_ids(self, tasks):
        return torch.full((len(tasks), 1), self.bos_id, dtype=torch.long)

    def __init__(self):
        self.backbone = SimpleNamespace(feature_lengths=lambda lengths: lengths, max_decoder_positions=100)
        self.method = SimpleNamespace(decoder_prefix_len=0)

    def encode(self, waves, lengths, tasks):
        enc = SimpleNamespace()
        enc.index_select = lambda index: enc
        return enc

    def decode_step(self, enc, prefix, cache, tasks):
        if cache is not None:
            assert torch.equal(cache, prefix[:, :-1]), "cache was not reordered with the beams"
        probs = torch.tensor([self.table.get(int(t), self.table[2]) for t in prefix[:, -1]])
        return probs.clamp(min=1e-9).log(), prefix

    def reorder_cache(self, cache, index, cross=True):  # no cross-attention cache here
        return cache.index_select(0, index)


def test_beam_search_finds_the_better_sequence_greedy_misses():
    model = ScriptedModel()
    args = (torch.zeros(2, 1), torch.tensor([10, 10]), torch.zeros(2, dtype=torch.long))
    assert greedy_search(model, *args, max_len=5) == [[3], [3]]
    assert beam_search(model, *args, beam_size=2, length_penalty=0.0, max_len=5) == [[4], [4]]
    assert beam_search(model, *args, beam_size=1, length_penalty=0.0, max_len=5) == [[3], [3]]
