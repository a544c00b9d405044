"""`speechprompt <verb>`: one entry point, one module per verb.

Each verb lives in its own module, which defines ``add_arguments(parser)`` and
``run(args) -> int``. Modules are imported only when their verb is used, so
``speechprompt --help`` stays fast (no torch import).
"""

from __future__ import annotations

import argparse
import importlib
import sys

# verb -> (module, one-line summary). Order is the order of a typical experiment.
COMMANDS: dict[str, tuple[str, str]] = {
    "prepare": ("recipes.prepare", "build the embedded offline corpora as Kaldi data dirs"),
    "data": ("speechprompt.data.cli", "validate, fix, subset, combine and describe Kaldi data dirs"),
    "backbone": ("speechprompt.backbones.cli", "fetch released Whisper checkpoints, import CTranslate2 folders"),
    "pseudo-label": ("speechprompt.pretrain.cli_pseudo_label", "Wav2Seq pseudo language: features -> k-means -> BPE"),
    "pretrain": ("speechprompt.pretrain.cli_pretrain", "pretrain an encoder-decoder on pseudo (or real) targets"),
    "train": ("speechprompt.training.cli", "adapt a backbone with a tuning method (prompt, lora, ...)"),
    "decode": ("speechprompt.decoding.cli_decode", "greedy / beam decoding of a data dir with a task artifact"),
    "score": ("speechprompt.score.cli", "WER/CER or slot-filling F1 of hypotheses against references"),
    "transcribe": ("speechprompt.decoding.cli_transcribe", "transcribe audio files with one or many task prompts"),
    "report": ("speechprompt.report", "collect an experiment's results into RESULTS.md"),
}


class CommandUnavailable(RuntimeError):
    pass


def _load(verb: str):
    module_name, _ = COMMANDS[verb]
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name and module_name.startswith(err.name):
            raise CommandUnavailable(f"'speechprompt {verb}' is not available in this installation ({err})") from err
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="speechprompt",
        description="Prompt tuning for self-supervised speech encoder-decoders.",
        epilog="Run 'speechprompt <verb> --help' for the options and examples of each verb.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"speechprompt {_version()}")
    sub = parser.add_subparsers(dest="verb", metavar="<verb>")
    for verb, (_, summary) in COMMANDS.items():
        sub.add_parser(verb, help=summary, add_help=False)
    return parser


def _version() -> str:
    from speechprompt import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        build_parser().parse_args(argv or ["--help"])
        return 2
    verb, rest = argv[0], argv[1:]
    try:
        module = _load(verb)
    except CommandUnavailable as err:
        print(f"speechprompt: {err}", file=sys.stderr)
        return 2
    doc = (module.__doc__ or COMMANDS[verb][1]).strip()
    parser = argparse.ArgumentParser(
        prog=f"speechprompt {verb}",
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    module.add_arguments(parser)
    # verbs taking `key=value` overrides as positionals let them follow flags too (`--resume k=v`)
    args = parser.parse_intermixed_args(rest) if getattr(module, "INTERMIXED_ARGS", False) else parser.parse_args(rest)
    return int(module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
