"""Kaldi data directories in memory: read, check the structure, write back C-locale sorted.

A data dir holds ``wav.scp`` (recording -> path, or ``cmd |``), ``utt2spk``, optionally ``text``,
``segments`` (utterance -> recording start end), ``utt2dur`` and the non-standard ``utt2task``
(utterance -> task prompt name). ``spk2utt`` is always derived from ``utt2spk`` on write.

Relative paths in ``wav.scp`` are relative to the working directory, as in Kaldi recipes.
Python orders ``str`` by code point, which for UTF-8 is the same as byte order, i.e. the order of
``LC_ALL=C sort`` that Kaldi tools expect.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from speechprompt.data import audio

BOM = b"\xef\xbb\xbf"  # the UTF-8 byte-order mark some editors put first
TABLES = ("wav.scp", "text", "utt2spk", "segments", "utt2dur", "utt2task")
WRITTEN = ("wav.scp", "text", "utt2spk", "spk2utt", "segments", "utt2dur", "utt2task")


@dataclass(frozen=True)
class Segment:
    """An utterance as a slice of a recording, in seconds."""

    recording: str
    start: float
    end: float


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a data dir, printed as ``file:line: utt_id: problem — how to fix``."""

    file: str
    line: int | None
    utt_id: str | None
    problem: str
    fix: str
    kind: str = "structure"  # short tag used to count what `data fix` drops

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.utt_id or '-'}: {self.problem} — {self.fix}"


class DataDirError(ValueError):
    """A data dir that cannot be used as it is; lists each problem with file, line and utterance id."""

    def __init__(self, problems: list[Problem] | str):
        if isinstance(problems, str):
            self.problems: list[Problem] = []
            super().__init__(problems)
            return
        self.problems = list(problems)
        shown = "\n".join(str(p) for p in self.problems[:20])
        more = f"\n... and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
        super().__init__(f"{len(self.problems)} problem(s) in data dir:\n{shown}{more}")


def _write_atomic(path: Path, body: str) -> None:
    """Replace ``path`` in one step, so that a reader (another rank, another job) never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(body, encoding="utf-8")
    os.replace(tmp, path)


def _fmt_seconds(x: float) -> str:
    return f"{x:.4f}".rstrip("0").rstrip(".") if x else "0"


def read_table(path: Path, problems: list[Problem], min_fields: int = 2,
               max_fields: int | None = 2) -> tuple[dict[str, str], dict[str, int]]:
    """Read ``key value...`` lines; returns ``(key -> rest of line, key -> line number)``.

    Malformed, non-UTF-8, duplicate and out-of-order lines are appended to ``problems``; the first
    occurrence of a duplicate key is kept.
    """
    name = str(path)
    table: dict[str, str] = {}
    lines: dict[str, int] = {}
    previous = None
    for number, raw in enumerate(path.read_bytes().split(b"\n"), start=1):
        if number == 1 and raw.startswith(BOM):
            raw = raw[len(BOM):]  # read the line as it was meant, and name the mark
            key = raw.split(maxsplit=1)[0].decode("utf-8", "replace") if raw.strip() else None
            problems.append(Problem(name, 1, key, "file starts with a UTF-8 byte-order mark (BOM)",
                                    f"remove it: 'speechprompt data fix' does, or sed -i '1s/^\\xEF\\xBB\\xBF//' "
                                    f"{path.name}", "bom"))
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as err:
            key = raw.split(maxsplit=1)[0].decode("utf-8", "replace")
            problems.append(Problem(name, number, key, f"line is not valid UTF-8 (byte {err.start})",
                                    "re-encode the file as UTF-8 (e.g. iconv -t utf-8)", "encoding"))
            continue
        fields = line.split(maxsplit=1)
        key, rest = fields[0], (fields[1].strip() if len(fields) > 1 else "")
        count = 1 + len(rest.split()) if rest else 1
        if count < min_fields or (max_fields and count > max_fields) or not key.isprintable():
            want = f"{min_fields}" if max_fields == min_fields else f"at least {min_fields}"
            problems.append(Problem(name, number, key, f"malformed line (expected {want} whitespace-separated fields, "
                                    f"got {count}): {line[:80]!r}", "correct or delete the line", "malformed"))
            continue
        if key in table:
            problems.append(Problem(name, number, key, f"duplicate id (first on line {lines[key]})",
                                    "keep one line per id", "duplicate"))
            continue
        if previous is not None and key < previous:
            problems.append(Problem(name, number, key, f"not sorted: comes after {previous!r}",
                                    f"sort it with: LC_ALL=C sort -k1,1 -o {path.name} {path.name}", "unsorted"))
        previous = key if previous is None or key > previous else previous
        table[key] = rest
        lines[key] = number
    return table, lines


@dataclass
class DataDir:
    """A Kaldi data dir; with ``segments`` None each utterance id is its recording id."""

    wav_scp: dict[str, str]
    text: dict[str, str]
    utt2spk: dict[str, str]
    segments: dict[str, Segment] | None = None
    utt2dur: dict[str, float] = field(default_factory=dict)
    utt2task: dict[str, str] | None = None
    path: Path | None = None
    allow_pipes: bool = False
    # line of each id in each file, for messages; empty for dirs built in memory
    line_numbers: dict[str, dict[str, int]] = field(default_factory=dict, repr=False)

    # ---------------------------------------------------------------- reading
    @classmethod
    def scan(cls, path: str | Path, allow_pipes: bool = False) -> tuple[DataDir, list[Problem]]:
        """Read leniently: the dir as far as it parses, plus every structural problem found."""
        path = Path(path)
        problems: list[Problem] = []
        if not path.is_dir():
            raise DataDirError(f"{path}: not a directory — pass a Kaldi data dir (wav.scp, utt2spk, text, ...)")
        for required in ("wav.scp", "utt2spk"):
            if not (path / required).is_file():
                problems.append(Problem(str(path / required), None, None, "missing file",
                                        "every data dir needs wav.scp and utt2spk", "missing-file"))
        tables, lines = {}, {}
        shapes = {"wav.scp": (2, None), "text": (1, None), "utt2spk": (2, 2), "segments": (4, 4),
                  "utt2dur": (2, 2), "utt2task": (2, 2)}
        for name in TABLES:
            if (path / name).is_file():
                lo, hi = shapes[name]
                tables[name], lines[name] = read_table(path / name, problems, lo, hi)
        data = cls(
            wav_scp=tables.get("wav.scp", {}), text=tables.get("text", {}), utt2spk=tables.get("utt2spk", {}),
            utt2task=tables.get("utt2task"), path=path, allow_pipes=allow_pipes, line_numbers=lines,
        )
        data.segments = (_parse_segments(tables["segments"], lines["segments"], str(path / "segments"), problems)
                         if "segments" in tables else None)
        data.utt2dur = _parse_floats(tables.get("utt2dur", {}), lines.get("utt2dur", {}), str(path / "utt2dur"), problems)
        problems += data.consistency_problems()
        return data, problems

    @classmethod
    def read(cls, path: str | Path, allow_pipes: bool = False) -> DataDir:
        """Read a data dir; raises :class:`DataDirError` listing every structural problem."""
        data, problems = cls.scan(path, allow_pipes)
        if problems:
            raise DataDirError(problems)
        return data

    def line_of(self, file: str, key: str) -> int | None:
        return self.line_numbers.get(file, {}).get(key)

    def _at(self, file: str, key: str, problem: str, fix: str, kind: str) -> Problem:
        where = str(self.path / file) if self.path is not None else file
        return Problem(where, self.line_of(file, key), key, problem, fix, kind)

    def consistency_problems(self) -> list[Problem]:
        """Ids present in one file but not another, bad segments, pipes that are not allowed."""
        found: list[Problem] = []
        utts = set(self.utt2spk)
        for rec, source in self.wav_scp.items():
            if audio.is_pipe(source) and not self.allow_pipes:
                found.append(self._at("wav.scp", rec, "piped command in wav.scp",
                                     "pass --allow-pipes (allow_pipes=True) if you trust this data dir", "pipe"))
        if self.segments is None:
            for rec in sorted(set(self.wav_scp) - utts):
                found.append(self._at("wav.scp", rec, "recording has no utt2spk entry",
                                     "add it to utt2spk or remove it from wav.scp", "missing-id"))
            for utt in sorted(utts - set(self.wav_scp)):
                found.append(self._at("utt2spk", utt, "utterance has no wav.scp entry",
                                     "add its audio to wav.scp or remove it from utt2spk", "missing-id"))
        else:
            for utt in sorted(set(self.segments) - utts):
                found.append(self._at("segments", utt, "segment has no utt2spk entry",
                                     "add it to utt2spk or remove it from segments", "missing-id"))
            for utt in sorted(utts - set(self.segments)):
                found.append(self._at("utt2spk", utt, "utterance has no segments entry",
                                     "add it to segments or remove it from utt2spk", "missing-id"))
            for utt, seg in sorted(self.segments.items()):
                if seg.recording not in self.wav_scp:
                    found.append(self._at("segments", utt,
                                         f"recording {seg.recording!r} is not in wav.scp",
                                         "add the recording to wav.scp or remove the segment", "missing-id"))
        for name, table in (("text", self.text or None), ("utt2task", self.utt2task), ("utt2dur", self.utt2dur or None)):
            if table is None:
                continue
            for utt in sorted(set(table) - utts):
                found.append(self._at(name, utt, "utterance is not in utt2spk",
                                     f"remove it from {name} or add it to utt2spk", "missing-id"))
            if name != "utt2dur":
                for utt in sorted(utts - set(table)):
                    found.append(self._at("utt2spk", utt, f"utterance has no {name} entry",
                                         f"add it to {name} or remove it from utt2spk", "missing-id"))
        for utt, words in sorted(self.text.items()):
            if not words.strip():
                found.append(self._at("text", utt, "empty transcript",
                                     "write the transcript or remove the utterance", "empty-text"))
        return found

    # ---------------------------------------------------------------- writing
    def write(self, path: str | Path) -> Path:
        """Write every table C-locale sorted, derive ``spk2utt``, and remove stale optional tables."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        utts = set(self.utt_ids)
        recordings = {s.recording for s in self.segments.values()} if self.segments is not None else utts
        tables = {
            "wav.scp": {r: v for r, v in self.wav_scp.items() if r in recordings},
            "text": {u: v for u, v in self.text.items() if u in utts} or None,
            "utt2spk": self.utt2spk,
            "spk2utt": {s: " ".join(us) for s, us in self.spk2utt().items()},
            "segments": None if self.segments is None else {
                u: f"{s.recording} {_fmt_seconds(s.start)} {_fmt_seconds(s.end)}" for u, s in self.segments.items()},
            "utt2dur": {u: _fmt_seconds(d) for u, d in self.utt2dur.items() if u in utts} or None,
            "utt2task": None if self.utt2task is None else {u: t for u, t in self.utt2task.items() if u in utts},
        }
        for name, table in tables.items():
            target = path / name
            if table is None:
                target.unlink(missing_ok=True)
                continue
            body = "".join(f"{k} {table[k]}\n" if table[k] != "" else f"{k}\n" for k in sorted(table))
            _write_atomic(target, body)
        return path

    # ---------------------------------------------------------------- access
    @property
    def utt_ids(self) -> list[str]:
        """Utterance ids in C-locale order."""
        return sorted(self.utt2spk)

    def __len__(self) -> int:
        return len(self.utt2spk)

    def spk2utt(self) -> dict[str, list[str]]:
        grouped: dict[str, list[str]] = defaultdict(list)
        for utt in self.utt_ids:
            grouped[self.utt2spk[utt]].append(utt)
        return dict(sorted(grouped.items()))

    def source_of(self, utt_id: str) -> tuple[str, float | None, float | None]:
        """``(wav.scp entry, start, end)`` of an utterance."""
        if self.segments is not None:
            seg = self.segments[utt_id]
            return self.wav_scp[seg.recording], seg.start, seg.end
        return self.wav_scp[utt_id], None, None

    def load_audio(self, utt_id: str) -> np.ndarray:
        """(S,) float32 mono 16 kHz samples of one utterance; :class:`audio.AudioError` names it."""
        if utt_id not in self.utt2spk:
            raise KeyError(f"utterance {utt_id!r} is not in {self.path or 'this data dir'}")
        source, start, end = self.source_of(utt_id)
        return audio.load_audio(source, start=start, end=end, utt_id=utt_id, allow_pipes=self.allow_pipes)

    def durations(self, write_cache: bool = True) -> dict[str, float]:
        """Seconds per utterance; computes the missing ones (segments, or audio headers) and caches
        them in ``utt2dur`` (also written to the dir on disk when it came from one and had none)."""
        missing = [u for u in self.utt_ids if u not in self.utt2dur]
        for utt in missing:
            if self.segments is not None:
                seg = self.segments[utt]
                self.utt2dur[utt] = seg.end - seg.start
            else:
                self.utt2dur[utt] = audio.audio_duration(self.wav_scp[utt], utt_id=utt, allow_pipes=self.allow_pipes)
        if missing and write_cache and self.path is not None and self.path.is_dir():
            try:
                body = "".join(f"{u} {_fmt_seconds(self.utt2dur[u])}\n" for u in self.utt_ids)
                _write_atomic(self.path / "utt2dur", body)
            except OSError:
                pass  # a read-only corpus is fine: the durations stay cached in memory
        return {u: self.utt2dur[u] for u in self.utt_ids}

    def select(self, utt_ids) -> DataDir:
        """A new DataDir with only ``utt_ids`` (and the recordings they use)."""
        keep = set(utt_ids)
        unknown = keep - set(self.utt2spk)
        if unknown:
            raise KeyError(f"utterances not in the data dir: {sorted(unknown)[:5]}")
        segments = None if self.segments is None else {u: s for u, s in self.segments.items() if u in keep}
        recordings = {s.recording for s in segments.values()} if segments is not None else keep
        return DataDir(
            wav_scp={r: v for r, v in self.wav_scp.items() if r in recordings},
            text={u: v for u, v in self.text.items() if u in keep},
            utt2spk={u: v for u, v in self.utt2spk.items() if u in keep},
            segments=segments,
            utt2dur={u: v for u, v in self.utt2dur.items() if u in keep},
            utt2task=None if self.utt2task is None else {u: v for u, v in self.utt2task.items() if u in keep},
            allow_pipes=self.allow_pipes,
        )


def _parse_floats(table: dict[str, str], lines: dict[str, int], name: str, problems: list[Problem]) -> dict[str, float]:
    out = {}
    for key, value in table.items():
        try:
            out[key] = float(value)
            if not np.isfinite(out[key]) or out[key] < 0:
                raise ValueError
        except ValueError:
            out.pop(key, None)
            problems.append(Problem(name, lines[key], key, f"not a duration in seconds: {value!r}",
                                    f"fix the line or delete {name} to recompute it", "malformed"))
    return out


def _parse_segments(table: dict[str, str], lines: dict[str, int], name: str, problems: list[Problem]) -> dict[str, Segment]:
    segments = {}
    for utt, rest in table.items():
        recording, start, end = rest.split()
        try:
            seg = Segment(recording, float(start), float(end))
        except ValueError:
            problems.append(Problem(name, lines[utt], utt, f"start/end are not numbers: {start!r} {end!r}",
                                    "write 'utt_id recording_id start_seconds end_seconds'", "malformed"))
            continue
        if seg.start < 0 or seg.end <= seg.start:
            problems.append(Problem(name, lines[utt], utt, f"segment end {end} is not after start {start}",
                                    "fix the times or remove the segment", "bad-segment"))
            continue
        segments[utt] = seg
    return segments
