"""Wav2vec2-family specifics: the split forward equals transformers' own forward; group-norm front-ends."""

from __future__ import annotations

import pytest
import torch

from speechprompt.backbones import BackboneError, build_backbone
from speechprompt.backbones.wav2vec2_seq2seq import Wav2Vec2Seq2Seq

LENGTHS = [8000, 4800]


def _waves() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    waves = 0.1 * torch.randn(len(LENGTHS), max(LENGTHS), generator=gen)
    for i, n in enumerate(LENGTHS):
        waves[i, n:] = 0.0  # transformers' own forward expects zero padding
    return waves, torch.tensor(LENGTHS)


@pytest.mark.parametrize("family", ["wav2vec2", "hubert", "wavlm"])
@pytest.mark.parametrize("stable_layer_norm", [False, True])
@torch.no_grad()
def test_split_forward_equals_transformers_forward(family, stable_layer_norm):
    torch.manual_seed(0)
    backbone = build_backbone(family, "tiny", 30, do_stable_layer_norm=stable_layer_norm).eval()
    waves, lengths = _waves()
    sample_mask = (torch.arange(waves.shape[1])[None] < lengths[:, None]).long()
    ids = torch.randint(3, 30, (len(LENGTHS), 5), generator=torch.Generator().manual_seed(0))

    hidden, mask = backbone.encode(waves, lengths)
    logits, _ = backbone.run_decoder(backbone.embed_tokens(ids), hidden, mask)

    reference = backbone.model(input_values=waves, attention_mask=sample_mask, decoder_input_ids=ids)
    ref_hidden = backbone.model.encoder(waves, attention_mask=sample_mask).last_hidden_state
    for i in range(len(LENGTHS)):
        frames = int(mask[i].sum())
        torch.testing.assert_close(hidden[i, :frames], ref_hidden[i, :frames], atol=1e-5, rtol=1e-5)
    # transformers' decoder attends to every encoder frame; compare on the unpadded utterance
    torch.testing.assert_close(logits[0], reference.logits[0], atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_group_norm_front_end_runs_per_utterance():
    torch.manual_seed(0)
    backbone = build_backbone("hubert", "tiny", 30, feat_extract_norm="group").eval()
    waves, lengths = _waves()
    hidden, mask = backbone.encode(waves, lengths)
    alone, alone_mask = backbone.encode(waves[1:, : LENGTHS[1]], lengths[1:])
    frames = int(alone_mask.sum())
    torch.testing.assert_close(hidden[1, :frames], alone[0], atol=1e-4, rtol=1e-4)


@torch.no_grad()
def test_waveform_normalisation_ignores_padding_and_scale():
    torch.manual_seed(0)
    backbone = build_backbone("wav2vec2", "tiny", 30).eval()
    backbone.options["normalize_waveform"] = True
    waves, lengths = _waves()
    features, _ = backbone.embed_audio(waves, lengths)
    scaled, _ = backbone.embed_audio(3.0 * waves, lengths)
    torch.testing.assert_close(features, scaled, atol=1e-4, rtol=1e-4)


def test_small_size_geometry():
    backbone = build_backbone("hubert", "small", 500)
    assert isinstance(backbone, Wav2Vec2Seq2Seq)
    assert backbone.encoder_dim == 256 and len(backbone.encoder_layers) == 4 and len(backbone.decoder_layers) == 2
    # 20 ms frames: one second of audio -> 49 frames (425-sample receptive field, 320 stride)
    assert int(backbone.feature_lengths(torch.tensor([16000]))[0]) == 49
    assert 5_000_000 < backbone.num_parameters() < 15_000_000


def test_training_mode_applies_time_masking():
    torch.manual_seed(0)
    backbone = build_backbone("wav2vec2", "tiny", 30, mask_time_prob=0.5, mask_time_length=2)
    waves, lengths = _waves()
    backbone.eval()
    clean, _ = backbone.embed_audio(waves, lengths)
    backbone.train()
    masked, _ = backbone.embed_audio(waves, lengths)
    backbone.eval()
    assert not torch.allclose(clean, masked)


def test_released_encoder_folder_gets_a_fresh_decoder(tmp_path):
    from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

    from speechprompt.backbones import BackboneError, load_backbone
    from speechprompt.backbones.wav2vec2_seq2seq import ENCODER_SIZES

    torch.manual_seed(0)
    encoder = HubertModel(HubertConfig(**ENCODER_SIZES["tiny"], num_feat_extract_layers=3,
                                       feat_extract_norm="group")).eval()
    encoder.save_pretrained(tmp_path / "hubert")
    Wav2Vec2FeatureExtractor(do_normalize=True).save_pretrained(tmp_path / "hubert")
    with pytest.raises(BackboneError, match="from_pretrained_encoder"):
        load_backbone(tmp_path / "hubert")
    backbone = Wav2Vec2Seq2Seq.from_pretrained_encoder(tmp_path / "hubert", "tiny", 25).eval()
    assert backbone.family == "hubert" and backbone.vocab_size == 25 and backbone.options["normalize_waveform"]
    for name, value in encoder.state_dict().items():
        assert torch.equal(backbone.model.encoder.state_dict()[name], value), name
    waves, lengths = _waves()
    with torch.no_grad():
        hidden, mask = backbone.encode(waves, lengths)
    assert hidden.shape[-1] == 32 and torch.equal(mask.sum(1), backbone.feature_lengths(lengths))


def test_misspelt_build_overrides_are_refused_not_ignored():
    with pytest.raises(BackboneError, match=r"wav2vec2 encoder config keys \['dropuot'\]"):
        build_backbone("wav2vec2", "tiny", 30, dropuot=0.0)
    with pytest.raises(BackboneError, match=r"decoder \(dec_\) config keys \['dropuot'\]"):
        build_backbone("hubert", "tiny", 30, dec_dropuot=0.0)
    backbone = build_backbone("wav2vec2", "tiny", 30, hidden_dropout=0.0, dec_dropout=0.0)
    assert backbone.model.config.encoder.hidden_dropout == 0.0 and backbone.model.config.decoder.dropout == 0.0
