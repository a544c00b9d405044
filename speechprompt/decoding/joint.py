"""Decoding with the encoder's CTC head: CTC greedy search and joint CTC/attention rescoring.

A backbone trained with a CTC weight > 0 carries a linear CTC head on its encoder
(``SpeechSeq2Seq.add_ctc_head``). Two ways to use it:

- ``ctc_greedy_search``: the best path of the CTC posteriors (argmax per frame, repeats merged,
  blanks dropped); no decoder at all, so it cannot loop or stop early.
- ``joint_search``: the attention decoder's candidates (greedy, or the finished hypotheses of a
  beam) plus the CTC best path are rescored with
  ``(1 - ctc_weight) * log p_att(y + EOS | x) + ctc_weight * log p_ctc(y | x)`` and the best kept.
  The CTC term penalises the attention decoder's typical failures on little data (repeated
  phrases, dropped endings), which is why joint decoding beats either alone (Watanabe et al. 2017).

Scores of one utterance never depend on the others in the batch: the CTC loss is per row and the
teacher-forced decoder is causal, so right-padding of candidates changes nothing before it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from speechprompt.decoding.search import beam_hypotheses, greedy_hypotheses, length_limits


@torch.no_grad()
def ctc_greedy_search(model, waveforms: torch.Tensor, wave_lengths: torch.Tensor, task_ids: torch.Tensor,
                      max_len: int = 200, max_len_ratio: float = 1.0) -> list[list[int]]:
    """waveforms (B,S), wave_lengths (B,), task_ids (B,) -> B lists of token ids (CTC best path)."""
    limits = length_limits(model, wave_lengths, max_len, max_len_ratio)
    enc = model.encode(waveforms, wave_lengths, task_ids)
    return _best_paths(model, enc, limits)


def _best_paths(model, enc, limits: list[int]) -> list[list[int]]:
    best = model.backbone.ctc_log_probs(enc.hidden).argmax(-1)  # (B,T')
    out = []
    for row in range(best.shape[0]):
        path = torch.unique_consecutive(best[row][enc.mask[row]]).tolist()
        out.append([t for t in path if t not in (model.pad_id, model.eos_id, model.bos_id)][: limits[row]])
    return out


@torch.no_grad()
def joint_search(model, waveforms: torch.Tensor, wave_lengths: torch.Tensor, task_ids: torch.Tensor,
                 ctc_weight: float = 0.3, beam_size: int = 1, length_penalty: float = 1.0,
                 max_len: int = 200, max_len_ratio: float = 1.0) -> list[list[int]]:
    """Attention candidates + the CTC best path, rescored jointly; returns B lists of token ids."""
    if not 0.0 < ctc_weight <= 1.0:
        raise ValueError(f"ctc_weight={ctc_weight} must be in (0, 1]")
    limits = length_limits(model, wave_lengths, max_len, max_len_ratio)
    enc = model.encode(waveforms, wave_lengths, task_ids)
    if beam_size == 1:  # the encoder output is shared by the attention search, the CTC path and the rescoring
        attention = [[hyp] for hyp in greedy_hypotheses(model, enc, task_ids, limits)]
    else:
        attention = beam_hypotheses(model, enc, task_ids, limits, beam_size, length_penalty)
    candidates = []
    for hyps, path in zip(attention, _best_paths(model, enc, limits), strict=True):
        unique = []
        for hyp in [*hyps, path]:
            if hyp not in unique:
                unique.append(hyp)
        candidates.append(unique)
    rows = torch.tensor([row for row, hyps in enumerate(candidates) for _ in hyps], device=waveforms.device)
    flat = [hyp for hyps in candidates for hyp in hyps]
    expanded = enc.index_select(rows)
    scores = ((1 - ctc_weight) * attention_log_probs(model, expanded, flat, task_ids[rows])
              + ctc_weight * ctc_log_probs(model, expanded, flat)).tolist()
    out, start = [], 0
    for hyps in candidates:
        best = max(range(len(hyps)), key=lambda i: scores[start + i])
        out.append(hyps[best])
        start += len(hyps)
    return out


def _pad(hyps: list[list[int]], value: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """N token lists -> ids (N, max(1, longest)) right-padded with ``value``, lengths (N,)."""
    rows = [torch.tensor(h or [value], dtype=torch.long, device=device) for h in hyps]  # pad_sequence needs >= 1
    lengths = torch.tensor([len(h) for h in hyps], dtype=torch.long, device=device)
    return nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=value), lengths


def attention_log_probs(model, enc, hyps: list[list[int]], task_ids: torch.Tensor) -> torch.Tensor:
    """Teacher-forced log p_att(hyp + EOS | x) for N hypotheses over N encoder rows -> (N,) float."""
    device = enc.hidden.device
    targets, lengths = _pad([h + [model.eos_id] for h in hyps], model.pad_id, device)
    logits = model.teacher_forced_logits(enc, targets, task_ids)
    token_scores = logits.float().log_softmax(-1).gather(-1, targets[..., None])[..., 0]  # (N,L)
    valid = torch.arange(targets.shape[1], device=device)[None, :] < lengths[:, None]
    return (token_scores * valid).sum(1)


def ctc_log_probs(model, enc, hyps: list[list[int]]) -> torch.Tensor:
    """log p_ctc(hyp | x) for N hypotheses over N encoder rows -> (N,) float (-inf where impossible)."""
    log_probs = model.backbone.ctc_log_probs(enc.hidden)  # (N,T',V)
    targets, lengths = _pad(hyps, model.pad_id, enc.hidden.device)
    loss = F.ctc_loss(log_probs.transpose(0, 1), targets, enc.mask.sum(1), lengths, blank=model.pad_id,
                      reduction="none", zero_infinity=False)
    return -loss
