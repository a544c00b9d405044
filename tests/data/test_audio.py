from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from speechprompt.data.audio import AudioError, RawFormat, audio_duration, load_audio, write_audio


def test_resamples_8k_and_44k_stereo_to_16k_mono(tmp_path, make_tone):
    low = write_audio(tmp_path / "low.wav", make_tone(1.0, sr=8000, freq=300), 8000)
    x = load_audio(low)
    assert x.dtype == np.float32 and x.ndim == 1 and abs(x.size - 16000) <= 1
    left, right = make_tone(0.5, sr=44100, freq=440), make_tone(0.5, sr=44100, freq=660, seed=1)
    stereo = tmp_path / "stereo.flac"
    sf.write(stereo, np.stack([left, right], axis=1), 44100, subtype="PCM_16")
    y = load_audio(stereo)
    assert y.ndim == 1 and abs(y.size - 8000) <= 1 and y.dtype == np.float32
    # both channels survive the mix: peaks at 440 and 660 Hz in the 16 kHz spectrum (2 Hz bins)
    spectrum = np.abs(np.fft.rfft(y))
    top_two = sorted(np.argsort(spectrum)[-2:] * 16000 / y.size)
    assert top_two == pytest.approx([440, 660], abs=4)


def test_ogg_and_segment_slice(tmp_path, make_tone):
    x = make_tone(2.0)
    path = write_audio(tmp_path / "a.ogg", x, 16000)
    assert abs(load_audio(path).size - 32000) <= 1
    wav = write_audio(tmp_path / "a.wav", x, 16000)
    part = load_audio(wav, start=0.5, end=1.25)
    assert part.size == 12000
    np.testing.assert_allclose(part, load_audio(wav)[8000:20000], atol=1e-6)


def test_raw_pcm_defaults_and_explicit_format(tmp_path, make_tone):
    x = make_tone(1.0)
    raw = write_audio(tmp_path / "a.raw", x, 16000)
    assert raw.stat().st_size == 32000  # 16-bit mono
    np.testing.assert_allclose(load_audio(raw), x, atol=1 / 16000)
    assert audio_duration(raw) == pytest.approx(1.0)
    (tmp_path / "b.pcm").write_bytes((x * 32767).astype("<i2").tobytes())
    y = load_audio(tmp_path / "b.pcm", raw_format=RawFormat(sample_rate=8000))
    assert abs(y.size - 32000) <= 2  # read as 2 s at 8 kHz, resampled


def test_clear_errors_name_the_utterance(tmp_path):
    with pytest.raises(AudioError, match="utterance u1 .*not found"):
        load_audio(tmp_path / "missing.wav", utt_id="u1")
    (tmp_path / "junk.wav").write_bytes(b"not audio at all" * 10)
    with pytest.raises(AudioError, match="utterance u2 .*cannot decode"):
        load_audio(tmp_path / "junk.wav", utt_id="u2")
    sf.write(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="utterance u3 .*empty"):
        load_audio(tmp_path / "empty.wav", utt_id="u3")
    bad = np.zeros(1600, dtype=np.float32)
    bad[10] = np.nan
    sf.write(tmp_path / "nan.wav", bad, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="utterance u4 .*NaN"):
        load_audio(tmp_path / "nan.wav", utt_id="u4")


def test_pipes_only_when_allowed(tmp_path, make_tone):
    wav = write_audio(tmp_path / "a.wav", make_tone(0.5), 16000)
    command = f"cat {wav} |"
    with pytest.raises(AudioError, match="allow_pipes=True"):
        load_audio(command, utt_id="u1")
    assert load_audio(command, allow_pipes=True).size == 8000
    with pytest.raises(AudioError, match="exited"):
        load_audio("false |", allow_pipes=True, utt_id="u1")
