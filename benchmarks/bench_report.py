"""What every deployment benchmark prints: the command line, the machine, markdown tables, and ``--out``.

Imported by the scripts beside it (``benchmarks/`` is on ``sys.path`` when one of them runs).
"""

from __future__ import annotations

import os
import platform
import shlex
import sys
import time
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


SIMD_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


def simd_flags() -> str:
    """The CPU features bf16 and int8 speed depends on (no avx512_bf16/amx: bf16 is emulated, slower than fp32)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                present = set(line.split(":", 1)[1].split())
                return " ".join(f for f in SIMD_FLAGS if f in present) or "none of " + " ".join(SIMD_FLAGS)
    except OSError:
        pass
    return "unknown"


def machine_line(threads: int, extra: dict[str, str] | None = None) -> str:
    """CPU model, cores, threads used, library versions, date and load average (a shared machine shows it)."""
    import torch

    parts = [f"{cpu_model()} ({os.cpu_count()} logical cores; {simd_flags()})", f"{threads} thread(s)",
             f"torch {torch.__version__}"]
    try:
        import transformers

        parts.append(f"transformers {transformers.__version__}")
    except ImportError:
        pass
    parts += [f"{name} {version}" for name, version in (extra or {}).items()]
    parts.append(time.strftime("%Y-%m-%d %H:%M"))
    if hasattr(os, "getloadavg"):
        one, five, fifteen = os.getloadavg()
        parts.append(f"load average {one:.2f} {five:.2f} {fifteen:.2f} at the start")
    return ", ".join(parts)


def command_line(script: str) -> str:
    return shlex.join(["python", f"benchmarks/{script}", *sys.argv[1:]])


def set_threads(threads: int) -> None:
    """The same number of threads for torch (intra- and inter-op) and for anything reading OMP_NUM_THREADS."""
    import torch

    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:  # already set once in this process
        pass


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def load_utterances(test_dir: str, count: int, max_seconds: float | None = None):
    """(ids, waveforms, references, durations) of the first ``count`` utterances of a Kaldi dir that fit
    ``max_seconds`` (a released Whisper's 30 s window); longer ones are named and left out."""
    from speechprompt.data.kaldi_dir import DataDir

    data = DataDir.read(test_dir)
    durations = data.durations()
    ids = list(data.utt_ids)
    if max_seconds is not None:
        too_long = [u for u in ids if durations[u] > max_seconds]
        if too_long:
            print(f"left out {len(too_long)} utterance(s) longer than {max_seconds:g} s: {' '.join(too_long[:10])}",
                  file=sys.stderr)
        ids = [u for u in ids if durations[u] <= max_seconds]
    ids = ids[:count]
    waves = [data.load_audio(u) for u in ids]
    return ids, waves, {u: data.text.get(u, "") for u in ids}, [len(w) / 16000 for w in waves]


def write_out(path: str | None, text: str) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text.rstrip("\n") + "\n", encoding="utf-8")
        print(f"written to {path}", file=sys.stderr)
