"""Audio input/output at one rate: everything leaves here as float32 mono 16 kHz.

Sources are file paths (WAV, FLAC, Ogg and anything else libsndfile reads; ``.raw`` /
``.pcm`` files are headerless PCM, 16-bit little-endian 16 kHz mono unless a
:class:`RawFormat` says otherwise) or, only when the caller passes ``allow_pipes=True``,
Kaldi piped commands (``"sox in.sph -t wav - |"``) whose standard output is an audio file.

Every failure is an :class:`AudioError` that names the utterance and the source.
"""

from __future__ import annotations

import io
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

TARGET_SAMPLE_RATE = 16000
RAW_SUFFIXES = (".raw", ".pcm")
# A segment may end a little past its recording (rounding in segment files); beyond this it is an error.
SEGMENT_END_TOLERANCE_S = 0.1


class AudioError(ValueError):
    """Audio that cannot be used; the message names the utterance and the source.

    ``kind`` says why, for reports: ``missing``, ``unsupported``, ``undecodable``, ``truncated``,
    ``empty``, ``non-finite``, ``pipe`` or ``segment``.
    """

    def __init__(self, message: str, kind: str = "undecodable"):
        super().__init__(message)
        self.kind = kind


# libsndfile's words for a container it knows holding an encoding it cannot decode; anything else
# ("Format not recognised", malformed chunks) is a damaged file or not audio at all
_UNSUPPORTED = ("unimplemented format", "unsupported", "not supported")


def _decode_error(label: str, err: Exception) -> AudioError:
    if any(marker in str(err).lower() for marker in _UNSUPPORTED):
        return AudioError(f"{label}: unsupported audio format or sample encoding ({err}) — "
                          "convert it to 16-bit PCM WAV or FLAC (e.g. sox in out.wav)", "unsupported")
    return AudioError(f"{label}: cannot decode audio ({err}) — the file is damaged or truncated; "
                      "re-encode it as 16-bit WAV or FLAC", "undecodable")


@dataclass(frozen=True)
class RawFormat:
    """How to read headerless PCM (``.raw``/``.pcm``)."""

    sample_rate: int = 16000
    channels: int = 1
    subtype: str = "PCM_16"
    endian: str = "LITTLE"


def is_pipe(source: str | Path) -> bool:
    """True for a Kaldi piped command (``"cmd args |"``)."""
    return isinstance(source, str) and source.rstrip().endswith("|")


def _label(source, utt_id: str | None) -> str:
    return f"utterance {utt_id} ({source})" if utt_id else f"{source}"


def _read_pipe_bytes(command: str, label: str) -> bytes:
    cmd = command.rstrip()[:-1].strip()
    try:
        done = subprocess.run(cmd, shell=True, capture_output=True, check=False, timeout=600)
    except subprocess.TimeoutExpired as err:
        raise AudioError(f"{label}: piped command timed out after {err.timeout} s") from err
    if done.returncode != 0:
        tail = done.stderr.decode("utf-8", "replace").strip()[-300:]
        raise AudioError(f"{label}: piped command exited {done.returncode}: {tail}")
    if not done.stdout:
        raise AudioError(f"{label}: piped command wrote no audio to standard output")
    return done.stdout


def _open_args(source, raw_format: RawFormat | None) -> dict:
    if raw_format is None and Path(str(source)).suffix.lower() not in RAW_SUFFIXES:
        return {}
    fmt = raw_format or RawFormat()
    return dict(format="RAW", samplerate=fmt.sample_rate, channels=fmt.channels, subtype=fmt.subtype, endian=fmt.endian)


def _refuse_pipe(source, label: str) -> None:
    raise AudioError(
        f"{label}: is a piped command; running commands from a data dir is off by default — "
        "pass allow_pipes=True (command line: --allow-pipes) if you trust this data dir", "pipe"
    )


def read_native(
    source: str | Path,
    *,
    start: float | None = None,
    end: float | None = None,
    utt_id: str | None = None,
    allow_pipes: bool = False,
    raw_format: RawFormat | None = None,
) -> tuple[np.ndarray, int]:
    """Read ``source`` (or its ``start``..``end`` seconds) at its own rate.

    Returns ``(samples (S, C) float32, sample_rate)``. Checks nothing about the content.
    """
    label = _label(source, utt_id)
    if is_pipe(source):
        if not allow_pipes:
            _refuse_pipe(source, label)
        handle = io.BytesIO(_read_pipe_bytes(str(source), label))
    else:
        path = Path(source)
        if not path.is_file():
            raise AudioError(f"{label}: audio file not found — check the path in wav.scp", "missing")
        refuse_truncated_wav(path, label)
        handle = path
    try:
        with sf.SoundFile(handle, **_open_args(source, raw_format)) as f:
            rate, total = f.samplerate, f.frames
            first = 0 if start is None else int(round(start * rate))
            last = total if end is None else int(round(end * rate))
            if start is not None and first > total:
                raise AudioError(f"{label}: segment starts at {start:.3f} s, after the recording ends "
                                 f"({total / rate:.3f} s) — fix the segments file", "segment")
            if end is not None and last > total + SEGMENT_END_TOLERANCE_S * rate:
                raise AudioError(f"{label}: segment ends at {end:.3f} s, after the recording ends "
                                 f"({total / rate:.3f} s) — fix the segments file", "segment")
            last = min(last, total)
            if last < first:
                raise AudioError(f"{label}: segment end {end} is before its start {start} — fix the segments file",
                                 "segment")
            if first and f.seekable():
                f.seek(first)
            elif first:
                f.read(first, dtype="float32", always_2d=True)
            samples = f.read(last - first, dtype="float32", always_2d=True)
    except AudioError:
        raise
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as err:
        raise _decode_error(label, err) from err
    return samples, rate


def refuse_truncated_wav(path: Path, label: str) -> None:
    """A WAV file whose header promises more samples than it holds (a cut-off copy) is an error."""
    from speechprompt.data.wav_header import wav_truncation

    cut = wav_truncation(path)
    if cut is not None:
        promised, present = cut
        raise AudioError(f"{label}: truncated WAV file: its header promises {promised} samples but only {present} "
                         "are present — copy the file again or re-encode what is left (sox in.wav out.wav)",
                         "truncated")


def to_mono_16k(samples: np.ndarray, rate: int, sample_rate: int = TARGET_SAMPLE_RATE) -> np.ndarray:
    """(S, C) or (S,) at ``rate`` -> (S',) float32 mono at ``sample_rate`` (soxr high quality)."""
    mono = samples.mean(axis=1) if samples.ndim == 2 else samples
    mono = np.ascontiguousarray(mono, dtype=np.float32)
    if rate != sample_rate and mono.size:
        mono = soxr.resample(mono, rate, sample_rate, quality="HQ").astype(np.float32, copy=False)
    return mono


def check_samples(samples: np.ndarray, label: str) -> None:
    """Raise :class:`AudioError` for audio no model should see: empty, NaN or infinite samples."""
    if samples.size == 0:
        raise AudioError(f"{label}: audio is empty (0 samples) — remove the utterance or fix its audio", "empty")
    if not np.isfinite(samples).all():
        bad = int((~np.isfinite(samples)).sum())
        raise AudioError(f"{label}: audio has {bad} NaN or infinite samples — re-encode or remove it", "non-finite")


def load_audio(
    source: str | Path,
    *,
    start: float | None = None,
    end: float | None = None,
    utt_id: str | None = None,
    sample_rate: int = TARGET_SAMPLE_RATE,
    allow_pipes: bool = False,
    raw_format: RawFormat | None = None,
) -> np.ndarray:
    """Load ``source`` (optionally seconds ``start``..``end``) as (S,) float32 mono at ``sample_rate``.

    Raises :class:`AudioError` naming ``utt_id`` for missing, undecodable, empty or non-finite audio,
    and for piped commands unless ``allow_pipes``.
    """
    samples, rate = read_native(
        source, start=start, end=end, utt_id=utt_id, allow_pipes=allow_pipes, raw_format=raw_format
    )
    label = _label(source, utt_id)
    check_samples(samples, label)
    return to_mono_16k(samples, rate, sample_rate)


def audio_duration(
    source: str | Path, *, utt_id: str | None = None, allow_pipes: bool = False, raw_format: RawFormat | None = None
) -> float:
    """Duration in seconds, from the header where there is one (pipes are decoded)."""
    label = _label(source, utt_id)
    if is_pipe(source):
        samples, rate = read_native(source, utt_id=utt_id, allow_pipes=allow_pipes)
        return samples.shape[0] / rate
    path = Path(source)
    if not path.is_file():
        raise AudioError(f"{label}: audio file not found — check the path in wav.scp", "missing")
    refuse_truncated_wav(path, label)
    try:
        with sf.SoundFile(path, **_open_args(source, raw_format)) as f:
            return f.frames / f.samplerate
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as err:
        raise _decode_error(label, err) from err


def write_audio(path: str | Path, samples: np.ndarray, sr: int = TARGET_SAMPLE_RATE) -> Path:
    """Write (S,) or (S, C) float samples in [-1, 1]; format from the suffix (``.raw``/``.pcm``: 16-bit LE PCM).

    WAV is written as 16-bit PCM, FLAC as 16-bit, Ogg as Vorbis. Values outside [-1, 1] are clipped
    (integer formats would otherwise wrap around).
    """
    path = Path(path)
    samples = np.asarray(samples, dtype=np.float32)
    if not np.isfinite(samples).all():
        raise AudioError(f"{path}: refusing to write NaN or infinite samples")
    clipped = np.clip(samples, -1.0, 1.0)
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix in RAW_SUFFIXES:
        sf.write(path, clipped, sr, format="RAW", subtype="PCM_16", endian="LITTLE")
    elif suffix in (".ogg", ".oga"):
        sf.write(path, clipped, sr, format="OGG", subtype="VORBIS")
    else:
        sf.write(path, clipped, sr, subtype="PCM_16")
    return path
