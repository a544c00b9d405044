from __future__ import annotations

import numpy as np
import pytest
import torch

from speechprompt.data.dataset import SpeechDataset, collate
from speechprompt.data.features import (
    FeatureCache,
    FeatureConfig,
    GlobalCMVN,
    SpecAugment,
    SpeedPerturb,
    compute_features,
    fbank,
    iter_features,
    mfcc,
    speed_perturb,
    utterance_features,
)
from speechprompt.data.kaldi_dir import DataDir


@pytest.mark.parametrize("config", [FeatureConfig("fbank", num_mel_bins=40), FeatureConfig("mfcc")])
def test_utterance_alone_equals_its_frames_in_a_padded_batch(data_dir, config):
    batch = collate([SpeechDataset(data_dir)[i] for i in range(6)])
    feats, frames = compute_features(batch.waveforms, batch.wave_lengths, config)
    assert feats.shape == (6, int(frames.max()), config.dim)
    for i in range(6):
        alone = utterance_features(batch.waveforms[i, : batch.wave_lengths[i]], config)
        assert alone.shape[0] == frames[i] == config.num_frames(int(batch.wave_lengths[i]))
        torch.testing.assert_close(feats[i, : frames[i]], alone, atol=1e-5, rtol=0)
        assert torch.all(feats[i, frames[i]:] == 0)
    assert frames[0] == 1 + (8000 - 400) // 160  # Kaldi snip_edges framing of 0.5 s
    named = (fbank(batch.waveforms, batch.wave_lengths, num_mel_bins=config.num_mel_bins) if config.kind == "fbank"
             else mfcc(batch.waveforms, batch.wave_lengths))
    assert torch.equal(named[0], feats) and torch.equal(named[1], frames)


def test_matches_torchaudio_kaldi_on_int16_scale(make_tone):
    import torchaudio.compliance.kaldi as kaldi

    x = torch.from_numpy(make_tone(0.3))
    ours = utterance_features(x, FeatureConfig(num_mel_bins=23))
    torch.testing.assert_close(ours, kaldi.fbank(x[None] * 32768, num_mel_bins=23, dither=0.0))
    assert utterance_features(x[:100]).shape == (0, 80)  # shorter than one window: no frames


def test_global_cmvn_compute_save_load(data_dir):
    config = FeatureConfig(num_mel_bins=20)
    data = DataDir.read(data_dir)
    cmvn = GlobalCMVN.compute(data, config)
    assert (data_dir / "cmvn.json").is_file() and cmvn.count > 0
    frames = torch.cat([f for _, f in iter_features(data, config)])
    normed = cmvn(frames[None])[0]
    torch.testing.assert_close(normed.mean(0), torch.zeros(20), atol=1e-3, rtol=0)
    torch.testing.assert_close(normed.std(0, unbiased=False), torch.ones(20), atol=1e-3, rtol=0)
    loaded = GlobalCMVN.load(data_dir, config)
    torch.testing.assert_close(loaded.mean, cmvn.mean)
    padded = torch.ones(2, 5, 20)
    assert torch.all(loaded(padded, torch.tensor([5, 2]))[1, 2:] == 0)
    with pytest.raises(ValueError, match="recompute"):
        GlobalCMVN.load(data_dir, FeatureConfig(num_mel_bins=40))


def test_spec_augment_respects_lengths():
    torch.manual_seed(0)
    feats = torch.randn(3, 100, 40) + 5
    lengths = torch.tensor([100, 30, 10])
    for i, n in enumerate(lengths):
        feats[i, n:] = 7.0  # padding marker that must survive
    aug = SpecAugment(freq_mask_param=10, time_mask_param=20)
    out = aug(feats, lengths)
    assert torch.all(out[1, 30:] == 7.0) and torch.all(out[2, 10:] == 7.0)
    assert (out[0] == 0).any() and (out == 0).sum() > 0
    # a 10-frame utterance loses at most 20 % of its frames to each time mask
    zero_frames = (out[2, :10] == 0).all(dim=1).sum()
    assert zero_frames <= 4
    assert torch.equal(aug.eval()(feats, lengths), feats)


def test_speed_perturb_and_cache(data_dir, tmp_path, make_tone):
    x = torch.from_numpy(make_tone(1.0))
    fast, _ = speed_perturb(x, 1.1)
    slow, lengths = speed_perturb(x[None], 0.9, lengths=torch.tensor([16000]))
    assert abs(fast.shape[-1] - 16000 / 1.1) < 2 and abs(slow.shape[-1] - 16000 / 0.9) < 2 and lengths.item() > 16000
    perturb = SpeedPerturb(seed=3)
    sizes = {perturb(x).shape[0] for _ in range(20)}
    assert len(sizes) == 3
    data = DataDir.read(data_dir)
    config = FeatureConfig("mfcc")
    first = dict(iter_features(data, config, cache_dir=tmp_path / "cache"))
    cache = FeatureCache(tmp_path / "cache", config)
    assert len(list(cache.dir.glob("*.safetensors"))) == 6
    cache.put(data.utt_ids[0], torch.full((3, 13), 9.0))  # a cached value is used as is
    again = dict(iter_features(data, config, cache_dir=tmp_path / "cache"))
    assert torch.all(again[data.utt_ids[0]] == 9.0) and torch.equal(again[data.utt_ids[1]], first[data.utt_ids[1]])
    cache.put("odd/id with space", torch.zeros(1, 13))
    assert cache.get("odd/id with space").shape == (1, 13) and cache.get("never") is None
    assert np.isfinite(first[data.utt_ids[2]].numpy()).all()
