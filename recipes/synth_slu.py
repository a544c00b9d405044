"""Synthetic spoken slot filling in the form of SLURP, from templates (recipes/slu_templates.py).

14 intents (alarm_set, weather_query, play_music, calendar_set, iot_lights_on, timer_set, ...)
and 18 slot types (date, time, place_name, person, artist_name, song_name, device_type, ...).
Sentences are drawn from templates filled with slot values; every sentence is unique across
all sets. The test set uses held-out templates, held-out slot values and voices heard nowhere
in training (flite slt; espeak-ng Scottish and Caribbean accents with their own variants).

  train_1000   1000 utterances  flite kal16/awb/rms + espeak-ng en-us/en-gb variants
  train_200    the first 200 of train_1000 (nested)
  dev          500 utterances   training templates, values and voices, unseen sentences
  test         1500 utterances  held-out templates, values and voices

Each data dir holds the plain transcript in ``text``, the intent in ``utt2intent``, the gold
annotation as ``slurp.jsonl`` (SLURP fields: slurp_id, sentence, sentence_annotation with
``[type : filler]``, intent, scenario, action, tokens, entities with type and token-index span,
recordings with file) and ``manifest.jsonl`` (engine, voice, settings and seed of each file).

Examples:
    python -m recipes.synth_slu                      # corpora/synth_slu/data/{train_1000,train_200,dev,test}
    python -m recipes.synth_slu --quick --out /tmp/corpora
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from pathlib import Path

from recipes import corpus_files, slu_templates, tts
from recipes.corpus_files import RecipeError, Utterance

NAME = "synth_slu"
SET_SIZES = {"train_1000": 1000, "dev": 500, "test": 1500}
NESTED = ("train_200", "train_1000", 200)
QUICK_SIZES = {"train_1000": 40, "dev": 12, "test": 24}
QUICK_NESTED = 10
TRAIN_VOICES = [tts.Voice("flite", v) for v in ("kal16", "awb", "rms")] + [
    tts.Voice("espeak-ng", accent, variant) for accent in ("en-us", "en-gb") for variant in ("m1", "m3", "f1", "f2")]
TEST_VOICES = [tts.Voice("flite", "slt")] + [
    tts.Voice("espeak-ng", accent, variant) for accent in ("en-gb-scotland", "en-029") for variant in ("m5", "f3")]
_SLOT = re.compile(r"\{(\w+)\}")


def fill(template: str, values: dict[str, str]) -> tuple[list[str], list[dict], str]:
    """Template + slot values -> (tokens, entities with token spans, SLURP ``[type : filler]`` annotation)."""
    tokens, entities, annotated = [], [], []
    for piece in template.split():
        match = _SLOT.fullmatch(piece)
        if match is None:
            tokens.append(piece)
            annotated.append(piece)
            continue
        slot, words = match.group(1), values[match.group(1)].split()
        entities.append({"type": slot, "span": list(range(len(tokens), len(tokens) + len(words)))})
        tokens += words
        annotated.append(f"[{slot} : {' '.join(words)}]")
    return tokens, entities, " ".join(annotated)


def generate(set_name: str, count: int, seed: int, taken: set[str]) -> list[dict]:
    """``count`` unique annotated sentences not in ``taken`` (which is updated)."""
    held_out = set_name == "test"
    rng = random.Random(f"{seed}:slu:{set_name}")
    values = {slot: slu_templates.split_values(slot, held_out) for slot in slu_templates.SLOT_VALUES}
    templates = {intent: pair[1 if held_out else 0] for intent, pair in sorted(slu_templates.TEMPLATES.items())}
    active = sorted(templates)  # intents still producing new sentences; round robin keeps them balanced
    misses = dict.fromkeys(active, 0)
    out = []
    while len(out) < count:
        if not active:
            raise RecipeError(f"could not draw {count} unique sentences for {set_name} (got {len(out)}): add templates or values")
        intent = active[len(out) % len(active)]
        prefix, core, suffix = rng.choice(slu_templates.PREFIXES), rng.choice(templates[intent]), rng.choice(slu_templates.SUFFIXES)
        if core.endswith(suffix.split(" ")[-1]):
            suffix = ""  # no "... please please"
        template = " ".join(part for part in (prefix, core, suffix) if part)
        chosen = {slot: rng.choice(values[slot]) for slot in _SLOT.findall(template)}
        tokens, entities, annotation = fill(template, chosen)
        sentence = " ".join(tokens)
        if sentence in taken:
            misses[intent] += 1
            if misses[intent] >= 200:  # this intent's combinations are (nearly) used up
                active.remove(intent)
            continue
        misses[intent] = 0
        taken.add(sentence)
        scenario, _, action = intent.partition("_")
        out.append({"sentence": sentence, "sentence_annotation": annotation, "intent": intent, "scenario": scenario,
                    "action": action, "template": core,
                    "tokens": [{"surface": t, "id": i} for i, t in enumerate(tokens)], "entities": entities})
    return out


def voice_for(set_name: str, index: int, seed: int) -> tts.Voice:
    rng = random.Random(f"{seed}:slu-voice:{set_name}:{index}")
    base = rng.choice(TEST_VOICES if set_name == "test" else TRAIN_VOICES)
    if base.engine == "flite":
        return tts.Voice("flite", base.voice, stretch=round(rng.uniform(0.9, 1.15), 2))
    return tts.Voice("espeak-ng", base.voice, base.variant, rate=rng.randint(140, 190), pitch=rng.randint(30, 70))


def build(out_root: str | Path = "corpora", *, quick: bool = False, nj: int = 2, seed: int = 0,
          force: bool = False) -> dict[str, Path]:
    """Build (or reuse) ``out_root/synth_slu``; returns set name -> data dir."""
    root = Path(out_root) / NAME
    dirs = {name: root / "data" / name for name in ("train_1000", "train_200", "dev", "test")}
    options = {"quick": quick, "seed": seed}
    code = corpus_files.code_checksum(sys.modules[__name__], slu_templates, tts, corpus_files)
    if not force and corpus_files.is_built(root, options, code):
        print(f"{NAME}: already built in {root}")
        return dirs
    sizes = QUICK_SIZES if quick else SET_SIZES
    taken: set[str] = set()
    annotations, jobs, slurp_id = {}, {}, 0
    for set_name, count in sizes.items():
        jobs[set_name] = []
        for index, record in enumerate(generate(set_name, count, seed, taken)):
            slurp_id += 1
            voice = voice_for(set_name, index, seed)
            utt_id = f"{voice.speaker}-slu{slurp_id:05d}"
            flac = root / "audio" / set_name / f"{utt_id}.flac"
            annotations[utt_id] = {"slurp_id": slurp_id, **record,
                                   "recordings": [{"file": flac.name, "utt_id": utt_id, "speaker": voice.speaker}]}
            jobs[set_name].append(tts.SynthJob(utt_id, record["sentence"], voice, str(flac)))
    every = [job for set_jobs in jobs.values() for job in set_jobs]
    print(f"{NAME}: {len(every)} unique sentences, {len(slu_templates.TEMPLATES)} intents, "
          f"{len(slu_templates.SLOT_VALUES)} slot types; synthesising with {nj} processes")
    results = tts.synthesize_all(every, nj=nj)
    jobs[NESTED[0]] = jobs[NESTED[1]][: QUICK_NESTED if quick else NESTED[2]]
    summary = {}
    for set_name in dirs:
        set_jobs = jobs[set_name]
        utts = [Utterance(j.utt_id, j.voice.speaker, j.text, j.out_path, results[j.utt_id].duration) for j in set_jobs]
        corpus_files.write_data_dir(dirs[set_name], utts,
                                    extra_tables={"utt2intent": {j.utt_id: annotations[j.utt_id]["intent"] for j in set_jobs}})
        corpus_files.write_jsonl(dirs[set_name] / "slurp.jsonl", [annotations[j.utt_id] for j in set_jobs], key="slurp_id")
        corpus_files.write_jsonl(dirs[set_name] / "manifest.jsonl",
                                 [tts.manifest_record(j, results[j.utt_id], seed, set_name) for j in set_jobs])
        summary[set_name] = corpus_files.summarize(utts)
    corpus_files.mark_built(root, options, code, summary)
    for set_name in dirs:
        print(f"{NAME}/{set_name}: {summary[set_name]}")
    return dirs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="corpora", help="output root; the corpus goes to OUT/synth_slu")
    parser.add_argument("--quick", action="store_true", help="small build for tests (about 80 utterances)")
    parser.add_argument("--nj", type=int, default=2, help="synthesis processes (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed for sentences and voices (default 0)")
    parser.add_argument("--force", action="store_true", help="rebuild even if the .done marker matches")


def run(args: argparse.Namespace) -> int:
    build(args.out, quick=args.quick, nj=args.nj, seed=args.seed, force=args.force)
    return 0


if __name__ == "__main__":
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(cli)
    sys.exit(run(cli.parse_args()))
