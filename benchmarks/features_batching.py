"""Speed of the data path: loading + length bucketing + collate, and Kaldi fbank extraction.

Generates ``--hours`` of 16 kHz audio (tones + noise, 1-15 s utterances, WAV or FLAC) as a Kaldi
data dir in a temporary folder, then times

  1. reading the data dir and its durations (audio headers),
  2. one epoch of a DataLoader over SpeechDataset with LengthBucketSampler and collate,
  3. 80-bin fbank of every batch (compute_features) + global CMVN + SpecAugment,

and prints seconds and real-time factor (processing seconds / audio seconds; lower is faster).

    python benchmarks/features_batching.py                  # 1 hour, WAV
    python benchmarks/features_batching.py --hours 0.2 --format flac --workers 2
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from speechprompt.data.audio import write_audio
from speechprompt.data.dataset import LengthBucketSampler, SpeechDataset, collate
from speechprompt.data.features import FeatureConfig, GlobalCMVN, SpecAugment, compute_features
from speechprompt.data.kaldi_dir import DataDir


def generate(root: Path, hours: float, fmt: str, seed: int = 0) -> tuple[Path, float]:
    """Write utterances until ``hours`` of audio exist; returns (data dir, seconds of audio)."""
    rng = np.random.default_rng(seed)
    wav_dir, data = root / "audio", root / "data"
    wav_dir.mkdir(parents=True)
    total, rows = 0.0, []
    while total < hours * 3600:
        seconds = float(rng.uniform(1.0, 15.0))
        t = np.arange(int(seconds * 16000)) / 16000
        freqs = rng.uniform(100, 3000, 3)
        x = sum(0.1 * np.sin(2 * np.pi * f * t) for f in freqs) + rng.normal(0, 0.02, t.size)
        utt = f"spk{len(rows) % 20:02d}-utt{len(rows):05d}"
        path = write_audio(wav_dir / f"{utt}.{fmt}", x.astype(np.float32), 16000)
        rows.append((utt, path))
        total += t.size / 16000
    rows.sort()
    DataDir(wav_scp={u: str(p) for u, p in rows}, text={u: "a b c" for u, _ in rows},
            utt2spk={u: u.split("-")[0] for u, _ in rows}).write(data)
    return data, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--format", choices=["wav", "flac"], default="wav")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="padded audio per batch")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        data_dir, audio_s = generate(Path(tmp), args.hours, args.format)
        print(f"generated {audio_s / 3600:.2f} h in {time.perf_counter() - start:.1f} s ({args.format})")

        start = time.perf_counter()
        dataset = SpeechDataset(data_dir)
        read_s = time.perf_counter() - start

        sampler = LengthBucketSampler(dataset.durations, max_seconds=args.max_seconds, shuffle=True, seed=0)
        loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate,
                                             num_workers=args.workers)
        start = time.perf_counter()
        batches = list(loader)
        load_s = time.perf_counter() - start
        padded = sum(b.waveforms.numel() for b in batches) / 16000
        real = sum(int(b.wave_lengths.sum()) for b in batches) / 16000

        config = FeatureConfig("fbank", num_mel_bins=80)
        start = time.perf_counter()
        feats = [compute_features(b.waveforms, b.wave_lengths, config) for b in batches]
        fbank_s = time.perf_counter() - start
        cmvn = GlobalCMVN.from_frames([f[i, :n] for f, lens in feats for i, n in enumerate(lens.tolist())], config)
        augment = SpecAugment().train()
        start = time.perf_counter()
        for f, lens in feats:
            augment(cmvn(f, lens), lens)
        post_s = time.perf_counter() - start

    print(f"machine: {os.cpu_count()} CPU(s), torch threads {args.threads}, loader workers {args.workers}")
    print(f"audio: {audio_s / 3600:.3f} h in {len(dataset)} utterances, {len(batches)} batches, "
          f"padding overhead {100 * (padded / real - 1):.1f} %")
    for name, seconds in [("read data dir + durations", read_s), ("load + bucket + collate", load_s),
                          ("fbank 80 (per-utterance kaldi)", fbank_s), ("CMVN + SpecAugment", post_s)]:
        print(f"{name:32s} {seconds:8.2f} s   RTF {seconds / audio_s:.5f}   ({audio_s / max(seconds, 1e-9):,.0f}x real time)")


if __name__ == "__main__":
    main()
