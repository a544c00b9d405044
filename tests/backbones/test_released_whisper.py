"""The one real-checkpoint check: whisper tiny.en as `speechprompt backbone fetch` leaves it.

Skipped unless the checkpoint is in the backbone cache ($SPEECHPROMPT_BACKBONES, else the XDG cache);
the greedy-text check also needs Debian's espeak-ng.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, WhisperFeatureExtractor

from speechprompt.backbones import load_backbone
from speechprompt.backbones.fetch import cache_root, is_fetched

NAME = "whisper-tiny.en"
FOLDER = cache_root() / NAME
pytestmark = pytest.mark.skipif(not is_fetched(FOLDER, NAME), reason=f"run 'speechprompt backbone fetch {NAME}'")


@pytest.fixture(scope="module")
def backbone():
    return load_backbone(FOLDER).eval()


def test_split_points_match_transformers_forward_on_30s(backbone):
    """The toolkit's own front-end and split forward == transformers' feature extractor + forward."""
    generator = torch.Generator().manual_seed(0)
    t = torch.arange(30 * 16000) / 16000
    wave = 0.2 * torch.sin(2 * torch.pi * 300 * t) + 0.02 * torch.randn(t.shape, generator=generator)
    tokenizer = AutoTokenizer.from_pretrained(FOLDER)
    ids = torch.tensor([[backbone.bos_id, tokenizer.convert_tokens_to_ids("<|notimestamps|>"), 464, 2068]])
    features = WhisperFeatureExtractor()(wave.numpy(), sampling_rate=16000, return_tensors="pt").input_features
    with torch.no_grad():
        expected = backbone.model(input_features=features, decoder_input_ids=ids).logits
        hidden, mask = backbone.embed_audio(wave[None], torch.tensor([wave.numel()]))
        encoded = backbone.run_encoder(hidden, mask)
        logits, _ = backbone.run_decoder(backbone.embed_tokens(ids), encoded, mask)
    assert logits.shape == expected.shape == (1, 4, 51864)
    assert (logits - expected).abs().max() < 1e-3 * expected.abs().max()
    assert backbone.options["pad_id"] == tokenizer.convert_tokens_to_ids("<|startoflm|>")


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")
def test_greedy_transcript_of_synthetic_speech(backbone, tmp_path):
    import soundfile
    import soxr

    wav = tmp_path / "u.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), "Turn left at the next intersection and drive for two miles."], check=True)
    audio, rate = soundfile.read(wav)
    audio = soxr.resample(audio, rate, 16000).astype(np.float32)
    features = WhisperFeatureExtractor()(audio, sampling_rate=16000, return_tensors="pt").input_features
    with torch.no_grad():
        ids = backbone.model.generate(features)
    text = AutoTokenizer.from_pretrained(FOLDER).decode(ids[0], skip_special_tokens=True)
    assert "turn left at the next intersection and drive for two miles" in text.lower()
