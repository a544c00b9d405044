"""Run independent recipe runs N at a time, each in its own process with its share of the CPU threads.

Why: one small model on 2 cores does not keep both busy (a whisper-tiny.en prompt step on 2 threads
takes 2.15 s; two runs on 1 thread each take 3.4-3.5 s a step side by side, 1.24x the throughput of
one run on 2 threads, measured with benchmarks/step_cost.py), and greedy decoding scales worse still.
Kaldi recipes split work into ``nj`` jobs for the same reason.

Each run writes everything it prints (Python and C-level, stdout and stderr) to its own log file;
the calling process prints one line per run as it ends. A failed run does not stop the others: its
error and log file are reported at the end, and ``run_all`` returns the failures.

    failures = run_all(work, jobs=2, log_name="adapt.log")   # work: [(label, log_dir, fn, args), ...]
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Work:
    label: str  # how the run is named in messages, e.g. "[prompt seed 2]"
    log_dir: Path  # the run's folder: its log file goes there
    fn: Callable  # a module-level function (it is pickled into the worker)
    args: tuple


def available_cores() -> int:
    """CPU cores this process may use (the affinity mask, which containers and taskset narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def threads_per_run(jobs: int) -> int:
    return max(1, available_cores() // jobs)


def _limit_threads(threads: int) -> None:
    """Worker initializer: before torch is imported, so its OpenMP pool starts at this size."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)
    import torch

    torch.set_num_threads(threads)


def _run_logged(fn: Callable, args: tuple, log_path: Path) -> tuple[object, str | None]:
    """Run ``fn(*args)`` with file descriptors 1 and 2 going to ``log_path`` (appended).

    Returns (fn's value, None) or (None, the error's last line); the full traceback is in the log."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log_path, "ab", buffering=0) as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            return fn(*args), None
        except BaseException as err:  # SystemExit too: a run's failure must not end the worker silently
            traceback.print_exc()
            message = str(err) if isinstance(err, SystemExit) else f"{type(err).__name__}: {err}"
            return None, message or type(err).__name__
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def run_all(work: Sequence[Work], jobs: int, log_name: str,
            describe: Callable[[object], str] = str) -> list[tuple[Work, str]]:
    """Run every item ``jobs`` at a time (in the given order of starting); returns [(work, error), ...].

    ``describe(value)`` makes the line printed when a run ends well (e.g. its metric)."""
    threads = threads_per_run(jobs)
    print(f"{len(work)} run(s), {jobs} at a time with {threads} CPU thread(s) each; "
          f"each run logs to <run>/{log_name}", flush=True)
    failures: list[tuple[Work, str]] = []
    # spawn, not fork: a forked torch process can deadlock in its inherited OpenMP pool
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_limit_threads, initargs=(threads,)) as pool:
        futures = {pool.submit(_run_logged, item.fn, item.args, item.log_dir / log_name): item for item in work}
        for future in as_completed(futures):
            item = futures[future]
            log_path = item.log_dir / log_name
            try:
                value, error = future.result()
            except Exception as err:  # the worker itself died (killed, out of memory)
                value, error = None, f"its process died ({type(err).__name__}: {err})"
            if error is None:
                print(f"{item.label} {describe(value)} (log: {log_path})", flush=True)
            else:
                print(f"{item.label} FAILED: {error} (log: {log_path})", flush=True)
                failures.append((item, error))
    return failures
