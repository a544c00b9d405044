"""Contract tests run on every backbone family at its `tiny` size."""

from __future__ import annotations

import pytest
import torch

from speechprompt.backbones import BACKBONE_FAMILIES, BackboneError, build_backbone, load_backbone

FAMILIES = sorted(BACKBONE_FAMILIES)
VOCAB = 40
LENGTHS = [8000, 5000, 6400]  # samples at 16 kHz


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    waves = torch.zeros(len(LENGTHS), max(LENGTHS))
    for i, n in enumerate(LENGTHS):
        waves[i, :n] = 0.1 * torch.randn(n, generator=gen)
        # garbage in the padding must not matter
        waves[i, n:] = 5.0
    return waves, torch.tensor(LENGTHS)


def _ids(batch: int, length: int, seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(3, VOCAB, (batch, length), generator=gen)


@pytest.fixture(scope="module", params=FAMILIES)
def backbone(request):
    torch.manual_seed(0)
    model = build_backbone(request.param, "tiny", VOCAB)
    return model.eval()


@torch.no_grad()
def test_alone_equals_padded_batch(backbone):
    waves, lengths = _batch()
    hidden, mask = backbone.encode(waves, lengths)
    ids = _ids(len(LENGTHS), 6)
    logits, _ = backbone.run_decoder(backbone.embed_tokens(ids), hidden, mask)
    for i, n in enumerate(LENGTHS):
        alone_hidden, alone_mask = backbone.encode(waves[i:i + 1, :n], lengths[i:i + 1])
        frames = int(alone_mask.sum())
        assert int(mask[i].sum()) == frames == alone_mask.shape[1]
        torch.testing.assert_close(hidden[i, :frames], alone_hidden[0], atol=1e-4, rtol=1e-4)
        alone_logits, _ = backbone.run_decoder(backbone.embed_tokens(ids[i:i + 1]), alone_hidden, alone_mask)
        torch.testing.assert_close(logits[i], alone_logits[0], atol=1e-4, rtol=1e-4)


@torch.no_grad()
def test_incremental_decoding_with_prefix_equals_full(backbone):
    waves, lengths = _batch()
    hidden, mask = backbone.encode(waves, lengths)
    batch, steps, prefix_len = len(LENGTHS), 5, 3
    prefix = torch.randn(batch, prefix_len, backbone.decoder_dim)
    ids = _ids(batch, steps)
    full, _ = backbone.run_decoder(torch.cat([prefix, backbone.embed_tokens(ids)], 1), hidden, mask)
    # prefix + first token in one call, then one token at a time through the cache
    first, cache = backbone.run_decoder(torch.cat([prefix, backbone.embed_tokens(ids[:, :1])], 1), hidden, mask)
    pieces = [first]
    for t in range(1, steps):
        step, cache = backbone.run_decoder(backbone.embed_tokens(ids[:, t:t + 1]), hidden, mask, cache)
        pieces.append(step)
    torch.testing.assert_close(torch.cat(pieces, 1), full, atol=1e-4, rtol=1e-4)
    assert cache.get_seq_length() == prefix_len + steps


@torch.no_grad()
def test_reorder_cache_selects_beams(backbone):
    waves, lengths = _batch()
    hidden, mask = backbone.encode(waves, lengths)
    ids = _ids(len(LENGTHS), 3)
    _, cache = backbone.run_decoder(backbone.embed_tokens(ids[:, :2]), hidden, mask)
    index = torch.tensor([2, 2, 0])
    cache = backbone.reorder_cache(cache, index)
    step, _ = backbone.run_decoder(backbone.embed_tokens(ids[index, 2:]), hidden[index], mask[index], cache)
    full, _ = backbone.run_decoder(backbone.embed_tokens(ids[index]), hidden[index], mask[index])
    torch.testing.assert_close(step[:, 0], full[:, 2], atol=1e-4, rtol=1e-4)


@torch.no_grad()
def test_save_load_roundtrip(backbone, tmp_path):
    waves, lengths = _batch()
    ids = _ids(len(LENGTHS), 4)
    hidden, mask = backbone.encode(waves, lengths)
    logits, _ = backbone.run_decoder(backbone.embed_tokens(ids), hidden, mask)
    backbone.save_pretrained(tmp_path / "bb")
    loaded = load_backbone(tmp_path / "bb")
    assert not loaded.training and not loaded.model.training  # loads ready for inference
    assert type(loaded) is type(backbone) and loaded.family == backbone.family
    assert loaded.fingerprint() == backbone.fingerprint()
    hidden2, mask2 = loaded.encode(waves, lengths)
    logits2, _ = loaded.run_decoder(loaded.embed_tokens(ids), hidden2, mask2)
    assert torch.equal(mask, mask2)
    torch.testing.assert_close(hidden2, hidden, atol=0, rtol=0)
    torch.testing.assert_close(logits2, logits, atol=0, rtol=0)


def test_fingerprint_tracks_weights(backbone):
    before = backbone.fingerprint()
    param = next(backbone.encoder_layers[0].parameters())
    saved = param.detach().clone()
    with torch.no_grad():
        param.add_(1.0)
        after = backbone.fingerprint()
        param.copy_(saved)
    assert after != before and backbone.fingerprint() == before


def test_resize_vocab_changes_only_embeddings_and_head(backbone, tmp_path):
    family = backbone.family
    torch.manual_seed(0)
    model = build_backbone(family, "tiny", VOCAB).eval()
    before = {k: v.clone() for k, v in model.model.state_dict().items()}
    model.resize_vocab(57)
    after = model.model.state_dict()
    assert model.vocab_size == 57
    changed = {k for k in before if k not in after or after[k].shape != before[k].shape
               or not torch.equal(after[k], before[k])}
    assert changed, "resize_vocab changed nothing"
    assert all(("embed_tokens" in k or "lm_head" in k or "proj_out" in k) for k in changed), changed
    assert set(after) == set(before)
    waves, lengths = _batch()
    with torch.no_grad():
        hidden, mask = model.encode(waves, lengths)
        logits, _ = model.run_decoder(model.embed_tokens(torch.tensor([[56, 3]] * 3)), hidden, mask)
    assert logits.shape == (3, 2, 57)
    model.save_pretrained(tmp_path / "resized")
    assert load_backbone(tmp_path / "resized").fingerprint() == model.fingerprint()


def test_feature_lengths_match_transformers(backbone):
    waves, lengths = _batch()
    features, mask = backbone.embed_audio(waves, lengths)
    expected = backbone.feature_lengths(lengths)
    assert torch.equal(mask.sum(1), expected)
    assert features.shape == (len(LENGTHS), int(expected.max()), backbone.encoder_dim)
    assert torch.equal(expected, _transformers_frame_lengths(backbone, lengths))


def _transformers_frame_lengths(backbone, lengths: torch.Tensor) -> torch.Tensor:
    """Frame counts computed by transformers' own length function for the family."""
    if backbone.family == "whisper":
        mel_frames = lengths // backbone.hop_length
        return backbone.model.model.encoder._get_feat_extract_output_lengths(mel_frames)
    return backbone.model.encoder._get_feat_extract_output_lengths(lengths)


def test_hooks_on_layers_see_tensors(backbone):
    seen = []
    handles = [layer.register_forward_pre_hook(lambda mod, args: seen.append(("pre", args[0].shape)))
               for layer in backbone.encoder_layers]
    handles += [layer.register_forward_hook(lambda mod, args, out: seen.append(("out", out.shape)))
                for layer in backbone.decoder_layers]
    try:
        waves, lengths = _batch()
        with torch.no_grad():
            hidden, mask = backbone.encode(waves, lengths)
            backbone.run_decoder(backbone.embed_tokens(_ids(3, 2)), hidden, mask)
    finally:
        for handle in handles:
            handle.remove()
    assert [kind for kind, _ in seen] == ["pre"] * len(backbone.encoder_layers) + ["out"] * len(
        backbone.decoder_layers)
    assert all(isinstance(shape, torch.Size) and len(shape) == 3 for _, shape in seen)


def test_gradients_reach_prompt_inputs(backbone):
    waves, lengths = _batch()
    features, mask = backbone.embed_audio(waves, lengths)
    prompt = torch.zeros(len(LENGTHS), 2, backbone.encoder_dim, requires_grad=True)
    full_mask = torch.cat([torch.ones(len(LENGTHS), 2, dtype=torch.bool), mask], 1)
    hidden = backbone.run_encoder(torch.cat([prompt, features], 1), full_mask)
    logits, _ = backbone.run_decoder(backbone.embed_tokens(_ids(3, 2)), hidden, full_mask)
    logits.sum().backward()
    assert prompt.grad is not None and prompt.grad.abs().sum() > 0


def test_too_short_audio_is_a_clear_error(backbone):
    with pytest.raises(BackboneError, match="batch row 1"):
        backbone.embed_audio(torch.zeros(2, 8000), torch.tensor([8000, 100]))


def test_unknown_family_and_size():
    with pytest.raises(BackboneError, match="unknown backbone family"):
        build_backbone("conformer", "tiny", VOCAB)
    with pytest.raises(BackboneError, match="unknown size"):
        build_backbone(FAMILIES[0], "huge", VOCAB)


def test_load_non_backbone_folder(tmp_path):
    with pytest.raises(BackboneError, match="speechprompt_backbone.json"):
        load_backbone(tmp_path)


@torch.no_grad()
def test_bfloat16_weights_run_and_stay_close(backbone):
    import copy

    half = copy.deepcopy(backbone).to(torch.bfloat16)
    waves, lengths = _batch()
    ids = _ids(len(LENGTHS), 3)
    hidden, mask = half.encode(waves, lengths)  # float32 audio into bf16 weights
    logits, _ = half.run_decoder(half.embed_tokens(ids), hidden, mask)
    assert hidden.dtype == logits.dtype == torch.bfloat16
    ref_hidden, _ = backbone.encode(waves, lengths)
    ref_logits, _ = backbone.run_decoder(backbone.embed_tokens(ids), ref_hidden, mask)
    assert torch.isfinite(logits.float()).all()
    assert (logits.float() - ref_logits).abs().max() < 0.25 * ref_logits.abs().max() + 0.1
