"""Operations on whole data dirs: seeded subsets, combining dirs, and a text summary."""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from speechprompt.data.kaldi_dir import DataDir, DataDirError, Segment

HISTOGRAM_EDGES = (0, 1, 2, 3, 5, 10, 15, 20, 30, 60)


def subset(data: DataDir, seconds: float, by_speaker: bool = False, seed: int = 0) -> DataDir:
    """A random subset with at most ``seconds`` of audio (as close to it as the utterances allow).

    With ``by_speaker`` the speaker with the least audio so far always gets the next utterance,
    so every speaker contributes about the same number of seconds (until they run out).
    """
    if not seconds > 0:  # also refuses nan
        raise ValueError(f"seconds must be positive, got {seconds}")
    durations = data.durations()
    rng = np.random.default_rng(seed)
    chosen: list[str] = []
    total = 0.0
    if not by_speaker:
        for i in rng.permutation(len(data.utt_ids)):
            utt = data.utt_ids[i]
            if total + durations[utt] <= seconds:
                chosen.append(utt)
                total += durations[utt]
        return data.select(chosen)
    queues = {}
    for spk, utts in data.spk2utt().items():
        queues[spk] = [utts[i] for i in rng.permutation(len(utts))]
    speakers = list(queues)
    # heap of (seconds so far, random tie-break, speaker): the poorest speaker is served first
    order = rng.permutation(len(speakers))
    heap = [(0.0, int(order[i]), spk) for i, spk in enumerate(speakers)]
    heapq.heapify(heap)
    while heap:
        have, tie, spk = heapq.heappop(heap)
        queue = queues[spk]
        while queue and total + durations[queue[0]] > seconds:
            queue.pop(0)  # too long for what is left of the budget; a shorter one may still fit
        if not queue:
            continue
        utt = queue.pop(0)
        chosen.append(utt)
        total += durations[utt]
        heapq.heappush(heap, (have + durations[utt], tie, spk))
    return data.select(chosen)


def _prefixed(data: DataDir, prefix: str) -> DataDir:
    """The same dir with ``prefix`` before every utterance, recording and speaker id."""
    def ren(table):
        return None if table is None else {prefix + k: v for k, v in table.items()}

    return DataDir(
        wav_scp=ren(data.wav_scp), text=ren(data.text),
        utt2spk={prefix + u: prefix + s for u, s in data.utt2spk.items()},
        segments=None if data.segments is None else {
            prefix + u: Segment(prefix + s.recording, s.start, s.end) for u, s in data.segments.items()},
        utt2dur=ren(data.utt2dur), utt2task=ren(data.utt2task), allow_pipes=data.allow_pipes,
    )


def _as_segments(data: DataDir) -> dict[str, Segment]:
    if data.segments is not None:
        return data.segments
    return {u: Segment(u, 0.0, d) for u, d in data.durations().items()}


def combine(dirs: Sequence[DataDir], names: Sequence[str] | None = None, prefix: bool = False) -> DataDir:
    """Merge data dirs. Clashing ids are an error unless ``prefix`` puts ``<name>-`` before every id.

    Dirs with and without ``segments`` mix (whole recordings become one segment each); ``text`` and
    ``utt2task`` must be present in all dirs or in none.
    """
    names = list(names) if names is not None else [f"d{i}" for i in range(len(dirs))]
    if prefix:
        if len(set(names)) != len(names):
            names = [f"{n}{i}" for i, n in enumerate(names)]
        dirs = [_prefixed(d, f"{n}-") for d, n in zip(dirs, names, strict=True)]
    for attr, what in (("text", "text"), ("utt2task", "utt2task")):
        present = [bool(getattr(d, attr)) for d in dirs]
        if any(present) and not all(present):
            missing = [n for n, p in zip(names, present, strict=True) if not p]
            raise DataDirError(f"{', '.join(missing)}: no {what} file while the other dirs have one — "
                               f"add {what} to every dir or remove it from all")
    use_segments = any(d.segments is not None for d in dirs)
    merged = DataDir(wav_scp={}, text={}, utt2spk={}, segments={} if use_segments else None, utt2dur={},
                     utt2task={} if any(d.utt2task for d in dirs) else None,
                     allow_pipes=any(d.allow_pipes for d in dirs))
    owner: dict[str, str] = {}
    for data, name in zip(dirs, names, strict=True):
        for utt in data.utt2spk:
            if utt in owner:
                raise DataDirError(f"utterance id {utt!r} is in both {owner[utt]} and {name} — "
                                   "rename one, or pass --prefix to prefix every id with its dir name")
            owner[utt] = name
        for rec, source in data.wav_scp.items():
            if merged.wav_scp.get(rec, source) != source:
                raise DataDirError(f"recording id {rec!r} means different audio in {name} and another dir — "
                                   "rename one, or pass --prefix")
            merged.wav_scp[rec] = source
        merged.text.update(data.text)
        merged.utt2spk.update(data.utt2spk)
        merged.utt2dur.update(data.utt2dur)
        if merged.segments is not None:
            merged.segments.update(_as_segments(data))
        if merged.utt2task is not None:
            merged.utt2task.update(data.utt2task or {})
    return merged


def info(data: DataDir) -> str:
    """Utterances, speakers, hours, duration statistics and a duration histogram, as text."""
    durations = np.array(list(data.durations().values()), dtype=np.float64)
    lines = [
        f"data dir:    {data.path or '(in memory)'}",
        f"utterances:  {len(data)}",
        f"speakers:    {len(data.spk2utt())}",
        f"recordings:  {len(data.wav_scp)}" + (" (with segments)" if data.segments is not None else ""),
        f"hours:       {durations.sum() / 3600:.3f}",
    ]
    if durations.size:
        lines.append(f"duration s:  min {durations.min():.2f}  mean {durations.mean():.2f}  "
                     f"median {np.median(durations):.2f}  max {durations.max():.2f}")
    if data.text:
        words = [w for t in data.text.values() for w in t.split()]
        lines.append(f"text:        {len(words)} words, {len(set(words))} distinct")
    if data.utt2task:
        tasks = defaultdict(int)
        for task in data.utt2task.values():
            tasks[task] += 1
        lines.append("tasks:       " + ", ".join(f"{t} ({n})" for t, n in sorted(tasks.items())))
    if durations.size:
        longest = float(durations.max())
        # bins up to the one holding the longest utterance; past the last edge one open-ended bin
        above = [e for e in HISTOGRAM_EDGES if e > longest]
        edges = [e for e in HISTOGRAM_EDGES if e <= longest] + (above[:1] or [float("inf")])
        counts, _ = np.histogram(durations, bins=[*edges[:-1], min(edges[-1], longest + 1)])
        widest = max(int(counts.max()), 1)
        lines.append("duration histogram (seconds: utterances):")
        for lo, hi, n in zip(edges[:-1], edges[1:], counts, strict=True):
            label = f"{lo:>4g}-{hi:<4g}" if np.isfinite(hi) else f"{lo:>4g}+    "
            lines.append(f"  {label} {int(n):7d} {'#' * int(round(40 * n / widest))}")
    return "\n".join(lines)
