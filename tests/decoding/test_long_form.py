"""Audio longer than a Whisper backbone's window: cut at pauses into pieces the encoder takes, each decoded
as it would be alone, the texts joined in order; short audio and slot filling are never cut."""

from __future__ import annotations

import numpy as np
import pytest
import serving_fixtures as fx  # tests/ is on pytest's pythonpath
import torch

from speechprompt.backbones import BackboneError, build_backbone
from speechprompt.decoding.long_form import FRAME, cut_points, max_input_samples, split
from speechprompt.decoding.transcriber import Transcriber


def speech_like(seconds: float, pauses: list[float], seed: int = 0) -> np.ndarray:
    """Loud tones, another pitch after each of ``pauses`` (seconds), each pause 0.3 s of near silence."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    pitch = np.full(len(t), 5000.0)
    for i, at in reversed(list(enumerate(pauses))):
        pitch[t < at] = (100, 300, 1500)[i % 3]
    wave = (0.3 * np.sin(2 * np.pi * pitch * t) + 0.01 * rng.standard_normal(len(t))).astype(np.float32)
    for at in pauses:
        wave[int(at * 16000):int((at + 0.3) * 16000)] *= 0.001
    return wave


def test_cuts_fall_in_the_pauses_and_no_piece_is_too_long():
    wave = speech_like(25.0, pauses=[8.0, 17.5])
    cuts = cut_points(wave, max_samples=10 * 16000)
    assert len(cuts) == 2
    for cut, pause in zip(cuts, (8.0, 17.5), strict=True):
        assert pause * 16000 <= cut <= (pause + 0.3) * 16000
    pieces = split(wave, 10 * 16000)
    assert [len(p) for p in pieces] and max(len(p) for p in pieces) <= 10 * 16000
    assert np.array_equal(np.concatenate(pieces), wave)  # nothing lost, nothing repeated


def test_without_a_pause_the_cut_still_respects_the_limit():
    wave = speech_like(21.0, pauses=[])
    pieces = split(wave, 10 * 16000)
    assert len(pieces) == 3 and max(len(p) for p in pieces) <= 10 * 16000
    assert split(wave, None)[0] is wave and split(wave[:100], 10 * 16000)[0] is not None
    with pytest.raises(ValueError, match="too short"):
        cut_points(wave, FRAME)


@pytest.fixture(scope="module")
def whisper(tmp_path_factory):
    """A tiny Whisper (500 encoder positions: a 10 s window) with sharpened weights, an ASR and an SLU prompt."""
    root = tmp_path_factory.mktemp("long_form")
    backbone, tokenizer = fx.make_backbone(root, family="whisper")
    backbone.pad_to_window = False
    asr = fx.make_prompt_artifact(backbone, root / "asr", tokenizer, seed=1, output="asr")
    slu = fx.make_prompt_artifact(backbone, root / "slu", tokenizer, seed=2, output="slu")
    transcriber = Transcriber(backbone, max_len=12, max_len_ratio=1.0)
    transcriber.add_task("asr", asr)
    transcriber.add_task("slu", slu)
    return backbone, transcriber


def test_the_limit_is_the_longest_audio_the_encoder_takes(whisper):
    backbone, _ = whisper
    limit = max_input_samples(backbone)
    assert 10 * 16000 <= limit < 10 * 16000 + 160  # the window, and what framing drops at its end
    assert max_input_samples(build_backbone("wav2vec2", "tiny", vocab_size=60)) is None
    backbone.embed_audio(torch.zeros(1, limit), torch.tensor([limit]))  # fits
    with pytest.raises(BackboneError, match="longer than"):  # one sample more does not
        backbone.embed_audio(torch.zeros(1, limit + 1), torch.tensor([limit + 1]))


def test_a_long_recording_decodes_as_its_pieces_alone_joined(whisper):
    backbone, transcriber = whisper
    long, short = speech_like(25.0, pauses=[8.0, 17.5], seed=1), speech_like(2.0, pauses=[], seed=2)
    pieces = split(long, max_input_samples(backbone))
    alone = [transcriber.transcribe([piece], "asr")[0].text for piece in pieces]
    assert len(set(alone)) > 1  # the pieces decode differently, so the order below is checked
    results = transcriber.transcribe([short, long], "asr")
    assert results[1].pieces == 3 and results[1].text == " ".join(t.strip() for t in alone if t.strip())
    assert results[1].seconds == pytest.approx(25.0)
    assert results[0].pieces == 1 and results[0].text == transcriber.transcribe([short], "asr")[0].text


def test_slot_filling_is_not_cut(whisper):
    _, transcriber = whisper
    with pytest.raises(BackboneError, match="longer than"):
        transcriber.transcribe([speech_like(12.0, pauses=[5.0])], "slu")
