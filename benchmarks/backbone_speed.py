"""Training throughput of candidate CPU backbone geometries (wav2vec2 encoder + BART decoder).

For each geometry: parameters, then audio seconds trained per wall-clock second (forward, backward
and AdamW update of every parameter, as in pretraining and full fine-tuning) in float32 and under
bf16 autocast. Candidates and precisions are interleaved round by round so that load on a shared
machine drifting over time affects them all alike; the median step time is reported. Batches are
``--batch-seconds`` of noise in utterances of 0.6-1 x ``--seconds`` (real, unpadded seconds are
counted) with ``--tokens-per-second`` target tokens per audio second. Prints a markdown table.

    python benchmarks/backbone_speed.py                          # every candidate, fp32 and bf16
    python benchmarks/backbone_speed.py --candidates c7x256_h256_l6_d3 c4x128_h256_l4_d2 --steps 3 --threads 2
    python benchmarks/backbone_speed.py --precisions fp32 --output /tmp/speed.md
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from speechprompt.backbones.wav2vec2_seq2seq import Wav2Vec2Seq2Seq
from speechprompt.tuning import build_tuned_model

# front-ends: wav2vec2's 7 layers (channels of the first `small` size, and halved), or 4 wider-stride layers
SEVEN_CONV = dict(enc_conv_dim=(64, 128, 128, 256, 256, 256, 256), enc_conv_kernel=(10, 3, 3, 3, 3, 2, 2),
                  enc_conv_stride=(5, 2, 2, 2, 2, 2, 2))
LIGHT_CONV = dict(SEVEN_CONV, enc_conv_dim=(32, 64, 64, 128, 128, 128, 128))
FOUR_CONV = dict(enc_conv_dim=(32, 64, 128, 128), enc_conv_kernel=(10, 8, 8, 4), enc_conv_stride=(5, 4, 4, 4))


def _geometry(hidden: int, layers: int, ffn: int, dec_layers: int, heads: int = 4, **conv: Any) -> dict[str, Any]:
    """Overrides of the `small` size (enc_* encoder, dec_* decoder config keys)."""
    return dict(conv, enc_hidden_size=hidden, enc_num_hidden_layers=layers, enc_intermediate_size=ffn,
                enc_num_attention_heads=heads, dec_d_model=hidden, dec_decoder_layers=dec_layers,
                dec_decoder_ffn_dim=ffn, dec_decoder_attention_heads=heads)


# name -> overrides of the library's `small` size (every geometry key given, so the names stay true
# whatever `small` is); c7x256_h256_l6_d3 is the first `small`, c4x128_h256_l4_d2 the current one
CANDIDATES: dict[str, dict[str, Any]] = {
    "c7x256_h256_l6_d3": _geometry(256, 6, 1024, 3, **SEVEN_CONV),
    "c32x128_h256_l6_d3": _geometry(256, 6, 1024, 3, **LIGHT_CONV),
    "c32x128_h256_l4_d2": _geometry(256, 4, 1024, 2, **LIGHT_CONV),
    "c32x128_h256_l6_d2_ffn512": _geometry(256, 6, 512, 2, **LIGHT_CONV),
    "c32x128_h192_l6_d3": _geometry(192, 6, 768, 3, **LIGHT_CONV),
    "c32x128_h192_l4_d2": _geometry(192, 4, 768, 2, **LIGHT_CONV),
    "c4x128_h256_l6_d3": _geometry(256, 6, 1024, 3, **FOUR_CONV),
    "c4x128_h256_l4_d2": _geometry(256, 4, 1024, 2, **FOUR_CONV),
}


def make_batch(args: argparse.Namespace, vocab_size: int) -> tuple[SimpleNamespace, float]:
    """Utterances of 0.6..1 x args.seconds filling args.batch_seconds (padded); returns (batch, real seconds)."""
    generator = torch.Generator().manual_seed(0)
    count = max(1, int(args.batch_seconds // args.seconds))
    longest = int(args.seconds * 16000)
    lengths = [int(longest * (1 - 0.4 * i / max(1, count - 1))) for i in range(count)]
    waves = torch.randn(count, longest, generator=generator) * 0.1
    for row, n in enumerate(lengths):
        waves[row, n:] = 0.0
    target_len = max(2, int(args.tokens_per_second * args.seconds))
    targets = torch.randint(4, vocab_size, (count, target_len + 1), generator=generator)
    targets[:, -1] = 2
    batch = SimpleNamespace(waveforms=waves, wave_lengths=torch.tensor(lengths), targets=targets,
                            task_ids=torch.zeros(count, dtype=torch.long))
    return batch, sum(lengths) / 16000


def build(name: str, args: argparse.Namespace):
    torch.manual_seed(0)
    backbone = Wav2Vec2Seq2Seq.build("small", args.vocab_size, **CANDIDATES[name])
    model = build_tuned_model(backbone, "finetune", {}).train()
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    return model, optimiser, backbone


def train_step(model, optimiser, batch, bf16: bool) -> float:
    start = time.perf_counter()
    optimiser.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss = model(batch).loss
    loss.backward()
    optimiser.step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--batch-seconds", type=float, default=60.0, help="padded audio seconds per batch")
    parser.add_argument("--seconds", type=float, default=5.0, help="longest utterance")
    parser.add_argument("--tokens-per-second", type=float, default=10.0, help="target tokens per audio second")
    parser.add_argument("--vocab-size", type=int, default=500)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per candidate and precision")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads")
    parser.add_argument("--output", type=Path, help="also write the table to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    runs = {name: build(name, args) for name in args.candidates}
    batch, real_seconds = make_batch(args, args.vocab_size)
    keys = [(name, precision) for name in args.candidates for precision in args.precisions]
    times: dict[tuple[str, str], list[float]] = {key: [] for key in keys}
    for name, precision in keys:  # warm-up: lazy allocations, optimiser state, oneDNN kernels
        model, optimiser, _ = runs[name]
        train_step(model, optimiser, batch, precision == "bf16")
    for _ in range(args.steps):
        for name, precision in keys:
            model, optimiser, _ = runs[name]
            times[(name, precision)].append(train_step(model, optimiser, batch, precision == "bf16"))

    lines = [f"Batch {len(batch.wave_lengths)} utterances, {real_seconds:.1f} s of audio "
             f"({args.batch_seconds:g} s padded), {batch.targets.shape[1]} target tokens each, "
             f"{args.threads} thread(s), median of {args.steps} steps; throughput = audio s / wall s "
             "(forward + backward + AdamW, every parameter trained).", "",
             "| geometry | params (M) | " + " | ".join(f"{p} step (s) | {p} audio s/s" for p in args.precisions) + " |",
             "|---|---:|" + "---:|---:|" * len(args.precisions)]
    for name in args.candidates:
        cells = []
        for precision in args.precisions:
            step = statistics.median(times[(name, precision)])
            cells += [f"{step:.2f}", f"{real_seconds / step:.1f}"]
        lines.append(f"| {name} | {runs[name][2].num_parameters() / 1e6:.2f} | " + " | ".join(cells) + " |")
    table = "\n".join(lines) + "\n"
    print(table)
    if args.output:
        args.output.write_text(table)


if __name__ == "__main__":
    main()
