"""Whisper specifics: log-mel parity with WhisperFeatureExtractor, split forward == transformers' forward."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import WhisperFeatureExtractor

from speechprompt.backbones import BackboneError, build_backbone, load_backbone
from speechprompt.backbones.whisper import WhisperSeq2Seq


@pytest.fixture(scope="module")
def whisper():
    torch.manual_seed(0)
    return build_backbone("whisper", "tiny", 40).eval()


def _tone(samples: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(samples) / 16000
    return 0.3 * torch.sin(2 * torch.pi * 220 * t) + 0.01 * torch.randn(samples, generator=gen)


def test_log_mel_matches_feature_extractor(whisper):
    stock = WhisperSeq2Seq(whisper.model)  # how a released checkpoint is wrapped: Whisper's own features
    assert not stock.options.get("utterance_cmn")
    wave = _tone(12345)
    extractor = WhisperFeatureExtractor(feature_size=80)
    expected = extractor(wave.numpy(), sampling_rate=16000, padding="longest", return_tensors="np")
    expected = expected["input_features"][0]
    ours = stock.log_mel(wave).numpy()
    assert ours.shape == expected.shape == (80, 12345 // 160)
    np.testing.assert_allclose(ours, expected, atol=1e-4)


def test_built_backbones_normalise_each_utterance_and_ignore_its_level(whisper, tmp_path):
    wave = _tone(12345)
    mel = whisper.log_mel(wave)
    torch.testing.assert_close(mel.mean(dim=1), torch.zeros(80), atol=1e-5, rtol=0)
    # 8 dB quieter (flite kal16 against the espeak voices): the same features
    torch.testing.assert_close(whisper.log_mel(wave * 10 ** (-8 / 20)), mel, atol=1e-4, rtol=0)
    whisper.save_pretrained(tmp_path / "w")
    assert load_backbone(tmp_path / "w").options["utterance_cmn"] is True


@torch.no_grad()
def test_split_forward_equals_transformers_forward(whisper):
    # transformers' Whisper encoder only takes exactly 2 * max_source_positions mel frames (10 s here)
    samples = 2 * whisper.model.config.max_source_positions * whisper.hop_length
    wave = _tone(samples)[None]
    lengths = torch.tensor([samples])
    ids = torch.tensor([[1, 5, 9, 12, 3]])
    hidden, mask = whisper.encode(wave, lengths)
    logits, _ = whisper.run_decoder(whisper.embed_tokens(ids), hidden, mask)

    mel = whisper.log_mel(wave[0])[None]
    reference = whisper.model(input_features=mel, decoder_input_ids=ids)
    torch.testing.assert_close(hidden, reference.encoder_last_hidden_state, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(logits, reference.logits, atol=1e-5, rtol=1e-5)


def test_too_long_audio_is_a_clear_error(whisper):
    samples = 2 * whisper.model.config.max_source_positions * whisper.hop_length + 16000
    with pytest.raises(BackboneError, match="longer than"):
        whisper.embed_audio(torch.zeros(1, samples), torch.tensor([samples]))


def test_resize_vocab_switches_to_toolkit_special_ids(tmp_path):
    # a "released-style" model whose special ids sit at the end of a large vocabulary
    model = WhisperSeq2Seq.build("tiny", 60, pad_token_id=59, eos_token_id=59, bos_token_id=58,
                                 decoder_start_token_id=58)
    model.options.clear()
    model = WhisperSeq2Seq(model.model)
    assert (model.pad_id, model.bos_id, model.eos_id) == (59, 58, 59)
    model.resize_vocab(30)
    assert (model.pad_id, model.bos_id, model.eos_id) == (0, 1, 2)
    model.save_pretrained(tmp_path / "w")
    loaded = load_backbone(tmp_path / "w")
    assert loaded.vocab_size == 30 and loaded.eos_id == 2
    assert loaded.fingerprint() == model.fingerprint()


def test_plain_transformers_whisper_folder_loads(whisper, tmp_path):
    whisper.model.save_pretrained(tmp_path / "hf_whisper")
    loaded = load_backbone(tmp_path / "hf_whisper")
    assert isinstance(loaded, WhisperSeq2Seq)
    assert (loaded.pad_id, loaded.bos_id, loaded.eos_id) == (0, 1, 2)
    for name, value in whisper.model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[name], value), name


def test_build_overrides_reach_the_config_and_unknown_keys_are_refused():
    assert build_backbone("whisper", "tiny", 40, dropout=0.0).model.config.dropout == 0.0
    assert build_backbone("whisper", "tiny", 40).model.config.dropout == 0.1
    with pytest.raises(BackboneError, match="dropuot"):
        build_backbone("whisper", "tiny", 40, dropuot=0.0)
