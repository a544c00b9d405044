"""Batched greedy and beam search over ``TunedModel.encode`` + ``decode_step`` (with the KV cache).

Both return one list of token ids per utterance, without the task prefix and EOS. Each utterance's
output is capped at ``min(max_len, ceil(max_len_ratio * encoder frames))`` tokens, so a model that never
emits EOS still stops in time proportional to its audio, and a hypothesis caught in a loop (``loop_start``:
a short n-gram more than ``max_repeats`` times in a row, or a long phrase twice) ends there with the
repeats cut to one copy: released Whisper checkpoints repeat a phrase on some utterances until the cap. Every utterance is decided on its own
scores only, so an utterance decodes the same alone and inside a padded batch. Put the model in
``eval()`` mode first (dropout); gradients are off inside.

```python
from speechprompt.decoding.search import beam_search, greedy_search
hyps = greedy_search(model, batch.waveforms, batch.wave_lengths, batch.task_ids, max_len=200)
hyps = beam_search(model, batch.waveforms, batch.wave_lengths, batch.task_ids, beam_size=4)
```
"""

from __future__ import annotations

import math

import torch

DEFAULT_MAX_REPEATS = 4  # a fifth copy in a row of a short n-gram ends the hypothesis
LONG_LOOP_NGRAM = 12  # a phrase of this many tokens or more ends the hypothesis on its second copy


def length_limits(model, wave_lengths: torch.Tensor, max_len: int, max_len_ratio: float) -> list[int]:
    """(B,) samples -> per-utterance token limits: min(max_len, ceil(ratio * encoder frames)), >= 1."""
    if max_len < 1 or max_len_ratio <= 0:
        raise ValueError(f"max_len={max_len} and max_len_ratio={max_len_ratio} must be positive")
    frames = model.backbone.feature_lengths(wave_lengths).tolist()
    # the decoder's learned positions hold the prompt vectors, the task prefix and the output tokens
    capacity = model.backbone.max_decoder_positions - model.method.decoder_prefix_len - model.prefix_len
    return [max(1, min(max_len, capacity, math.ceil(max_len_ratio * f))) for f in frames]


def loop_start(tokens: list[int], max_repeats: int) -> int | None:
    """The length to keep (one copy of the loop) when ``tokens`` end in a loop, else None.

    A loop is an n-gram repeated at the end more than ``max_repeats`` times in a row, or, for
    n >= LONG_LOOP_NGRAM tokens (a whole phrase), twice in a row. ``max_repeats`` 0: never a loop.
    """
    if max_repeats < 1 or len(tokens) < 2:
        return None
    size, last = len(tokens), tokens[-1]
    for n in range(1, size // 2 + 1):
        if tokens[-1 - n] != last:  # cheap test before comparing whole n-grams
            continue
        copies = 2 if n >= LONG_LOOP_NGRAM else max_repeats + 1
        if n * copies > size:
            continue
        tail = tokens[-n:]
        if all(tokens[size - (k + 1) * n: size - k * n] == tail for k in range(1, copies)):
            start = size - copies * n
            while start >= n and tokens[start - n: start] == tail:  # earlier copies belong to the loop too
                start -= n
            return start + n
    return None


@torch.no_grad()
def greedy_search(
    model,
    waveforms: torch.Tensor,
    wave_lengths: torch.Tensor,
    task_ids: torch.Tensor,
    max_len: int = 200,
    max_len_ratio: float = 1.0,
    max_repeats: int = DEFAULT_MAX_REPEATS,
) -> list[list[int]]:
    """waveforms (B,S), wave_lengths (B,), task_ids (B,) -> B lists of token ids (argmax each step).

    Rows that finish leave the batch (tensors and KV cache), so long utterances do not make the
    short ones pay for further steps.
    """
    limits = length_limits(model, wave_lengths, max_len, max_len_ratio)
    return greedy_hypotheses(model, model.encode(waveforms, wave_lengths, task_ids), task_ids, limits, max_repeats)


def greedy_hypotheses(model, enc, task_ids: torch.Tensor, limits: list[int],
                      max_repeats: int = DEFAULT_MAX_REPEATS) -> list[list[int]]:
    """Greedy search over an already computed EncoderOutput of B utterances -> B lists of token ids."""
    device = task_ids.device
    outputs: list[list[int]] = [[] for _ in limits]
    rows = list(range(len(limits)))  # original batch rows still decoding, in the order of the tensors
    prefix = model.prefix_ids(task_ids)
    cache = None
    while rows:
        log_probs, cache = model.decode_step(enc, prefix, cache, task_ids)
        tokens = log_probs.argmax(-1)
        keep = []
        for position, (row, token) in enumerate(zip(rows, tokens.tolist(), strict=True)):
            if token == model.eos_id:
                continue
            outputs[row].append(token)
            loop = loop_start(outputs[row], max_repeats)
            if loop is not None:
                del outputs[row][loop:]
            elif len(outputs[row]) < limits[row]:
                keep.append(position)
        if len(keep) < len(rows):  # drop finished rows from every tensor and the cache
            if not keep:
                break
            index = torch.tensor(keep, device=device)
            enc, task_ids, prefix, tokens = enc.index_select(index), task_ids[index], prefix[index], tokens[index]
            cache = model.reorder_cache(cache, index)
            rows = [rows[position] for position in keep]
        prefix = torch.cat([prefix, tokens[:, None]], dim=1)
    return outputs


class _Hypotheses:
    """The finished hypotheses of one utterance (at most beam_size, best kept)."""

    def __init__(self, beam_size: int, length_penalty: float) -> None:
        self.beam_size, self.length_penalty = beam_size, length_penalty
        self.items: list[tuple[float, list[int]]] = []

    def normalised(self, score: float, length: int) -> float:
        return score / (max(length, 1) ** self.length_penalty)

    def add(self, score: float, tokens: list[int], length: int) -> None:
        self.items.append((self.normalised(score, length), tokens))
        self.items.sort(key=lambda item: -item[0])
        del self.items[self.beam_size :]

    def done(self, best_running: float, length: int) -> bool:
        """Full, and no running beam can still beat the worst finished one (at the current length)."""
        if len(self.items) < self.beam_size:
            return False
        return self.items[-1][0] >= self.normalised(best_running, length)


@torch.no_grad()
def beam_search(
    model,
    waveforms: torch.Tensor,
    wave_lengths: torch.Tensor,
    task_ids: torch.Tensor,
    beam_size: int = 4,
    length_penalty: float = 1.0,
    max_len: int = 200,
    max_len_ratio: float = 1.0,
    max_repeats: int = DEFAULT_MAX_REPEATS,
) -> list[list[int]]:
    """Beam search; scores are summed log-probabilities divided by length ** length_penalty.

    waveforms (B,S), wave_lengths (B,), task_ids (B,) -> B lists of token ids (the best hypothesis).
    """
    if beam_size < 1:
        raise ValueError(f"beam_size={beam_size} must be >= 1")
    limits = length_limits(model, wave_lengths, max_len, max_len_ratio)
    enc = model.encode(waveforms, wave_lengths, task_ids)
    return [hyps[0] if hyps else []
            for hyps in beam_hypotheses(model, enc, task_ids, limits, beam_size, length_penalty, max_repeats)]


def beam_hypotheses(model, enc, task_ids: torch.Tensor, limits: list[int], beam_size: int,
                    length_penalty: float, max_repeats: int = DEFAULT_MAX_REPEATS) -> list[list[list[int]]]:
    """The finished hypotheses of each utterance, best first (at most beam_size): B lists of token id lists.

    enc: the EncoderOutput of B utterances; limits: their token limits (``length_limits``). An utterance whose
    search is over leaves the batch (its K rows of every tensor and of the KV cache), as in greedy search, so a
    batch costs what its running utterances cost, not K rows of its longest one at every step.
    """
    device = task_ids.device
    width = beam_size
    active = list(range(len(limits)))  # utterances still searching, in the order of the tensors' row blocks
    rows = torch.arange(len(active), device=device).repeat_interleave(width)  # (A*K,)
    enc = enc.index_select(rows)
    beam_tasks = task_ids[rows]
    scores = torch.full((len(active), width), float("-inf"), device=device)
    scores[:, 0] = 0.0  # all beams start identical: only one may expand at the first step
    prefix = model.prefix_ids(beam_tasks)
    tokens_so_far: list[list[int]] = [[] for _ in range(len(active) * width)]
    finished = [_Hypotheses(width, length_penalty) for _ in limits]
    cache = None
    for step in range(max(limits)):
        log_probs, cache = model.decode_step(enc, prefix, cache, beam_tasks)  # (A*K, V)
        batch, vocab = len(active), log_probs.shape[-1]
        candidates = (scores.view(-1, 1) + log_probs).view(batch, width * vocab)
        top_scores, top_index = candidates.topk(min(2 * width, width * vocab), dim=-1)
        top_scores, top_index = top_scores.tolist(), top_index.tolist()
        next_scores = torch.full((batch, width), float("-inf"), device=device)
        next_rows = torch.arange(batch * width, device=device).view(batch, width).clone()
        next_tokens = torch.full((batch, width), model.eos_id, dtype=torch.long, device=device)
        next_history: list[list[int]] = [[] for _ in range(batch * width)]
        still = []  # positions (row blocks) of the utterances that search on
        for p, b in enumerate(active):
            last_step = step + 1 >= limits[b]
            kept = 0
            for score, index in zip(top_scores[p], top_index[p], strict=True):
                if score == float("-inf"):
                    break
                source, token = p * width + index // vocab, index % vocab
                history = tokens_so_far[source]
                loop = None if token == model.eos_id else loop_start(history + [token], max_repeats)
                if token == model.eos_id or last_step or loop is not None:
                    body = history if token == model.eos_id else (history + [token])[:loop]
                    finished[b].add(score, body, step + 1)
                    continue
                next_scores[p, kept], next_rows[p, kept], next_tokens[p, kept] = score, source, token
                next_history[p * width + kept] = history + [token]
                kept += 1
                if kept == width:
                    break
            best_running = float(next_scores[p, 0])
            if not (last_step or kept == 0 or finished[b].done(best_running, step + 1)):
                still.append(p)
        if not still:
            break
        dropped = len(still) < batch
        if dropped:  # the finished utterances' rows leave every tensor and the cache
            keep = torch.tensor(still, device=device)
            next_scores, next_rows, next_tokens = next_scores[keep], next_rows[keep], next_tokens[keep]
            next_history = [next_history[p * width + k] for p in still for k in range(width)]
            active = [active[p] for p in still]
        order = next_rows.view(-1)  # a beam's source row always belongs to its own utterance
        # an utterance's K rows share one encoder output: the cross-attention cache changes only when rows leave
        cache = model.reorder_cache(cache, order, cross=dropped)
        if dropped:
            enc, beam_tasks = enc.index_select(order), beam_tasks[order]
        prefix = torch.cat([prefix[order], next_tokens.view(-1, 1)], dim=1)
        scores, tokens_so_far = next_scores, next_history
    return [[tokens for _, tokens in hyps.items] for hyps in finished]
