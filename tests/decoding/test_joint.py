"""CTC head, joint CTC/attention training and decoding: batch consistency, scores, saving."""

from __future__ import annotations

import math

import pytest
import torch
from decoding.test_search import audio, rows, sharpened_backbone

from speechprompt.backbones import BackboneError, build_backbone, load_backbone
from speechprompt.data.dataset import collate
from speechprompt.decoding.joint import attention_log_probs, ctc_greedy_search, ctc_log_probs, joint_search
from speechprompt.tuning import build_tuned_model


@pytest.fixture(scope="module", params=["wav2vec2", "whisper"])
def model(request):
    backbone = sharpened_backbone(request.param)
    tuned = build_tuned_model(backbone, "prompt", {"num_prompts": 3, "seed": 1, "ctc_weight": 0.3})
    with torch.no_grad():
        tuned.backbone.ctc_head.weight.normal_(0.0, 2.0)  # peaky posteriors: a non-empty best path
    return tuned.eval()


@pytest.mark.parametrize("search", ["ctc", "joint_greedy", "joint_beam"])
def test_alone_equals_inside_padded_batch(model, search):
    decode = {
        "ctc": lambda *a: ctc_greedy_search(model, *a, max_len=20),
        "joint_greedy": lambda *a: joint_search(model, *a, ctc_weight=0.5, max_len=20),
        "joint_beam": lambda *a: joint_search(model, *a, ctc_weight=0.5, beam_size=3, max_len=20),
    }[search]
    waves, lengths, tasks = audio()
    batched = decode(waves, lengths, tasks)
    assert any(batched), "every hypothesis is empty: the test would not see a difference"
    for index in range(len(lengths)):
        assert decode(*rows(waves, lengths, tasks, index)) == [batched[index]]


def test_ctc_best_path_merges_repeats_and_drops_blanks(model, monkeypatch):
    blank = model.pad_id
    frames = [blank, 5, 5, blank, 5, 7, 7, blank]  # -> 5 5 7
    posteriors = torch.full((1, len(frames), model.backbone.vocab_size), -10.0)
    for t, token in enumerate(frames):
        posteriors[0, t, token] = 0.0
    waves, lengths, tasks = audio()
    one = rows(waves, lengths, tasks, 0)
    mask_frames = model.encode(*one).mask.shape[1]
    posteriors = torch.cat([posteriors, torch.full((1, mask_frames - len(frames), posteriors.shape[2]), -10.0)], 1)
    posteriors[0, len(frames):, blank] = 0.0
    monkeypatch.setattr(model.backbone, "ctc_log_probs", lambda hidden: posteriors)
    assert ctc_greedy_search(model, *one) == [[5, 5, 7]]


def test_joint_scores_are_the_two_log_likelihoods(model):
    waves, lengths, tasks = audio()
    with torch.no_grad():
        enc = model.encode(*rows(waves, lengths, tasks, 1))
    hyps = [[4, 5], [4, 5, 6]]
    two = enc.index_select(torch.tensor([0, 0]))
    ctc = ctc_log_probs(model, two, hyps)
    att = attention_log_probs(model, two, hyps, torch.zeros(2, dtype=torch.long))
    # attention: the sum of teacher-forced log-probabilities, EOS included, computed step by step
    prefix, expected = torch.tensor([[model.bos_id]]), 0.0
    cache = None
    for token in [4, 5, model.eos_id]:
        with torch.no_grad():
            log_probs, cache = model.decode_step(enc, prefix, cache, torch.zeros(1, dtype=torch.long))
        expected += float(log_probs[0, token])
        prefix = torch.cat([prefix, torch.tensor([[token]])], 1)
    assert math.isclose(float(att[0]), expected, rel_tol=1e-4, abs_tol=1e-4)
    # CTC: a longer label sequence has fewer alignments; both are finite log-probabilities
    assert bool(torch.isfinite(ctc).all()) and bool((ctc < 0).all())
    too_long = ctc_log_probs(model, enc, [[4] * (enc.mask.shape[1] + 1)])
    assert float(too_long[0]) == float("-inf"), "more labels than frames must be impossible"


def test_ctc_weight_mixes_the_losses_and_trains_a_fresh_head():
    torch.manual_seed(0)
    backbone = build_backbone("wav2vec2", "tiny", vocab_size=20)
    frozen = {k: v.clone() for k, v in backbone.model.state_dict().items()}
    weight = 0.4
    model = build_tuned_model(backbone, "prompt", {"num_prompts": 2, "ctc_weight": weight})
    assert model.vocab_parameter_names == ["ctc_head.weight", "ctc_head.bias"]
    assert model.parameter_report().parts == {"vocabulary": 32 * 20 + 20, "prompt": 2 * 32}
    items = [{"utt_id": f"u{i}", "waveform": torch.randn(9000 + 2000 * i), "text": "", "tokens": [5, 6, 7][: i + 1],
              "task_id": 0} for i in range(3)]
    batch = collate(items)
    out = model(batch)
    assert torch.allclose(out.loss, (1 - weight) * out.aux["ce"] + weight * out.aux["ctc"])
    out.loss.backward()
    assert model.backbone.ctc_head.weight.grad is not None
    assert all(torch.equal(v, backbone.model.state_dict()[k]) for k, v in frozen.items())


def test_ctc_head_saves_reloads_and_enters_the_fingerprint(tmp_path):
    torch.manual_seed(0)
    backbone = build_backbone("whisper", "tiny", vocab_size=20)
    without = backbone.fingerprint()
    backbone.add_ctc_head()
    assert backbone.fingerprint() != without
    backbone.save_pretrained(tmp_path / "bb")
    again = load_backbone(tmp_path / "bb")
    assert torch.equal(again.ctc_head.weight, backbone.ctc_head.weight)
    assert again.fingerprint() == backbone.fingerprint()
    backbone.resize_vocab(33)  # a new vocabulary replaces the CTC head too
    assert backbone.ctc_head.weight.shape == (33, backbone.encoder_dim)
    with pytest.raises(BackboneError, match="does not fit"):
        backbone.load_ctc_head(tmp_path / "bb" / "ctc_head.safetensors")
    with pytest.raises(BackboneError, match="no CTC head"):
        build_backbone("whisper", "tiny", vocab_size=20).ctc_log_probs(torch.zeros(1, 2, 32))
