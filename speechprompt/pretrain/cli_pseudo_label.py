"""Make a Wav2Seq pseudo language from untranscribed audio and label every utterance with it.

Frame features (Kaldi MFCC + deltas, or the hidden states of one encoder layer of an existing
backbone) are clustered with k-means; repeated units are merged; each cluster becomes one
character; SentencePiece BPE over those characters gives pseudo subwords. Writes to --out:
pseudo_text (Kaldi text: utt_id + pseudo subwords), kmeans.safetensors (+ .npy), bpe/,
pseudo_language.json, stats.json; prints the pseudo-language statistics.

Examples:
  # first iteration: MFCC, 100 clusters, 1000 pseudo subwords
  speechprompt pseudo-label --data data/train --out exp/pl_mfcc --clusters 100 --bpe-vocab 1000
  # label the dev set with the same pseudo language
  speechprompt pseudo-label --data data/dev --out exp/pl_mfcc/dev --language exp/pl_mfcc
  # second iteration: layer 6 of the backbone pretrained on the first
  speechprompt pseudo-label --data data/train --out exp/pl_it2 --feature hidden --backbone exp/w2s_it1 --layer 6
  # a released checkpoint's encoder (true length of each utterance, 50 frames/s); score it first with
  # python -m speechprompt.pretrain.label_quality
  speechprompt pseudo-label --data data/train --out exp/pl_tiny --feature hidden --backbone whisper-tiny.en --layer 3
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="Kaldi data dir with the audio to label")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--clusters", type=int, default=100, help="k-means clusters (default 100)")
    parser.add_argument("--bpe-vocab", type=int, default=1000, help="BPE vocabulary incl. 4 special ids (default 1000)")
    parser.add_argument("--feature", choices=["mfcc", "hidden"], default="mfcc", help="what to cluster (default mfcc)")
    parser.add_argument("--backbone", help="backbone folder or fetched checkpoint name (whisper-tiny.en) for --feature "
                        "hidden; with --language: default the backbone the language was made with")
    parser.add_argument("--layer", type=int, help="encoder layer for --feature hidden (1-based; 0 = feature encoder)")
    parser.add_argument("--language", help="apply this existing pseudo language instead of fitting one")
    parser.add_argument("--max-frames", type=int, default=200_000, help="frames sampled to fit k-means")
    parser.add_argument("--memory-mb", type=int, default=2048,
                        help="hold features in memory up to this size, else compute them twice (default 2048)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="device for --feature hidden")
    parser.add_argument("--progress", action="store_true", help="show a progress bar")


def run(args: argparse.Namespace) -> int:
    from speechprompt.pretrain.labelling import format_stats, pseudo_label

    try:
        stats = pseudo_label(
            args.data, args.out, clusters=args.clusters, bpe_vocab=args.bpe_vocab, feature=args.feature,
            backbone_dir=args.backbone, layer=args.layer, language_dir=args.language, max_frames=args.max_frames,
            seed=args.seed, device=args.device, memory_mb=args.memory_mb, progress=args.progress,
        )
    except (ValueError, FileNotFoundError) as err:
        print(f"speechprompt pseudo-label: {err}", file=sys.stderr)
        return 2
    print(format_stats(stats))
    print(f"wrote {args.out}/pseudo_text")
    return 0
