"""Real studio speech: the Asterisk telephony prompts (one speaker per language, CC-BY-SA-3.0).

Debian's ``asterisk-core-sounds-<lang>-g722`` holds the prompts as G.722 (16 kHz wideband) and
``asterisk-core-sounds-<lang>`` the transcripts (``core-sounds-<lang>.txt.gz``, lines ``id: text``).
Both are downloaded with ``apt-get download`` and unpacked into ``OUT/_debian`` (nothing is
installed), decoded with the ``g722`` package to 16 kHz and stored as FLAC.

Sets: ``adapt_10min`` (about 10 minutes) and ``test`` (everything else). Utterances with the same
transcript always land in the same set, so no test sentence is seen in adaptation. Transcripts
are spelled out (numbers, ``*``/``#``) and normalised; prompts with no speech (``[beep tone]``) and
files without a transcript are skipped, and every skip is counted in the printed report and in
``OUT/asterisk_<lang>/report.json``.

Examples:
    python -m recipes.asterisk --lang en                # corpora/asterisk_en/data/{adapt_10min,test}
    python -m recipes.asterisk --lang fr --out /tmp/corpora --quick
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

import G722
import numpy as np

from recipes import corpus_files, debian_packages, spoken_text
from recipes.corpus_files import RecipeError, Utterance
from speechprompt.data.audio import write_audio

LANGS = ("en", "es", "fr")
ADAPT_SECONDS = 600
QUICK_SECONDS = {"adapt_10min": 60, "test": 120}
SAMPLE_RATE = 16000


def packages(lang: str) -> list[str]:
    return [f"asterisk-core-sounds-{lang}", f"asterisk-core-sounds-{lang}-g722"]


def read_transcripts(path: Path, report: Counter) -> dict[str, str]:
    """``id -> raw text`` from ``core-sounds-<lang>.txt.gz``; malformed lines are counted."""
    if not path.is_file():
        raise RecipeError(f"transcript file {path} not found — is the package {path.parent.name} unpacked?")
    table = {}
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as handle:
        for line in handle:
            line = line.strip()
            if not line or line.startswith(";"):
                continue
            key, sep, text = line.partition(":")
            if not sep or not key.strip() or " " in key.strip():
                report["transcript lines malformed"] += 1
                continue
            if key.strip() in table:
                report["transcript lines duplicated (first kept)"] += 1
                continue
            table[key.strip()] = text.strip()
    return table


def decode_g722(path: Path) -> np.ndarray:
    """G.722 at 64 kbit/s -> (S,) float32 16 kHz. A fresh decoder per file: the codec is stateful."""
    samples = np.asarray(G722.G722(SAMPLE_RATE, 64000).decode(path.read_bytes()), dtype=np.int16)
    return samples.astype(np.float32) / 32768.0


def utterance_id(speaker: str, prompt_id: str) -> str:
    return f"{speaker}-{re.sub(r'[^A-Za-z0-9_.-]', '_', prompt_id)}"


def split_by_text(utts: list[Utterance], adapt_seconds: float, test_seconds: float | None,
                  seed: int) -> dict[str, list[Utterance]]:
    """Whole transcript groups to ``adapt_10min`` until ``adapt_seconds``; the rest (or up to
    ``test_seconds``) to ``test``."""
    groups: dict[str, list[Utterance]] = defaultdict(list)
    for utt in utts:
        groups[utt.text].append(utt)
    keys = sorted(groups)
    random.Random(f"{seed}:asterisk").shuffle(keys)
    sets: dict[str, list[Utterance]] = {"adapt_10min": [], "test": []}
    adapt_total = test_total = 0.0
    for key in keys:
        group_seconds = sum(u.duration for u in groups[key])
        if adapt_total < adapt_seconds:
            sets["adapt_10min"] += groups[key]
            adapt_total += group_seconds
        elif test_seconds is None or test_total < test_seconds:
            sets["test"] += groups[key]
            test_total += group_seconds
    return sets


def build(out_root: str | Path = "corpora", *, lang: str = "en", quick: bool = False, seed: int = 0,
          force: bool = False, adapt_seconds: float = ADAPT_SECONDS) -> dict[str, Path]:
    """Build (or reuse) ``out_root/asterisk_<lang>``; returns set name -> data dir.

    ``adapt_seconds`` sizes ``adapt_10min`` (600 s; ``quick`` uses 60 s and a 120 s test set).
    """
    if lang not in LANGS:
        raise RecipeError(f"--lang {lang!r}: choose one of {', '.join(LANGS)}")
    root = Path(out_root) / f"asterisk_{lang}"
    dirs = {name: root / "data" / name for name in ("adapt_10min", "test")}
    options = {"lang": lang, "quick": quick, "seed": seed, "adapt_seconds": adapt_seconds}
    code = corpus_files.code_checksum(sys.modules[__name__], spoken_text, corpus_files, debian_packages)
    if not force and corpus_files.is_built(root, options, code):
        print(f"asterisk_{lang}: already built in {root}")
        return dirs
    debian = debian_packages.unpacked_packages(packages(lang), Path(out_root) / "_debian")
    report: Counter = Counter()
    transcripts = read_transcripts(
        debian / f"usr/share/doc/asterisk-core-sounds-{lang}/core-sounds-{lang}.txt.gz", report)
    speaker_dirs = sorted(p for p in (debian / "usr/share/asterisk/sounds").glob(f"{lang}_*") if p.is_dir())
    if len(speaker_dirs) != 1:
        raise RecipeError(f"expected one {lang}_* speaker folder in {debian / 'usr/share/asterisk/sounds'}, "
                          f"found {[p.name for p in speaker_dirs]}")
    speaker_dir = speaker_dirs[0]
    speaker = speaker_dir.name
    audio_files = {p.relative_to(speaker_dir).with_suffix("").as_posix(): p for p in sorted(speaker_dir.rglob("*.g722"))}
    report["audio files"] = len(audio_files)
    report["transcripts without audio"] = len(set(transcripts) - set(audio_files))

    debs = [d.name for d in sorted((Path(out_root) / "_debian" / "debs").glob(f"asterisk-core-sounds-{lang}*.deb"))]
    utts, records, seen_ids = [], [], {}
    for prompt_id, path in audio_files.items():
        if prompt_id not in transcripts:
            report["skipped: no transcript"] += 1
            continue
        words, changes = spoken_text.spoken_form(transcripts[prompt_id], lang)
        for change in changes:
            report[f"transcripts with {change} rewritten"] += 1
        if not words:
            report["skipped: no speech in transcript"] += 1
            continue
        utt_id = utterance_id(speaker, prompt_id)
        if utt_id in seen_ids:
            raise RecipeError(f"prompts {seen_ids[utt_id]!r} and {prompt_id!r} map to the same utterance id {utt_id}")
        seen_ids[utt_id] = prompt_id
        samples = decode_g722(path)
        flac = write_audio(root / "audio" / f"{utt_id}.flac", samples, SAMPLE_RATE)
        utts.append(Utterance(utt_id, speaker, words, str(flac), samples.shape[0] / SAMPLE_RATE))
        records.append({"utt_id": utt_id, "source": f"{speaker}/{prompt_id}.g722", "raw_text": transcripts[prompt_id],
                        "text": words, "changes": changes, "duration": round(samples.shape[0] / SAMPLE_RATE, 4),
                        "sha256": corpus_files.file_sha256(flac), "packages": debs, "licence": "CC-BY-SA-3.0"})
    report["utterances kept"] = len(utts)

    adapt_s, test_s = (QUICK_SECONDS["adapt_10min"], QUICK_SECONDS["test"]) if quick else (adapt_seconds, None)
    sets = split_by_text(utts, adapt_s, test_s, seed)
    by_id = {r["utt_id"]: r for r in records}
    summary = {}
    for name, set_utts in sets.items():
        corpus_files.write_data_dir(dirs[name], set_utts)
        corpus_files.write_jsonl(dirs[name] / "manifest.jsonl", [{**by_id[u.utt_id], "set": name} for u in set_utts])
        summary[name] = corpus_files.summarize(set_utts)
    overlap = {u.text for u in sets["adapt_10min"]} & {u.text for u in sets["test"]}
    assert not overlap, f"transcripts in both sets: {sorted(overlap)[:3]}"
    (root / "report.json").write_text(json.dumps(dict(sorted(report.items())), indent=1) + "\n", encoding="utf-8")
    corpus_files.mark_built(root, options, code, summary)
    print(f"asterisk_{lang}: " + ", ".join(f"{k} {v}" for k, v in sorted(report.items())))
    for name in sets:
        print(f"asterisk_{lang}/{name}: {summary[name]}")
    return dirs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="corpora", help="output root; the corpus goes to OUT/asterisk_<lang>")
    parser.add_argument("--lang", default="en", choices=LANGS, help="prompt language (default en)")
    parser.add_argument("--quick", action="store_true", help="small build for tests (about 1 + 2 minutes)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the adapt/test split (default 0)")
    parser.add_argument("--force", action="store_true", help="rebuild even if the .done marker matches")


def run(args: argparse.Namespace) -> int:
    build(args.out, lang=args.lang, quick=args.quick, seed=args.seed, force=args.force)
    return 0


if __name__ == "__main__":
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(cli)
    sys.exit(run(cli.parse_args()))
