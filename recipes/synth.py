"""Synthetic English ASR corpus: espeak-ng for pretraining, flite voices as the target domain.

Sets (sizes at ``--scale 1``; ``--quick`` is ``--scale 0.02``, about four minutes of audio):

  pretrain      ~2 h   espeak-ng, 8 English accents x 52 voice variants, rate 130-210 wpm, pitch 20-80
  adapt_1h      ~1 h   flite kal16, awb, rms, duration stretch 0.85-1.2
  adapt_10min   ~10 min, the first utterances of adapt_1h (nested, like Libri-light)
  dev           ~15 min flite kal16, awb, rms
  test          ~20 min flite kal16, awb, rms and slt (slt is heard nowhere else: an unseen speaker)

Sentences come from Debian's fortunes (see recipes/english_text.py); pretrain, adapt, dev and test
texts are disjoint. Every voice setting is drawn from a random generator seeded with
``--seed`` and the utterance's index, so a build is bit-identical from run to run; each data dir
gets a ``manifest.jsonl`` recording engine, version, voice, variant, rate, pitch, stretch and seed.

Examples:
    python -m recipes.synth                       # corpora/synth/data/{pretrain,adapt_1h,...}
    python -m recipes.synth --quick --nj 2 --out /tmp/corpora
    python -m recipes.synth --scale 0.5 --seed 3  # half-size corpus with other voices/texts
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from recipes import corpus_files, english_text, tts
from recipes.corpus_files import Utterance

NAME = "synth"
QUICK_SCALE = 0.02
# target seconds at scale 1; adapt_10min is carved out of adapt_1h
SET_SECONDS = {"test": 1200, "dev": 900, "adapt_1h": 3600, "pretrain": 7200}
ADAPT_10MIN_SECONDS = 600
ADAPT_VOICES = ("kal16", "awb", "rms")
TEST_VOICES = ("kal16", "awb", "rms", "slt")
SECONDS_PER_WORD, SECONDS_PER_SENTENCE = 0.295, 0.3  # fitted to a full build (espeak-ng and flite mean)


def estimated_seconds(text: str) -> float:
    return SECONDS_PER_SENTENCE + SECONDS_PER_WORD * len(text.split())


def split_texts(sentences: list[str], scale: float, seed: int) -> dict[str, list[str]]:
    """Shuffle once with ``seed`` and cut disjoint slices whose estimated audio fits each set."""
    order = list(sentences)
    random.Random(f"{seed}:texts").shuffle(order)
    splits, position = {}, 0
    for name, seconds in SET_SECONDS.items():
        budget, chosen, total = seconds * scale, [], 0.0
        while position < len(order) and (not chosen or total < budget):
            chosen.append(order[position])
            total += estimated_seconds(order[position])
            position += 1
        if total < budget:
            raise corpus_files.RecipeError(
                f"only {len(sentences)} usable sentences: not enough text for set {name!r} at scale {scale}")
        splits[name] = chosen
    return splits


def voice_for(set_name: str, index: int, seed: int) -> tts.Voice:
    rng = random.Random(f"{seed}:{set_name}:{index}")
    if set_name == "pretrain":
        voice = tts.Voice("espeak-ng", rng.choice(sorted(tts.ESPEAK_ENGLISH_ACCENTS)), rng.choice(tts.ESPEAK_VARIANTS),
                          rate=rng.randint(130, 210), pitch=rng.randint(20, 80))
    else:
        voices = TEST_VOICES if set_name == "test" else ADAPT_VOICES
        voice = tts.Voice("flite", rng.choice(voices), stretch=round(rng.uniform(0.85, 1.2), 2))
    return voice


def jobs_for(splits: dict[str, list[str]], audio_root: Path, seed: int) -> dict[str, list[tts.SynthJob]]:
    tags = {"pretrain": "pre", "adapt_1h": "adapt", "dev": "dev", "test": "test"}
    jobs = {}
    for name, texts in splits.items():
        jobs[name] = []
        for index, text in enumerate(texts):
            voice = voice_for(name, index, seed)
            utt_id = f"{voice.speaker}-{tags[name]}{index:05d}"
            jobs[name].append(tts.SynthJob(utt_id, text, voice, str(audio_root / name / f"{utt_id}.flac")))
    return jobs


def build(out_root: str | Path = "corpora", *, scale: float = 1.0, quick: bool = False, nj: int = 2,
          seed: int = 0, force: bool = False) -> dict[str, Path]:
    """Build (or reuse) the corpus under ``out_root/synth``; returns set name -> data dir."""
    scale = QUICK_SCALE if quick else scale
    root = Path(out_root) / NAME
    sets = ("pretrain", "adapt_1h", "adapt_10min", "dev", "test")
    dirs = {name: root / "data" / name for name in sets}
    options = {"scale": scale, "seed": seed}
    code = corpus_files.code_checksum(sys.modules[__name__], english_text, tts, corpus_files)
    if not force and corpus_files.is_built(root, options, code):
        print(f"{NAME}: already built in {root} (delete {root / corpus_files.MARKER} to rebuild)")
        return dirs
    sentences, text_report = english_text.fortune_sentences()
    print(f"{NAME}: {text_report['kept']} usable sentences; " +
          ", ".join(f"{k} {v}" for k, v in sorted(text_report.items()) if k != "kept"))
    jobs = jobs_for(split_texts(sentences, scale, seed), root / "audio", seed)
    every = [job for name in jobs for job in jobs[name]]
    print(f"{NAME}: synthesising {len(every)} utterances with {nj} processes")
    results = tts.synthesize_all(every, nj=nj)

    summary = {}
    for name, set_jobs in jobs.items():
        write_set(dirs[name], name, set_jobs, results, seed)
        summary[name] = corpus_files.summarize([_utterance(j, results) for j in set_jobs])
    nested, total = [], 0.0
    for job in jobs["adapt_1h"]:  # the first ~10 minutes of adapt_1h, in index order
        if total >= ADAPT_10MIN_SECONDS * scale:
            break
        nested.append(job)
        total += results[job.utt_id].duration
    write_set(dirs["adapt_10min"], "adapt_10min", nested, results, seed)
    summary["adapt_10min"] = corpus_files.summarize([_utterance(j, results) for j in nested])
    corpus_files.mark_built(root, options, code, summary)
    for name in sets:
        print(f"{NAME}/{name}: {summary[name]}")
    return dirs


def _utterance(job: tts.SynthJob, results: dict[str, tts.SynthResult]) -> Utterance:
    return Utterance(job.utt_id, job.voice.speaker, job.text, job.out_path, results[job.utt_id].duration)


def write_set(data_dir: Path, name: str, jobs: list[tts.SynthJob], results: dict[str, tts.SynthResult], seed: int) -> None:
    corpus_files.write_data_dir(data_dir, [_utterance(j, results) for j in jobs])
    corpus_files.write_jsonl(data_dir / "manifest.jsonl",
                             [tts.manifest_record(j, results[j.utt_id], seed, name) for j in jobs])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="corpora", help="output root; the corpus goes to OUT/synth (default: corpora)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every set's size (default 1: ~3.6 h)")
    parser.add_argument("--quick", action="store_true", help=f"small build for tests and CI (--scale {QUICK_SCALE})")
    parser.add_argument("--nj", type=int, default=2, help="synthesis processes (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed for texts and voice settings (default 0)")
    parser.add_argument("--force", action="store_true", help="rebuild even if OUT/synth/.done matches")


def run(args: argparse.Namespace) -> int:
    build(args.out, scale=args.scale, quick=args.quick, nj=args.nj, seed=args.seed, force=args.force)
    return 0


if __name__ == "__main__":
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(cli)
    sys.exit(run(cli.parse_args()))
