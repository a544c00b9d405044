"""LibriSpeech evaluation sets and the Libri-light limited-resource training sets, from local copies.

Nothing is downloaded: point the recipe at copies you already have.

  --librispeech DIR   holds ``LibriSpeech/<set>/`` (or is ``LibriSpeech/`` itself), with <set> one of
                      dev-clean, dev-other, test-clean, test-other
  --librilight DIR    holds ``librispeech_finetuning/`` (or is it), with ``1h/{0..5}/{clean,other}`` and
                      ``9h/{clean,other}``

Every leaf folder has the LibriSpeech layout ``<spk>/<chapter>/<spk>-<chapter>-<utt>.flac`` plus one
``<spk>-<chapter>.trans.txt`` per chapter (lines ``<spk>-<chapter>-<utt> TRANSCRIPT``).

Sets written to ``OUT/librispeech/data/<set>/`` (wav.scp pointing at the original 16 kHz FLAC files,
text normalised with ``normalize_text``, utt2spk with the LibriSpeech speaker, spk2utt, utt2dur,
manifest.jsonl with source file, transcript line, raw text and sha256):

  train_10min   Libri-light 1h/0 (clean + other)
  train_1h      all of 1h (the six 10-minute folds)
  train_10h     1h + 9h
  dev_clean, dev_other, test_clean, test_other

A malformed transcript line stops the build with ``file:line`` and what is wrong. FLAC files without
a transcript and transcripts without a FLAC file are skipped, counted, listed (first few) and
stored in ``OUT/librispeech/report.json``; ``--strict`` makes them errors. ``--quick`` keeps about
two minutes of each evaluation set (a seeded subset, for smoke runs); training sets stay whole.

Examples:
    python -m recipes.librispeech --librispeech /data/LibriSpeech --librilight /data/librispeech_finetuning
    python -m recipes.librispeech --librispeech /data --librilight /data --sets train_10min,dev_clean,test_clean
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections import Counter
from pathlib import Path

import soundfile

from recipes import corpus_files
from recipes.corpus_files import RecipeError, Utterance
from speechprompt.data.text import normalize_text

EVAL_SETS = {"dev_clean": "dev-clean", "dev_other": "dev-other", "test_clean": "test-clean", "test_other": "test-other"}
_FOLDS = [f"1h/{fold}/{part}" for fold in range(6) for part in ("clean", "other")]
TRAIN_SETS = {"train_10min": _FOLDS[:2], "train_1h": _FOLDS, "train_10h": _FOLDS + ["9h/clean", "9h/other"]}
ALL_SETS = (*TRAIN_SETS, *EVAL_SETS)
DEFAULT_SETS = "train_10min,train_1h,train_10h,dev_clean,test_clean"
QUICK_EVAL_SECONDS = 120
EXAMPLES_LISTED = 5
_UTT_ID = re.compile(r"^(\d+)-(\d+)-(\d+)$")


class LibriSpeechError(RecipeError):
    """A source tree that cannot be read; the message names the file (and line) and what to fix."""


def find_root(path: str | Path, marker: str, what: str, expected: str) -> Path:
    """``path`` itself or ``path/marker`` — whichever holds the layout (``expected`` is a child of it)."""
    path = Path(path)
    for candidate in (path, path / marker):
        if (candidate / expected).is_dir():
            return candidate
    raise LibriSpeechError(f"{what} {path}: no {expected}/ in it nor in {path / marker} — pass the folder that holds "
                           f"{marker}/ (or {marker}/ itself)")


def read_transcript(path: Path, speaker: str, chapter: str) -> dict[str, tuple[str, int]]:
    """``utt_id -> (raw text, line number)`` of one ``<spk>-<chapter>.trans.txt``."""
    table: dict[str, tuple[str, int]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        utt_id, _, text = line.strip().partition(" ")
        match = _UTT_ID.match(utt_id)
        if not match:
            raise LibriSpeechError(f"{path}:{number}: '{utt_id}' is not an utterance id <spk>-<chapter>-<utt> "
                                   "(digits) followed by a space and the transcript — fix or delete the line")
        if match.group(1, 2) != (speaker, chapter):
            raise LibriSpeechError(f"{path}:{number}: utterance {utt_id} belongs to speaker {match.group(1)} chapter "
                                   f"{match.group(2)}, not to this file's {speaker}-{chapter} — move the line")
        if not text.strip():
            raise LibriSpeechError(f"{path}:{number}: utterance {utt_id} has no transcript — add it or delete the line")
        if utt_id in table:
            raise LibriSpeechError(f"{path}:{number}: utterance {utt_id} repeats line {table[utt_id][1]} — keep one")
        table[utt_id] = (text.strip(), number)
    return table


def read_folder(folder: Path, report: Counter, examples: dict[str, list[str]]) -> tuple[list[Utterance], list[dict]]:
    """Utterances and manifest records of one LibriSpeech-layout folder (``<spk>/<chapter>/...``)."""
    utts, records = [], []
    chapters = sorted(p for p in folder.glob("*/*") if p.is_dir())
    if not chapters:
        raise LibriSpeechError(f"{folder}: no <speaker>/<chapter>/ folders — is this a LibriSpeech-layout folder?")
    for chapter_dir in chapters:
        speaker, chapter = chapter_dir.parent.name, chapter_dir.name
        trans_file = chapter_dir / f"{speaker}-{chapter}.trans.txt"
        transcripts = read_transcript(trans_file, speaker, chapter) if trans_file.is_file() else {}
        audio = {p.name[: -len(".flac")]: p for p in chapter_dir.glob("*.flac")}
        for stem in sorted(set(audio) - set(transcripts)):
            report["audio without transcript (skipped)"] += 1
            examples.setdefault("audio without transcript", []).append(str(audio[stem]))
        for utt_id in sorted(set(transcripts) - set(audio)):
            report["transcript without audio (skipped)"] += 1
            examples.setdefault("transcript without audio", []).append(f"{trans_file}:{transcripts[utt_id][1]}")
        for utt_id in sorted(set(transcripts) & set(audio)):
            raw, number = transcripts[utt_id]
            text = normalize_text(raw)
            if not text:
                raise LibriSpeechError(f"{trans_file}:{number}: utterance {utt_id}: transcript {raw!r} is empty after "
                                       "normalisation — fix or delete the line")
            utts.append(Utterance(utt_id, speaker, text, str(audio[utt_id].resolve()), flac_seconds(audio[utt_id])))
            records.append({"utt_id": utt_id, "source": str(audio[utt_id].resolve()), "raw_text": raw,
                            "transcript": f"{trans_file.resolve()}:{number}",
                            "sha256": corpus_files.file_sha256(audio[utt_id])})
    return utts, records


def flac_seconds(path: Path) -> float:
    """Duration from the FLAC header; a file that is not 16 kHz mono is an error naming it."""
    try:
        info = soundfile.info(str(path))
    except (RuntimeError, soundfile.LibsndfileError) as err:
        raise LibriSpeechError(f"{path}: not readable audio ({err}) — replace the file or delete it") from err
    if info.samplerate != 16000 or info.channels != 1:
        raise LibriSpeechError(f"{path}: {info.samplerate} Hz, {info.channels} channel(s); LibriSpeech audio is "
                               "16 kHz mono — is this copy intact?")
    return info.frames / info.samplerate


def quick_subset(utts: list[Utterance], seconds: float, seed: int) -> list[Utterance]:
    """A seeded subset of about ``seconds`` of audio (whole utterances)."""
    order = sorted(utts, key=lambda u: u.utt_id)
    random.Random(f"{seed}:librispeech").shuffle(order)
    chosen, total = [], 0.0
    for utt in order:
        if total >= seconds:
            break
        chosen.append(utt)
        total += utt.duration
    return chosen


def source_folders(set_name: str, librispeech: str | Path | None, librilight: str | Path | None) -> list[Path]:
    if set_name in EVAL_SETS:
        if librispeech is None:
            raise LibriSpeechError(f"set {set_name} needs --librispeech DIR (the folder holding LibriSpeech/)")
        return [find_root(librispeech, "LibriSpeech", "--librispeech", EVAL_SETS[set_name]) / EVAL_SETS[set_name]]
    if librilight is None:
        raise LibriSpeechError(f"set {set_name} needs --librilight DIR (the folder holding librispeech_finetuning/)")
    root = find_root(librilight, "librispeech_finetuning", "--librilight", "1h")
    folders = [root / sub for sub in TRAIN_SETS[set_name]]
    missing = [str(f) for f in folders if not f.is_dir()]
    if missing:
        raise LibriSpeechError(f"{set_name}: missing Libri-light folder(s) {', '.join(missing)} — expected "
                               "librispeech_finetuning/1h/{0..5}/{clean,other} and 9h/{clean,other}")
    return folders


def build(out_root: str | Path = "corpora", *, librispeech: str | Path | None = None,
          librilight: str | Path | None = None, sets: str | list[str] = DEFAULT_SETS, quick: bool = False,
          strict: bool = False, seed: int = 0, force: bool = False) -> dict[str, Path]:
    """Build (or reuse) ``out_root/librispeech/data/<set>``; returns set name -> data dir."""
    names = [s.strip() for s in sets.split(",") if s.strip()] if isinstance(sets, str) else list(sets)
    unknown = [s for s in names if s not in ALL_SETS]
    if unknown or not names:
        raise LibriSpeechError(f"--sets: unknown {unknown or sets!r}; choose from {', '.join(ALL_SETS)}")
    root = Path(out_root) / "librispeech"
    dirs = {name: root / "data" / name for name in names}
    folders = {name: source_folders(name, librispeech, librilight) for name in names}
    options = {"sets": names, "quick": quick, "strict": strict, "seed": seed,
               "sources": {name: [str(f.resolve()) for f in fs] for name, fs in folders.items()}}
    code = corpus_files.code_checksum(sys.modules[__name__], corpus_files)
    if not force and corpus_files.is_built(root, options, code):
        print(f"librispeech: already built in {root}")
        return dirs
    summary, reports = {}, {}
    for name in names:
        report: Counter = Counter()
        examples: dict[str, list[str]] = {}
        utts, records = [], []
        for folder in folders[name]:
            more_utts, more_records = read_folder(folder, report, examples)
            utts += more_utts
            records += more_records
        if strict and examples:
            listed = "; ".join(f"{kind}: {', '.join(items[:EXAMPLES_LISTED])}" for kind, items in examples.items())
            raise LibriSpeechError(f"{name}: {dict(report)} ({listed}) — fix the copy or drop --strict")
        if quick and name in EVAL_SETS:
            keep = {u.utt_id for u in quick_subset(utts, QUICK_EVAL_SECONDS, seed)}
            utts = [u for u in utts if u.utt_id in keep]
            records = [r for r in records if r["utt_id"] in keep]
        corpus_files.write_data_dir(dirs[name], utts)
        corpus_files.write_jsonl(dirs[name] / "manifest.jsonl", records)
        summary[name] = corpus_files.summarize(utts)
        reports[name] = {"counts": dict(report), "examples": {k: v[:EXAMPLES_LISTED] for k, v in examples.items()}}
        skipped = ", ".join(f"{k} {v}" for k, v in sorted(report.items())) or "nothing skipped"
        print(f"librispeech/{name}: {summary[name]}; {skipped}")
        for kind, items in examples.items():
            print(f"  {kind}, e.g.: {', '.join(items[:EXAMPLES_LISTED])}")
    (root / "report.json").write_text(json.dumps(reports, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    corpus_files.mark_built(root, options, code, summary)
    return dirs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--librispeech", help="folder holding LibriSpeech/ (dev-clean, test-clean, ...)")
    parser.add_argument("--librilight", help="folder holding librispeech_finetuning/ (1h/, 9h/)")
    parser.add_argument("--sets", default=DEFAULT_SETS, help=f"comma-separated sets (default {DEFAULT_SETS}; "
                        f"known: {', '.join(ALL_SETS)})")
    parser.add_argument("--out", default="corpora", help="output root (default ./corpora)")
    parser.add_argument("--quick", action="store_true", help="only ~2 minutes of each evaluation set (training sets stay whole)")
    parser.add_argument("--strict", action="store_true", help="audio without transcript (or the reverse) is an error")
    parser.add_argument("--seed", type=int, default=0, help="seed of the --quick subsets")
    parser.add_argument("--force", action="store_true", help="rebuild even when the .done marker matches")


def run(args: argparse.Namespace) -> int:
    try:
        built = build(args.out, librispeech=args.librispeech, librilight=args.librilight, sets=args.sets,
                      quick=args.quick, strict=args.strict, seed=args.seed, force=args.force)
    except RecipeError as err:
        print(f"librispeech: {err}", file=sys.stderr)
        return 1
    for name, path in built.items():
        print(f"  {name:12s} {path}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    sys.exit(run(parser.parse_args()))
