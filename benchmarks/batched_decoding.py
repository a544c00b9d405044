"""Batched decoding on one backbone: throughput and latency by batch size, single-task vs mixed-task batches.

For batch sizes 1, 8 and 32 (``--batch-sizes``), on the first N utterances of a test set (sorted by
length, cut into batches of exactly that size, as length bucketing would group them), one run
measures side by side:

- throughput: audio seconds decoded per wall second, and utterances per second;
- per-utterance latency p50 / p95: the wall time of the batch that carries the utterance (every result of
  a batch is ready when the batch is);
- each with every batch on one task, and with every batch mixing 10 task prompts (utterance i on task
  i mod 10); the mixed/single throughput ratio shows what the per-utterance prompt gather costs.

Decoding goes through ``Transcriber.transcribe`` (the path of ``speechprompt transcribe``), one call per
batch. Task prompts: trained artifacts (``--artifact DIR``, repeat; the first is the single task), or,
for a timing-only run, ``--random-prompts K`` artifacts made here with random values (prompt values do
not change the compute per step; they do change how many tokens come out, which the table shows).

    python benchmarks/batched_decoding.py --backbone whisper-tiny.en --test corpora/synth/data/test -n 64 \\
        --random-prompts 10 --threads 2 --out docs/bench/batched_tiny_en.md
    python benchmarks/batched_decoding.py --backbone whisper-base --language cs --test corpora/fillets_cs/data/test \\
        --artifact exp/a/artifact --artifact exp/b/artifact ... -n 64 --threads 2
    python benchmarks/batched_decoding.py ... -n 4 --batch-sizes 1 2 --random-prompts 2   # smoke run
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_report import command_line, load_utterances, machine_line, set_threads, table, write_out

from speechprompt.decoding.transcriber import Transcriber, load_backbone


def make_transcriber(args, artifacts: list[Path]) -> Transcriber:
    transcriber = Transcriber(load_backbone(args.backbone), beam=args.beam, precision=args.precision,
                              max_len=args.max_len, batch_seconds=1e9, pad_to_window=args.pad_to_window)
    for index, artifact in enumerate(artifacts):
        transcriber.add_task(f"t{index}", artifact, language=args.language)
    return transcriber


def run_batches(transcriber: Transcriber, waves, order: list[int], size: int, tasks: list[str]) -> dict:
    """Decode ``waves`` in batches of ``size`` (in ``order``); wall, per-utterance latencies, tokens."""
    transcriber.transcribe([waves[order[0]]], [tasks[order[0]]])  # warm-up
    latencies, tokens, start = [], 0, time.perf_counter()
    for first in range(0, len(order), size):
        batch = order[first: first + size]
        began = time.perf_counter()
        results = transcriber.transcribe([waves[i] for i in batch], [tasks[i] for i in batch])
        latencies += [time.perf_counter() - began] * len(batch)
        tokens += sum(r.num_tokens for r in results)
    return {"wall": time.perf_counter() - start, "latencies": latencies, "tokens": tokens}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", required=True, help="backbone folder or fetched name")
    parser.add_argument("--test", required=True, help="Kaldi data dir")
    parser.add_argument("--language", help="language of a multilingual checkpoint (e.g. cs)")
    parser.add_argument("--artifact", action="append", default=[], help="trained task artifact (repeat; 10 for the mix)")
    parser.add_argument("--random-prompts", type=int, default=10,
                        help="without --artifact: make this many random prompt artifacts (timing only; default 10)")
    parser.add_argument("--num-prompts", type=int, default=50, help="prompt vectors of the random artifacts")
    parser.add_argument("-n", type=int, default=64, help="first N utterances (default 64)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--beam", type=int, default=1)
    parser.add_argument("--max-len", type=int, default=200)
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "int8"))
    parser.add_argument("--pad-to-window", action=argparse.BooleanOptionalAction, default=None,
                        help="Whisper: as transcribe's option (default: as the artifacts were trained)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", help="also write the markdown section here")
    args = parser.parse_args()
    set_threads(args.threads)
    logging.getLogger("speechprompt.data.dataset").setLevel(logging.ERROR)

    with tempfile.TemporaryDirectory(prefix="batched-") as work:
        if args.artifact:
            artifacts, source = [Path(a) for a in args.artifact], "trained artifacts " + " ".join(args.artifact)
        else:
            from task_artifacts import random_artifacts

            artifacts = random_artifacts(load_backbone(args.backbone), Path(work), args.random_prompts, "prompt",
                                         {"num_prompts": args.num_prompts}, args.language)
            source = f"{len(artifacts)} random prompt artifacts of {args.num_prompts} vectors (timing only)"
        transcriber = make_transcriber(args, artifacts)
    ids, waves, _, durations = load_utterances(args.test, args.n, 30.0)
    audio = sum(durations)
    order = sorted(range(len(waves)), key=lambda i: durations[i])
    names = transcriber.tasks
    mixes = {"single task": [names[0]] * len(waves), f"mixed, {len(names)} tasks": [names[i % len(names)] for i in range(len(waves))]}
    rows = []
    for size in args.batch_sizes:
        measured = {}
        for label, tasks in mixes.items():
            if label != "single task" and len(names) == 1:
                continue
            m = run_batches(transcriber, waves, order, size, tasks)
            measured[label] = m
            lat = np.array(m["latencies"])
            print(f"  batch {size}, {label}: {m['wall']:.1f} s", file=sys.stderr, flush=True)
            ratio = (f"{measured['single task']['wall'] / m['wall']:.2f}" if label != "single task" else "1")
            rows.append([size, label, f"{audio / m['wall']:.1f}", f"{len(waves) / m['wall']:.2f}",
                         f"{1000 * np.percentile(lat, 50):.0f}", f"{1000 * np.percentile(lat, 95):.0f}", m["tokens"], ratio])
    window = getattr(transcriber.backbone, "pad_to_window", None)
    section = (f"### Batched decoding: {args.backbone} on {args.test}\n\n"
               f"{len(ids)} utterances, {audio:.0f} s of audio, sorted by length; {source}; beam {args.beam}, "
               f"precision {args.precision}" + ("" if window is None else f", encoder on the {'30 s window' if window else 'true length'}")
               + f"; {machine_line(args.threads)}.\n\nCommand: `{command_line('batched_decoding.py')}`\n\n"
               + table(["batch size", "tasks in each batch", "audio s/s", "utterances/s", "latency p50 ms",
                        "latency p95 ms", "tokens out", "throughput / single task"], rows) + "\n")
    print(section)
    write_out(args.out, section)


if __name__ == "__main__":
    main()
