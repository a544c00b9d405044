"""Cost of one training step for every tuning method on the same backbone and batch.

For each method: trainable parameters, artifact size on disk, training-step time (forward,
backward, AdamW update; median of ``--steps`` rounds after a warm-up step, the methods interleaved
within each round) and peak memory of two training steps above the loaded model, measured in a
fresh process per method (C-heap bytes in use on CPU, sampled; allocator peak on CUDA): gradients,
optimiser state and the activations saved for backward. Each figure is also given as a ratio to full fine-tuning. Prints a markdown table.

    python benchmarks/step_cost.py                              # wav2vec2 small, batch 4 x 4 s
    python benchmarks/step_cost.py --family whisper --size small --steps 5
    python benchmarks/step_cost.py --methods prompt lora finetune --batch-size 8 --output docs/step_cost.md
    python benchmarks/step_cost.py --backbone whisper-tiny.en --no-pad-to-window   # a released checkpoint
    python benchmarks/step_cost.py --backbone whisper-tiny.en --methods decoder_prompt finetune --encoder-cache

``--encoder-cache`` adds a row "<method> +encoder cache" for each method whose trained parameters never
reach the encoder (training/encoder_cache.py): its steps reuse the batch's kept encoder output, as every
epoch after the first does in training.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import ctypes
import multiprocessing
import statistics
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import torch

from speechprompt.backbones import build_backbone, load_backbone
from speechprompt.training.encoder_cache import EncoderOutputCache, why_not_cacheable
from speechprompt.tuning import METHODS, build_tuned_model
from speechprompt.tuning.registry import TRAINED_METHODS


def make_batch(args: argparse.Namespace, vocab_size: int, device: str) -> SimpleNamespace:
    """batch_size utterances of 0.75..1 x seconds of noise, targets of target_len tokens + EOS."""
    generator = torch.Generator().manual_seed(0)
    longest = int(args.seconds * 16000)
    lengths = [int(longest * (1 - 0.25 * i / max(1, args.batch_size - 1))) for i in range(args.batch_size)]
    waves = torch.randn(args.batch_size, longest, generator=generator) * 0.1
    for row, n in enumerate(lengths):
        waves[row, n:] = 0.0
    targets = torch.randint(4, vocab_size, (args.batch_size, args.target_len + 1), generator=generator)
    targets[:, -1] = args.eos_id
    return SimpleNamespace(
        utt_ids=[f"utt{i}" for i in range(args.batch_size)],
        waveforms=waves.to(device),
        wave_lengths=torch.tensor(lengths, device=device),
        targets=targets.to(device),
        task_ids=torch.zeros(args.batch_size, dtype=torch.long, device=device),
    )


CACHED = " +encoder cache"  # suffix of a method's row whose steps reuse the kept encoder output


def build(method: str, args: argparse.Namespace):
    """The same random backbone (seeded) wrapped with ``method``'s default config, and its optimiser.

    ``method + CACHED``: the model keeps encoder outputs (filled by the first step on a batch)."""
    cached = method.endswith(CACHED)
    method = method.removesuffix(CACHED)
    torch.manual_seed(0)
    if args.backbone:
        backbone = load_backbone(args.backbone)
        if args.pad_to_window is not None:
            backbone.pad_to_window = args.pad_to_window
    else:
        backbone = build_backbone(args.family, args.size, vocab_size=args.vocab_size)
    model = build_tuned_model(backbone, method, dict(args.method_options)).to(args.device).train()
    model.encoder_cache = EncoderOutputCache() if cached else None
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    return model, optimiser


def train_step(model, optimiser, batch, args: argparse.Namespace) -> float:
    """One forward/backward/AdamW step; returns its wall time in seconds."""
    start = time.perf_counter()
    optimiser.zero_grad(set_to_none=True)
    with torch.autocast(args.device.split(":")[0], dtype=torch.bfloat16, enabled=args.bf16):
        loss = model(batch).loss
    loss.backward()
    optimiser.step()
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


class HeapPeak:
    """Peak bytes in use on the C heap (glibc mallinfo2: small blocks + mmapped blocks), sampled by a
    thread while the block runs. Unlike RSS it drops when tensors are freed, so the peak of a step is
    its own; torch's CPU allocator allocates through malloc, so every CPU tensor is counted."""

    def __init__(self, interval: float = 2e-4) -> None:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        self._mallinfo, self.interval = libc.mallinfo2, interval
        self.peak = self.baseline = 0
        self._stop = threading.Event()

    def in_use(self) -> int:
        info = self._mallinfo()
        return info.uordblks + info.hblkhd

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.in_use())
            time.sleep(self.interval)

    def __enter__(self) -> HeapPeak:
        self.baseline = self.peak = self.in_use()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.in_use())


def measure_memory(method: str, args: argparse.Namespace) -> dict[str, float]:
    """Runs in its own process: peak training memory above the loaded model, artifact size, counts."""
    torch.set_num_threads(args.threads)
    model, optimiser = build(method, args)
    batch = make_batch(args, args.vocab_size, args.device)
    cuda = args.device.startswith("cuda")
    with torch.no_grad():  # load kernels and libraries first
        model(batch)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        allocated_before = torch.cuda.memory_allocated()
        for _ in range(2):  # the second step holds the optimiser state from the first
            train_step(model, optimiser, batch, args)
        peak = torch.cuda.max_memory_allocated() - allocated_before
    else:
        with HeapPeak() as heap:
            for _ in range(2):
                train_step(model, optimiser, batch, args)
        peak = heap.peak - heap.baseline
    with tempfile.TemporaryDirectory() as directory:
        model.save_artifact(directory)
        artifact = sum(f.stat().st_size for f in Path(directory).rglob("*") if f.is_file())
    report = model.parameter_report()
    return {"trainable": report.trainable, "share": report.share, "artifact": artifact, "memory": max(peak, 0)}


def measure_times(args: argparse.Namespace) -> dict[str, float]:
    """Median step time per method, the methods interleaved round by round so that load on the
    machine drifting over time affects them all alike."""
    torch.set_num_threads(args.threads)
    batch = make_batch(args, args.vocab_size, args.device)
    runs = {method: build(method, args) for method in args.methods}
    times: dict[str, list[float]] = {method: [] for method in args.methods}
    for model, optimiser in runs.values():  # warm-up: lazy allocations, optimiser state
        train_step(model, optimiser, batch, args)
    for _ in range(args.steps):
        for method, (model, optimiser) in runs.items():
            times[method].append(train_step(model, optimiser, batch, args))
    return {method: statistics.median(values) for method, values in times.items()}


def cacheable(method: str, args: argparse.Namespace) -> bool:
    model, _ = build(method, args)
    return why_not_cacheable(model, make_batch(args, args.vocab_size, args.device), freeze_encoder_steps=0) is None


def markdown(results: dict[str, dict[str, float]], args: argparse.Namespace) -> str:
    ref = results.get("finetune")
    ratio = lambda key, value: f" ({value / ref[key]:.3g}x)" if ref and ref[key] else ""  # noqa: E731
    name = f"{args.backbone} ({args.encoder_input})" if args.backbone else f"{args.family} {args.size}"
    lines = [
        f"Backbone {name}, batch {args.batch_size} x {args.seconds:g} s, "
        f"{args.target_len} target tokens, {args.device}{' bf16' if args.bf16 else ''}, "
        f"{args.threads} thread(s), median of {args.steps} steps; ratios to full fine-tuning.",
        "",
        "| method | trainable params | % of backbone | artifact bytes | step time (s) | peak memory (MiB) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for method, r in results.items():
        lines.append(
            f"| {method} | {r['trainable']:,}{ratio('trainable', r['trainable'])} | {100 * r['share']:.3f} | "
            f"{r['artifact']:,}{ratio('artifact', r['artifact'])} | {r['step']:.3f}{ratio('step', r['step'])} | "
            f"{r['memory'] / 2**20:.1f}{ratio('memory', r['memory'])} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", help="a backbone folder or fetched name (whisper-tiny.en) instead of a random "
                                           "--family/--size; a released checkpoint trains with its own tokenizer")
    parser.add_argument("--pad-to-window", action=argparse.BooleanOptionalAction, default=None,
                        help="Whisper: encode the 30 s window or the true length (default: the backbone's)")
    parser.add_argument("--family", default="wav2vec2", help="backbone family (wav2vec2, hubert, wavlm, whisper)")
    parser.add_argument("--size", default="small", help="backbone size (tiny, small, base)")
    parser.add_argument("--methods", nargs="+", default=list(TRAINED_METHODS), choices=list(METHODS))
    parser.add_argument("--vocab-size", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=4.0, help="longest utterance of the batch")
    parser.add_argument("--target-len", type=int, default=30)
    parser.add_argument("--steps", type=int, default=5, help="timed steps (median reported)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads per run")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (parameters stay float32)")
    parser.add_argument("--encoder-cache", action="store_true",
                        help="add a row with the encoder output kept, for methods that leave the encoder untouched")
    parser.add_argument("--output", type=Path, help="also write the table to this file")
    args = parser.parse_args()
    args.eos_id, args.method_options, args.encoder_input = 2, {}, ""
    if args.backbone:  # the checkpoint's own ids and vocabulary (no resize), as adaptation runs it
        from speechprompt.backbones.fetch import resolve_backbone
        from speechprompt.data.text import load_tokenizer
        from speechprompt.data.whisper_tokenizer import is_checkpoint_tokenizer_dir

        args.backbone = str(resolve_backbone(args.backbone))
        backbone = load_backbone(args.backbone)
        window = backbone.pad_to_window if args.pad_to_window is None else args.pad_to_window
        args.encoder_input = "30 s window" if window else "true length"
        args.vocab_size = backbone.vocab_size
        if is_checkpoint_tokenizer_dir(args.backbone):
            tokenizer = load_tokenizer(args.backbone, "en" if getattr(backbone.model.generation_config,
                                                                      "is_multilingual", False) else None)
            args.method_options, args.eos_id, args.vocab_size = tokenizer.method_options(), tokenizer.eos_id, tokenizer.eos_id
        del backbone

    if args.encoder_cache:
        args.methods = [*args.methods, *(m + CACHED for m in args.methods if cacheable(m, args))]
    results: dict[str, dict[str, float]] = {}
    context = multiprocessing.get_context("spawn")
    for method in args.methods:  # one fresh process per method: peak RSS is per process
        with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            results[method] = pool.submit(measure_memory, method, args).result()
    for method, seconds in measure_times(args).items():
        results[method]["step"] = seconds
    table = markdown(results, args)
    print(table)
    if args.output:
        args.output.write_text(table)


if __name__ == "__main__":
    main()
