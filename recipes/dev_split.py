"""Carve a small dev set out of a data dir that has none, deterministically.

Whole transcript groups (every utterance with the same normalised text) go to the dev set, in a
seeded random order, until it holds ``--seconds`` of audio; everything else goes to the rest.
So no sentence is both in dev and in the rest, and the same seed always gives the same split.
``manifest.jsonl`` lines follow their utterances when the source has one.

Used by recipes whose corpus has no dev set (asterisk: dev = part of test, test = the remainder).

Examples:
    python -m recipes.dev_split corpora/asterisk_en/data/test --seconds 90 \\
        --dev exp/data/dev --rest exp/data/test
    python -m recipes.dev_split data/train --seconds 300 --dev data/dev --rest data/train_nodev --seed 3
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import defaultdict
from pathlib import Path

from recipes.corpus_files import RecipeError
from speechprompt.data.kaldi_dir import DataDir
from speechprompt.data.text import normalize_text


def choose_dev(data: DataDir, seconds: float, seed: int = 0) -> tuple[list[str], list[str]]:
    """``(dev utt ids, rest utt ids)``: transcript groups to dev until ``seconds`` are reached."""
    if seconds <= 0:
        raise RecipeError(f"dev seconds must be positive, got {seconds}")
    durations = data.durations()
    groups: dict[str, list[str]] = defaultdict(list)
    for utt in data.utt_ids:
        groups[normalize_text(data.text.get(utt, "")) or f"<no text {utt}>"].append(utt)
    keys = sorted(groups)
    random.Random(f"{seed}:dev_split").shuffle(keys)
    dev: list[str] = []
    total = 0.0
    for key in keys:
        if total >= seconds:
            break
        dev += groups[key]
        total += sum(durations[u] for u in groups[key])
    chosen = set(dev)
    rest = [u for u in data.utt_ids if u not in chosen]
    where = data.path or "the data dir"
    if not rest:
        raise RecipeError(f"{where}: holds {total:.0f} s in {len(keys)} distinct transcripts — not enough to keep "
                          f"anything after a {seconds:.0f} s dev set; ask for fewer --seconds")
    return sorted(dev), rest


def _write_side(data: DataDir, utt_ids: list[str], out: Path, manifest: dict[str, str]) -> DataDir:
    part = data.select(utt_ids)
    part.write(out)
    if manifest:
        (out / "manifest.jsonl").write_text("".join(manifest[u] for u in utt_ids if u in manifest), encoding="utf-8")
    return part


def split_dev(source: str | Path, dev_out: str | Path, rest_out: str | Path, seconds: float,
              seed: int = 0) -> tuple[DataDir, DataDir]:
    """Write ``dev_out`` (about ``seconds`` of ``source``) and ``rest_out`` (the remainder)."""
    source = Path(source)
    data = DataDir.read(source)
    if not data.text:
        raise RecipeError(f"{source}: no 'text' file — a dev set for ASR needs transcripts")
    manifest: dict[str, str] = {}
    if (source / "manifest.jsonl").is_file():
        for line in source.joinpath("manifest.jsonl").read_text(encoding="utf-8").splitlines(keepends=True):
            if line.strip():
                manifest[json.loads(line)["utt_id"]] = line
    dev_ids, rest_ids = choose_dev(data, seconds, seed)
    dev = _write_side(data, dev_ids, Path(dev_out), manifest)
    rest = _write_side(data, rest_ids, Path(rest_out), manifest)
    return dev, rest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="Kaldi data dir to split (with text)")
    parser.add_argument("--seconds", type=float, required=True, help="audio budget of the dev set, in seconds")
    parser.add_argument("--dev", type=Path, required=True, help="output: the dev data dir")
    parser.add_argument("--rest", type=Path, required=True, help="output: the remainder")
    parser.add_argument("--seed", type=int, default=0, help="seed of the transcript-group order (default 0)")
    args = parser.parse_args(argv)
    try:
        dev, rest = split_dev(args.source, args.dev, args.rest, args.seconds, args.seed)
    except (RecipeError, ValueError) as err:
        print(f"dev_split: {err}", file=sys.stderr)
        return 1
    for name, part, out in (("dev", dev, args.dev), ("rest", rest, args.rest)):
        seconds = sum(part.durations().values())
        print(f"dev_split: {name}: {len(part.utt_ids)} utterances, {seconds:.1f} s -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
