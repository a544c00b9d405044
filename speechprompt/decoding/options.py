"""The decoding options ``speechprompt decode`` and ``speechprompt transcribe`` share: added to a parser,
checked, and turned into the :class:`~speechprompt.decoding.transcriber.Transcriber` they describe."""

from __future__ import annotations

import argparse

from speechprompt.backbones.precision import PRECISIONS
from speechprompt.decoding.search import DEFAULT_MAX_REPEATS
from speechprompt.decoding.transcriber import Transcriber, load_backbone


def add_decoding_arguments(parser) -> None:
    """The decoding options shared by ``speechprompt decode`` and ``speechprompt transcribe``."""
    parser.add_argument("--beam", type=int, default=1, help="beam size; 1 = greedy (default)")
    parser.add_argument("--length-penalty", type=float, default=1.0,
                        help="beam scores are divided by length ** this (default 1.0)")
    parser.add_argument("--ctc-weight", type=float, default=0.0,
                        help="weight of the CTC head in joint CTC/attention decoding (needs a CTC head): "
                             "0 = attention only (default), 1 = CTC best path only")
    parser.add_argument("--max-len", type=int, default=200, help="most tokens per utterance (default 200)")
    parser.add_argument("--max-len-ratio", type=float, default=None,
                        help="most tokens per encoder frame of the utterance (default: the backbone's, 1.0; "
                             "released Whisper checkpoints 0.3, i.e. 15 tokens per second of audio)")
    parser.add_argument("--max-repeats", type=int, default=DEFAULT_MAX_REPEATS,
                        help="a hypothesis ending in a short n-gram repeated more often than this, or a long phrase "
                             f"twice, ends there with one copy kept (default {DEFAULT_MAX_REPEATS}; 0 = off)")
    parser.add_argument("--pad-to-window", action=argparse.BooleanOptionalAction, default=None,
                        help="Whisper: run the encoder on audio zero-padded to the checkpoint's 30 s window, or on "
                             "the true length (--no-pad-to-window); default: as the task artifact was trained, else "
                             "the backbone's default (released checkpoints: the window)")
    parser.add_argument("--language", help="language token of a released multilingual checkpoint (e.g. cs); "
                                           "replaces the task artifact's own")
    parser.add_argument("--batch-seconds", type=float, default=60.0, help="padded audio seconds per batch (default 60)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--precision", choices=PRECISIONS, default=None,
                        help="fp32 (default); bf16: bfloat16 autocast; int8: the backbone's Linear layers dynamically "
                             "quantised (CPU); int8-decoder: all but the encoder's, for prompts that live in the "
                             "encoder. Task tables (prompts, LoRA, adapters) stay float32 in every case")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default=None,
                        help="older spelling of --precision: float32 = fp32, bfloat16 = bf16")


def precision_of(args) -> str:
    """--precision, else the older --dtype, else fp32; the two may not disagree."""
    from speechprompt.backbones.precision import DTYPE_PRECISION

    old = DTYPE_PRECISION[args.dtype] if getattr(args, "dtype", None) else None
    if args.precision and old and args.precision != old:
        raise ValueError(f"--precision {args.precision} and --dtype {args.dtype} disagree; give --precision only")
    return args.precision or old or "fp32"


def transcriber_from_args(args) -> Transcriber:
    """A Transcriber on ``args.backbone`` with the options of :func:`add_decoding_arguments`."""
    return Transcriber(load_backbone(args.backbone), device=args.device, precision=precision_of(args), beam=args.beam,
                       length_penalty=args.length_penalty, max_len=args.max_len, max_len_ratio=args.max_len_ratio,
                       batch_seconds=args.batch_seconds, ctc_weight=args.ctc_weight, max_repeats=args.max_repeats,
                       pad_to_window=args.pad_to_window)


def check_decoding_options(args: argparse.Namespace) -> None:
    """One-line errors for decoding options no search can use (shared with transcribe)."""
    import math

    from speechprompt.config import ConfigError, check_device

    if args.beam < 1:
        raise ConfigError(f"--beam {args.beam}: must be 1 (greedy) or more")
    if args.max_len < 1:
        raise ConfigError(f"--max-len {args.max_len}: must be at least 1 token")
    for option, value, low in (("--max-len-ratio", args.max_len_ratio, 0.0), ("--batch-seconds", args.batch_seconds, 0.0)):
        if value is not None and (not math.isfinite(value) or value <= low):
            raise ConfigError(f"{option} {value}: must be a finite number above {low:g}")
    if not math.isfinite(args.length_penalty):
        raise ConfigError(f"--length-penalty {args.length_penalty}: must be a finite number (e.g. 1.0)")
    if args.max_repeats < 0:
        raise ConfigError(f"--max-repeats {args.max_repeats}: must be 0 (no loop guard) or more")
    if not (0.0 <= args.ctc_weight <= 1.0):  # also refuses nan
        raise ConfigError(f"--ctc-weight {args.ctc_weight}: must be in [0, 1]")
    check_device(args.device)
