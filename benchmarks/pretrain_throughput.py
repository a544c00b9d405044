"""Wav2Seq pretraining throughput and pseudo-labelling speed on synthetic audio.

Builds a Kaldi data dir of synthetic 'phone' audio (tone segments from a small inventory, seeded),
pseudo-labels it (MFCC + deltas -> k-means -> BPE) and pretrains a backbone on the pseudo subwords
for a few steps, reporting audio seconds processed per wall-clock second. Run by hand:

  python benchmarks/pretrain_throughput.py                         # small backbone, auto device
  python benchmarks/pretrain_throughput.py --size tiny --minutes 2 --steps 10 --json bench.json
  torchrun --nproc_per_node 2 benchmarks/pretrain_throughput.py    # data parallel throughput

The first --warmup-steps optimizer steps are excluded from the training figure (allocation, caches).
With --doc the figures replace the "## Pretraining" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from speechprompt.data.audio import write_audio

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
SECTION = "## Pretraining"
PHONES = [(180.0, 0.3), (320.0, 0.25), (520.0, 0.3), (850.0, 0.2), (1300.0, 0.15), (2100.0, 0.1), (0.0, 0.0)]


def synthetic_utterance(seed: int, seconds: float, sr: int = 16000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pieces, total = [], 0
    while total < seconds * sr:
        freq, amp = PHONES[int(rng.integers(len(PHONES)))]
        n = int(rng.integers(960, 3200))
        t = np.arange(n) / sr
        pieces.append(amp * np.sin(2 * np.pi * freq * t + rng.uniform(0, 6.28)) * np.hanning(n) ** 0.2)
        total += n
    wave = np.concatenate(pieces)[: int(seconds * sr)]
    return (wave + rng.normal(0, 0.003, wave.size)).astype(np.float32)


def make_corpus(root: Path, minutes: float, seed: int = 0) -> Path:
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows, total, i = [], 0.0, 0
    while total < minutes * 60:
        seconds = float(rng.uniform(2.0, 8.0))
        utt = f"spk{i % 4}-utt{i:05d}"
        rows.append((utt, f"spk{i % 4}", write_audio(root / "wav" / f"{utt}.wav", synthetic_utterance(i, seconds), 16000)))
        total += seconds
        i += 1
    rows.sort()
    (data / "wav.scp").write_text("".join(f"{u} {p}\n" for u, _, p in rows))
    (data / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s, _ in rows))
    return data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="small", help="backbone size (default small)")
    parser.add_argument("--family", default="wav2vec2")
    parser.add_argument("--minutes", type=float, default=5.0, help="minutes of synthetic audio (default 5)")
    parser.add_argument("--clusters", type=int, default=100)
    parser.add_argument("--bpe-vocab", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps to time (default 20)")
    parser.add_argument("--warmup-steps", type=int, default=3, help="steps left out of the training figure")
    parser.add_argument("--batch-seconds", type=float, default=60.0, help="audio seconds per batch (per process)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--workdir", help="keep the corpus and outputs here (default: a temporary folder)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--doc", action="store_true", help=f"write the figures into {DOC.name} ({SECTION})")
    args = parser.parse_args()

    from speechprompt.config import load_config
    from speechprompt.pretrain.labelling import pseudo_label
    from speechprompt.pretrain.pretraining import pretrain

    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    work = Path(args.workdir or tempfile.mkdtemp(prefix="pretrain_bench_"))
    results: dict = {"size": args.size, "family": args.family, "world_size": world, "torch": torch.__version__,
                     "threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine()}
    data = work / "corpus" / "data"
    if rank == 0:
        start = time.perf_counter()
        data = make_corpus(work / "corpus", args.minutes)
        results["corpus_seconds_to_make"] = time.perf_counter() - start
        stats = pseudo_label(data, work / "pl", clusters=args.clusters, bpe_vocab=args.bpe_vocab)
        results["pseudo_label"] = {
            "audio_seconds": stats["audio_seconds"], "wall_seconds": stats["wall_seconds"],
            "x_real_time": stats["audio_seconds"] / stats["wall_seconds"],
            "feature_x_real_time": stats["audio_seconds"] / stats["feature_wall_seconds"],
            "frames_per_second": stats["frames_per_second"], "dedup_ratio": stats["dedup_ratio"],
            "pseudo_tokens_per_second": stats["pseudo_tokens_per_second"], "bpe_vocab": stats["bpe_vocab_size"],
        }
    if world > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() and args.device != "cpu" else "gloo")
        dist.barrier()
    total_steps = args.steps + args.warmup_steps
    cfg = load_config(None, [
        f"experiment.dir={work}/w2s/exp", f"experiment.device={args.device}", f"optim.precision={args.precision}",
        f"optim.max_steps={total_steps}", "optim.warmup_steps=1", "optim.lr=5e-4", "experiment.log_every=1",
        "experiment.eval_every=0", f"experiment.save_every={total_steps}", "experiment.progress=false",
        f"data.max_batch_seconds={args.batch_seconds}", f"backbone.size={args.size}", f"backbone.family={args.family}",
        "method.name=finetune",
    ])
    pretrain(cfg, str(data), work / "w2s", pseudo_dir=work / "pl")
    if rank != 0:
        return 0
    log = [json.loads(x) for x in (work / "w2s" / "exp" / "train_log.jsonl").read_text().splitlines()]
    timed = [r for r in log if "loss" in r and r["step"] > args.warmup_steps]
    # each record covers one step (log_every=1): audio seconds / wall seconds of that step
    rates = [r["audio_seconds_per_second"] for r in timed]
    results["pretrain"] = {
        "steps_timed": len(timed), "audio_seconds_per_second_mean": float(np.mean(rates)),
        "audio_seconds_per_second_median": float(np.median(rates)), "batch_seconds_per_process": args.batch_seconds,
        "device": str(cfg.experiment.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")),
        "first_loss": log[0].get("loss"), "last_loss": timed[-1]["loss"] if timed else None,
    }
    print(json.dumps(results, indent=1))
    pl, pt = results["pseudo_label"], results["pretrain"]
    print(f"\npseudo-labelling: {pl['x_real_time']:.0f}x real time overall (features {pl['feature_x_real_time']:.0f}x), "
          f"{pl['frames_per_second']:.0f} frames/s, dedup {pl['dedup_ratio']:.2f}, "
          f"{pl['pseudo_tokens_per_second']:.1f} pseudo tokens/s")
    print(f"pretraining ({args.family}/{args.size}, {world} process(es), {pt['device']}): "
          f"{pt['audio_seconds_per_second_median']:.1f} audio s per wall s (median of {pt['steps_timed']} steps)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    if args.doc:
        write_section(DOC, markdown(results, args))
    return 0


def markdown(results: dict, args) -> str:
    pl, pt = results["pseudo_label"], results["pretrain"]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return "\n".join([
        SECTION, "",
        f"Synthetic 'phone' audio ({pl['audio_seconds'] / 60:.1f} min, utterances of 2-8 s); {results['machine']}, "
        f"{results['threads']} thread(s), torch {results['torch']}, {time.strftime('%Y-%m-%d')}, "
        f"1-minute load average {load:.1f} when done.",
        "", f"Command: `OMP_NUM_THREADS={results['threads']} python benchmarks/pretrain_throughput.py "
        f"--family {args.family} --size {args.size} --minutes {args.minutes} "
        f"--steps {args.steps} --batch-seconds {args.batch_seconds} --doc`", "",
        "| step | figure |", "|---|---|",
        f"| pseudo-labelling, whole (MFCC + k-means {args.clusters} + BPE {args.bpe_vocab}) | "
        f"{pl['x_real_time']:.0f}x real time |",
        f"| pseudo-labelling, MFCC + deltas only | {pl['feature_x_real_time']:.0f}x real time |",
        f"| pseudo language | {pl['frames_per_second']:.0f} frames/s, dedup ratio {pl['dedup_ratio']:.2f}, "
        f"{pl['pseudo_tokens_per_second']:.1f} pseudo tokens/s |",
        f"| pretraining {results['family']}/{results['size']} ({results['world_size']} process(es), {pt['device']}, "
        f"{pt['batch_seconds_per_process']:.0f} s batches) | {pt['audio_seconds_per_second_median']:.2f} audio s per "
        f"wall s (median of {pt['steps_timed']} steps) |", "",
    ])


def write_section(doc: Path, section: str) -> None:
    """Replace the '## Pretraining' section of ``doc`` (or append it), keeping every other section."""
    text = doc.read_text() if doc.is_file() else "# Benchmarks\n"
    start = text.find(SECTION + "\n")
    if start >= 0:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + (text[end + 1:] if end >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)


if __name__ == "__main__":
    raise SystemExit(main())
