"""Check a Kaldi data dir line by line and repair it by keeping its consistent part.

:func:`validate` returns one :class:`Problem` per fault (``file:line: utt_id: problem — how to fix``):
structure (malformed, non-UTF-8, duplicate or unsorted lines, ids missing from a file, bad
segments, stale ``spk2utt`` or ``utt2dur``, transcripts that normalise to nothing) and, unless
``check_audio=False``, audio (missing, unreadable, truncated, unsupported encoding, empty, NaN/inf,
all-silent, shorter than a speech front-end's window, segments past the recording end).

:func:`fix` keeps the utterances without problems that are present in every file, backs up the
files it rewrites to ``DIR/.backup/<timestamp>/`` and reports what it dropped and why.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from speechprompt.data import audio
from speechprompt.data.kaldi_dir import WRITTEN, DataDir, DataDirError, Problem
from speechprompt.data.silence import SILENCE_PEAK

UTT2DUR_TOLERANCE_S = 0.05
# the shortest audio a speech front-end can turn into one frame: a 25 ms window (400 samples at
# 16 kHz), the receptive field of wav2vec2-style encoders and the window of Whisper's log-mel
MIN_FRONTEND_SECONDS = 0.025


def _utterance_line(data: DataDir, utt: str) -> tuple[str, str]:
    """Where an utterance's audio is declared: (file, key) for messages."""
    return ("segments", utt) if data.segments is not None else ("wav.scp", utt)


def audio_problems(data: DataDir, silence_peak: float = SILENCE_PEAK,
                   min_seconds: float = MIN_FRONTEND_SECONDS) -> list[Problem]:
    """Decode every utterance (each recording once) and report what no model should train on."""
    found: list[Problem] = []
    by_recording: dict[str, list[str]] = {}
    for utt in data.utt_ids:
        if data.segments is not None:
            if utt in data.segments and data.segments[utt].recording in data.wav_scp:
                by_recording.setdefault(data.segments[utt].recording, []).append(utt)
        elif utt in data.wav_scp:
            by_recording.setdefault(utt, []).append(utt)
    for rec, utts in by_recording.items():
        source = data.wav_scp[rec]
        if audio.is_pipe(source) and not data.allow_pipes:
            continue  # already reported as a structural problem
        try:
            samples, rate = audio.read_native(source, utt_id=rec, allow_pipes=data.allow_pipes)
        except audio.AudioError as err:
            message = str(err).split(": ", 1)[-1]
            problem, _, fix = message.partition(" — ")
            for utt in utts:
                found.append(data._at("wav.scp", rec, f"{problem} (recording {rec}, utterance {utt})"
                                      if rec != utt else problem, fix or "fix or remove the audio", f"audio-{err.kind}"))
            continue
        total = samples.shape[0] / rate
        for utt in utts:
            file, key = _utterance_line(data, utt)
            piece = samples
            if data.segments is not None:
                seg = data.segments[utt]
                if seg.start >= total or seg.end > total + audio.SEGMENT_END_TOLERANCE_S:
                    found.append(data._at("segments", utt, f"segment {seg.start:g}-{seg.end:g} s lies outside recording "
                                          f"{rec} ({total:.3f} s long)", "fix the times or remove the segment",
                                          "audio-segment"))
                    continue
                piece = samples[int(round(seg.start * rate)): int(round(seg.end * rate))]
            if piece.size == 0:
                found.append(data._at(file, key, "audio is empty (0 samples)", "remove the utterance or fix its audio",
                                      "audio-empty"))
            elif not np.isfinite(piece).all():
                found.append(data._at(file, key, "audio has NaN or infinite samples", "re-encode or remove it",
                                      "audio-non-finite"))
            elif piece.shape[0] / rate < min_seconds:
                found.append(data._at(file, key, f"audio lasts {1000 * piece.shape[0] / rate:.1f} ms, shorter than "
                                      f"the {1000 * min_seconds:g} ms window a speech front-end needs",
                                      "remove the utterance (decoding skips it)", "audio-short"))
            elif float(np.abs(piece).max()) < silence_peak:
                found.append(data._at(file, key, f"audio is all silence (peak {float(np.abs(piece).max()):.1e})",
                                      "check the recording or remove the utterance", "audio-silent"))
            elif utt in data.utt2dur and abs(data.utt2dur[utt] - piece.shape[0] / rate) > UTT2DUR_TOLERANCE_S:
                found.append(data._at("utt2dur", utt, f"utt2dur says {data.utt2dur[utt]:g} s but the audio lasts "
                                      f"{piece.shape[0] / rate:.3f} s", "delete utt2dur to recompute it", "stale-utt2dur"))
    return found


def spk2utt_problems(data: DataDir) -> list[Problem]:
    """A spk2utt on disk that disagrees with utt2spk (it is derived; `data fix` rewrites it)."""
    if data.path is None or not (data.path / "spk2utt").is_file():
        return []
    found = []
    derived = data.spk2utt()
    for number, line in enumerate((data.path / "spk2utt").read_text("utf-8", "replace").splitlines(), start=1):
        fields = line.split()
        if fields and sorted(fields[1:]) != derived.get(fields[0], []):
            found.append(Problem(str(data.path / "spk2utt"), number, fields[0],
                                 "speaker's utterances disagree with utt2spk",
                                 "regenerate it (utils/utt2spk_to_spk2utt.pl, or speechprompt data fix)", "stale-spk2utt"))
    return found


def text_problems(data: DataDir) -> list[Problem]:
    """Transcripts that are not empty but normalise to nothing (punctuation or symbols only)."""
    from speechprompt.data.text import normalize_text

    return [data._at("text", utt, f"transcript {words.strip()[:40]!r} normalises to nothing (no letters or digits)",
                     "write the transcript or remove the utterance", "empty-text")
            for utt, words in sorted(data.text.items()) if words.strip() and not normalize_text(words)]


def validate(path: str | Path, allow_pipes: bool = False, check_audio: bool = True,
             silence_peak: float = SILENCE_PEAK,
             min_seconds: float = MIN_FRONTEND_SECONDS) -> tuple[DataDir, list[Problem]]:
    """Every problem of the data dir at ``path``, in file order; the dir as far as it parsed."""
    data, problems = DataDir.scan(path, allow_pipes)
    problems += spk2utt_problems(data)
    problems += text_problems(data)
    if check_audio:
        problems += audio_problems(data, silence_peak, min_seconds)
    return data, sorted(problems, key=lambda p: (p.file, p.line or 0))


@dataclass
class FixReport:
    kept: int
    dropped: dict[str, str] = field(default_factory=dict)  # utt_id -> reason
    reasons: Counter = field(default_factory=Counter)  # problem kind -> utterances dropped
    repaired: Counter = field(default_factory=Counter)  # problem kind -> lines repaired without dropping
    backup: Path | None = None

    def summary(self) -> str:
        lines = [f"kept {self.kept} utterance(s), dropped {len(self.dropped)}"]
        lines += [f"  dropped {n:5d} for {kind}" for kind, n in sorted(self.reasons.items())]
        lines += [f"  repaired {n:4d} line(s) for {kind}" for kind, n in sorted(self.repaired.items())]
        if self.backup:
            lines.append(f"original files backed up to {self.backup}")
        return "\n".join(lines)


# Problems about a single line that fix repairs without losing an utterance (the first duplicate is kept,
# order is restored, derived or cached tables are rewritten); every other problem drops its utterances.
REPAIRED_KINDS = {"unsorted", "duplicate", "stale-spk2utt", "stale-utt2dur", "bom"}


def fix(path: str | Path, allow_pipes: bool = False, check_audio: bool = True, backup: bool = True,
        silence_peak: float = SILENCE_PEAK) -> FixReport:
    """Rewrite the data dir at ``path`` keeping only consistent, usable utterances."""
    path = Path(path)
    data, problems = validate(path, allow_pipes, check_audio, silence_peak)
    if any(p.kind == "pipe" for p in problems):
        raise DataDirError([p for p in problems if p.kind == "pipe"][:1] + [Problem(
            str(path / "wav.scp"), None, None, "refusing to fix a dir with piped commands without --allow-pipes",
            "rerun with --allow-pipes so their audio can be checked", "pipe")])
    if any(p.kind == "missing-file" for p in problems):
        raise DataDirError([p for p in problems if p.kind == "missing-file"])
    audio_ids = set(data.segments) if data.segments is not None else set(data.wav_scp)
    universe = set(data.utt2spk) | set(data.text) | audio_ids | set(data.utt2task or ())
    by_recording: dict[str, set[str]] = {}
    if data.segments is not None:
        for utt, seg in data.segments.items():
            by_recording.setdefault(seg.recording, set()).add(utt)
    report = FixReport(kept=0)
    bad: dict[str, Problem] = {}
    for p in problems:
        if p.utt_id is None:
            continue
        if p.kind in REPAIRED_KINDS or Path(p.file).name in ("utt2dur", "spk2utt"):
            report.repaired[p.kind] += 1  # derived or cached tables are rewritten, their utterances kept
            continue
        in_wav_scp = Path(p.file).name == "wav.scp" and data.segments is not None
        for utt in sorted(by_recording.get(p.utt_id, set()) if in_wav_scp else {p.utt_id}):
            bad.setdefault(utt, p)
    keep = set(data.utt2spk) & audio_ids
    if data.text:
        keep &= set(data.text)
    if data.utt2task is not None:
        keep &= set(data.utt2task)
    keep -= set(bad)
    for utt in sorted(universe - keep):
        reason = f"{bad[utt].kind}: {bad[utt]}" if utt in bad else "missing-id: not present in every file"
        report.dropped[utt] = reason
        report.reasons[reason.split(":", 1)[0]] += 1
    fixed = data.select(sorted(keep))
    stale_durations = {p.utt_id for p in problems if p.kind in ("stale-utt2dur", "malformed") and "utt2dur" in p.file}
    fixed.utt2dur = {u: d for u, d in fixed.utt2dur.items() if u not in stale_durations}
    if backup:
        report.backup = path / ".backup" / time.strftime("%Y%m%d-%H%M%S")
        report.backup.mkdir(parents=True, exist_ok=True)
        for name in WRITTEN:
            if (path / name).is_file():
                shutil.copy2(path / name, report.backup / name)
        (report.backup / "dropped.txt").write_text("".join(f"{u}\t{r}\n" for u, r in sorted(report.dropped.items())),
                                                   encoding="utf-8")
    fixed.write(path)
    report.kept = len(fixed)
    return report
