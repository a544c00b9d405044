"""Pretrain a speech encoder-decoder on Wav2Seq pseudo subwords (or on real transcripts).

Trains every parameter of a backbone (built from scratch with backbone.family/size, or --init)
to generate each utterance's pseudo-subword sequence from 'speechprompt pseudo-label', and saves
it to --out as a backbone folder (load_backbone) with pseudo_language/, tokenizer/ and
pretrain.json beside it; the experiment (config.yaml, run.sh, logs, checkpoints) is <out>/exp.
Config keys as for 'speechprompt train' (see 'speechprompt train --list-options').

Examples:
  speechprompt pseudo-label --data data/train --out exp/pl --clusters 100 --bpe-vocab 1000
  speechprompt pretrain --data data/train --pseudo exp/pl --dev data/dev --out exp/w2s \\
      backbone.size=small optim.max_steps=20000 optim.lr=5e-4
  speechprompt pretrain ... --resume                       # continue a stopped run
  # second iteration: cluster layer 6 of the first model, pretrain again
  speechprompt pseudo-label --data data/train --out exp/pl2 --feature hidden --backbone exp/w2s --layer 6
  speechprompt pretrain --data data/train --pseudo exp/pl2 --out exp/w2s_it2 --init exp/w2s
  # on a released checkpoint's encoder: pseudo language of its layer 3, a fresh 2-layer decoder, the encoder
  # fixed for the first 300 steps
  speechprompt pseudo-label --data data/train --out exp/pl_tiny --feature hidden --backbone whisper-tiny.en --layer 3
  speechprompt pretrain --data data/train --pseudo exp/pl_tiny --dev data/dev --out exp/w2s_tiny \
      --encoder-from whisper-tiny.en backbone.overrides.decoder_layers=2 optim.freeze_encoder_steps=300
  # supervised pretraining on transcripts with a BPE tokenizer
  speechprompt pretrain --data data/train --targets text --tokenizer bpe --vocab 500 --out exp/sup
"""

from __future__ import annotations

import argparse
import sys

INTERMIXED_ARGS = True  # overrides may come before or after the flags


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("overrides", nargs="*", metavar="key.sub=value", help="config overrides")
    parser.add_argument("--data", required=True, help="training Kaldi data dir")
    parser.add_argument("--out", required=True, help="output backbone folder")
    parser.add_argument("--pseudo", help="pseudo-language folder of the training data (speechprompt pseudo-label)")
    parser.add_argument("--dev", help="dev Kaldi data dir: its loss is logged every experiment.eval_every steps; the "
                        "final step is kept unless experiment.best_metric=dev_loss is given")
    parser.add_argument("--dev-pseudo", help="pseudo labels of --dev (default: made with --pseudo's language)")
    parser.add_argument("--init", help="start from this backbone folder (or fetched name) instead of random weights")
    parser.add_argument("--encoder-from", metavar="NAME|DIR",
                        help="the encoder of this released Whisper checkpoint (fetched name or folder), its log-mel "
                        "front end, and a --decoder for the pseudo vocabulary; optim.freeze_encoder_steps=N keeps the "
                        "encoder fixed for the first N steps (-1: throughout)")
    parser.add_argument("--decoder", choices=["fresh", "checkpoint"], default="fresh",
                        help="with --encoder-from: a random decoder (default; its shape from backbone.overrides, else "
                        "the checkpoint's), or the checkpoint's decoder with a new embedding and output layer")
    parser.add_argument("--targets", choices=["pseudo", "text"], default="pseudo", help="what the decoder generates")
    parser.add_argument("--tokenizer", choices=["char", "bpe", "unigram"], default="bpe",
                        help="--targets text: tokenizer trained on the transcripts (or data.tokenizer=DIR)")
    parser.add_argument("--vocab", type=int, default=1000, help="--targets text: subword vocabulary size")
    parser.add_argument("--config", help="YAML config file")
    parser.add_argument("--resume", action="store_true", help="continue from the newest usable checkpoint")
    parser.add_argument("--allow-changes", action="store_true",
                        help="with --resume: continue with options that differ from the run's config.yaml")


def run(args: argparse.Namespace) -> int:
    import contextlib
    import os

    from speechprompt.config import ConfigError, load_config
    from speechprompt.experiment_dir import ExperimentLock
    from speechprompt.pretrain.pretraining import pretrain
    from speechprompt.training.cli import user_errors

    overrides = [f"experiment.dir={args.out}/exp", "method.name=finetune", "experiment.best_metric=last",
                 *args.overrides]
    argv = sys.argv[2:] if sys.argv[1:2] == ["pretrain"] else _argv(args)
    argv = [a for a in argv if a != "--allow-changes"]
    try:
        cfg = load_config(args.config, overrides)
        if args.dev is None and cfg.experiment.eval_every:
            cfg.experiment.eval_every = 0  # nothing to evaluate on: the last checkpoint is the result
        # one run at a time in the experiment folder (rank 0 holds the lock for all)
        main_rank = int(os.environ.get("RANK", "0")) == 0
        with ExperimentLock(cfg.experiment.dir) if main_rank else contextlib.nullcontext():
            summary = pretrain(cfg, args.data, args.out, pseudo_dir=args.pseudo, dev_dir=args.dev,
                               dev_pseudo_dir=args.dev_pseudo, init_backbone=args.init, encoder_from=args.encoder_from,
                               decoder_init=args.decoder, targets=args.targets,
                               tokenizer_kind=args.tokenizer, vocab_size=args.vocab, resume=args.resume, argv=argv,
                               allow_changes=args.allow_changes)
    except (*user_errors(), ConfigError, ValueError) as err:
        print(f"speechprompt pretrain: {err}", file=sys.stderr)
        return 2
    return 130 if summary["stopped"].startswith("signal") else 0


def _argv(args) -> list[str]:
    out = ["--data", args.data, "--out", args.out, "--targets", args.targets]
    for flag, value in (("--pseudo", args.pseudo), ("--dev", args.dev), ("--dev-pseudo", args.dev_pseudo),
                        ("--init", args.init), ("--encoder-from", args.encoder_from), ("--config", args.config)):
        if value:
            out += [flag, value]
    if args.encoder_from:
        out += ["--decoder", args.decoder]
    if args.targets == "text":
        out += ["--tokenizer", args.tokenizer, "--vocab", str(args.vocab)]
    return out + list(args.overrides)
