"""Check, before any adaptation stage, that a recipe's backbone folder exists and loads.

Recipes that adapt a backbone built by another recipe (egs/asterisk/asr and egs/fillets/asr use the
Wav2Seq backbone of egs/synth/asr) call this first, so a missing backbone is one clear message
saying which command builds it, instead of a traceback in the middle of stage 3.

Examples:
    python -m recipes.check_backbone ../../synth/asr/exp/scratch/wav2seq \\
        --made-by "cd egs/synth/asr && ./run_scratch.sh --stop-stage 2"
    python -m recipes.check_backbone /models/my_backbone
    python -m recipes.check_backbone --kind whisper-base      # prints checkpoint (or scratch)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from recipes.corpus_files import RecipeError

BACKBONE_FILES = ("speechprompt_backbone.json", "config.json")


def check_backbone(path: str | Path, made_by: str = "", load: bool = True) -> str:
    """A one-line description of the backbone at ``path``; :class:`RecipeError` saying how to get one."""
    path = Path(path)
    how = (f"build it with: {made_by}" if made_by else "train one with 'speechprompt pretrain'")
    how += ", or pass another folder with --backbone DIR"
    if not path.is_dir():
        raise RecipeError(f"backbone folder {path} does not exist — {how}")
    if not any((path / name).is_file() for name in BACKBONE_FILES):
        raise RecipeError(f"{path} is not a backbone folder (no {' or '.join(BACKBONE_FILES)}; was its build "
                          f"interrupted?) — {how}")
    if not load:
        return f"backbone {path}"
    from speechprompt.backbones import load_backbone

    try:
        backbone = load_backbone(path)
    except Exception as err:  # noqa: BLE001 — whatever the cause (corrupt safetensors, bad JSON), the fix is the same
        raise RecipeError(f"backbone {path} does not load ({err}) — {how}") from err
    return (f"backbone {path.resolve()}: {backbone.family}, {backbone.num_parameters():,} parameters, "
            f"vocabulary {backbone.vocab_size}")


def backbone_kind(spec: str) -> str:
    """"checkpoint" for a released checkpoint (a fetchable name or hub alias, or a folder holding its own
    tokenizer), else "scratch" (a backbone made here: the recipe trains a tokenizer of its targets)."""
    from speechprompt.backbones.fetch import HUB_ALIASES, PINNED
    from speechprompt.data.whisper_tokenizer import is_checkpoint_tokenizer_dir

    if spec in PINNED or spec in HUB_ALIASES:
        return "checkpoint"
    return "checkpoint" if Path(spec).is_dir() and is_checkpoint_tokenizer_dir(spec) else "scratch"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("backbone", type=Path, help="backbone folder (load_backbone)")
    parser.add_argument("--made-by", default="", help="the command that builds this backbone (named in the error)")
    parser.add_argument("--no-load", action="store_true", help="only check the files, do not load the weights")
    parser.add_argument("--kind", action="store_true",
                        help="only print 'checkpoint' (a released checkpoint, by name or folder) or 'scratch'")
    args = parser.parse_args(argv)
    if args.kind:
        print(backbone_kind(str(args.backbone)))
        return 0
    try:
        print(check_backbone(args.backbone, args.made_by, load=not args.no_load))
    except RecipeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
