"""SLURP (Bastianelli et al., EMNLP 2020) from a local copy: Kaldi data dirs + gold ``slurp.jsonl``.

Nothing is downloaded. Point ``--slurp`` at a folder laid out as SLURP's repository and audio
archives unpack (the audio may also sit under ``audio/`` or ``slurp/audio/``)::

    DIR/slurp/dataset/slurp/{train,train_synthetic,devel,test}.jsonl
    DIR/slurp_real/*.flac          (train, devel, test: headset and far-field recordings)
    DIR/slurp_synth/*.flac         (train_synthetic)

Each JSONL line is one sentence with its annotation (scenario + action, the intent SLURP scores; tokens, entities
with token spans, sentence_annotation) and its ``recordings`` (``[{"file": "audio-...flac", ...}]``);
every recording becomes an utterance whose id is the file name without extension (the key the
slot-filling scorer uses) and whose speaker is the utterance itself (SLURP's JSONL names no speaker).

Output: ``OUT/slurp/data/<set>/``: ``wav.scp`` (absolute paths of the original FLAC files: nothing
is copied), ``text`` (the normalised words, slot fillers in place), ``utt2spk``, ``spk2utt``,
``utt2dur``, ``utt2intent``, ``slurp.jsonl`` (the gold annotations of the imported recordings, each
recording with its ``utt_id``), ``manifest.jsonl``, and ``skipped.txt`` (recordings left out and why:
audio missing or unreadable, another kind with ``--recordings``, or an annotation that cannot become
a target, which ``--strict`` turns into an error). Sets are named as SLURP names them. Malformed
JSONL fails with the file and line; skipped recordings are counted and reported.

Examples:
  python -m recipes.slurp --slurp /data/slurp --out corpora
  python -m recipes.slurp --slurp /data/slurp --sets devel,test --recordings headset
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import soundfile

from recipes import corpus_files
from recipes.corpus_files import RecipeError, Utterance
from speechprompt.data.text import normalize_text
from speechprompt.score.slu_format import SluFormatError, annotation_from_slurp, read_json_objects

NAME = "slurp"
SETS = {"train": "slurp_real", "train_synthetic": "slurp_synth", "devel": "slurp_real", "test": "slurp_real"}
RECORDING_KINDS = ("all", "headset", "far")


def find_layout(slurp_dir: Path) -> tuple[Path, dict[str, Path | None]]:
    """(folder of the JSONL files, audio folder name -> path or None when absent)."""
    jsonl_dirs = [slurp_dir / "slurp" / "dataset" / "slurp", slurp_dir / "dataset" / "slurp"]
    jsonl_dir = next((d for d in jsonl_dirs if d.is_dir()), None)
    if jsonl_dir is None:
        raise RecipeError(f"{slurp_dir}: no SLURP annotations; expected {jsonl_dirs[0]}/{{train,devel,test}}.jsonl "
                          "(clone https://github.com/pswietojanski/slurp into DIR/slurp)")
    audio = {}
    for name in ("slurp_real", "slurp_synth"):
        candidates = [slurp_dir / name, slurp_dir / "audio" / name, slurp_dir / "slurp" / "audio" / name]
        audio[name] = next((d for d in candidates if d.is_dir()), None)
    return jsonl_dir, audio


def recording_kind(file: str) -> str:
    """SLURP names headset recordings ``audio-<id>-headset.flac``; the others are far-field."""
    return "headset" if Path(file).stem.endswith("-headset") else "far"


def read_records(path: Path) -> list[tuple[int, dict]]:
    """(line number, record) of a SLURP JSONL file; malformed lines raise RecipeError naming file:line."""
    records = read_json_objects(path, RecipeError)
    for number, record in records:
        recordings = record.get("recordings")
        if not isinstance(recordings, list) or not all(isinstance(r, dict) and isinstance(r.get("file"), str)
                                                      and r["file"] for r in recordings):
            raise RecipeError(f"{path}:{number}: 'recordings' must be a list of objects with a 'file' name")
    return records


def import_set(jsonl: Path, audio_dir: Path, out_dir: Path, recordings: str = "all", strict: bool = False) -> dict:
    """Write one set's data dir; returns its summary with the counts of skipped recordings and sentences.

    A sentence whose annotation cannot become a target (an entity span outside the tokens, no words
    left after normalisation, ...) is skipped with its recordings and listed, or fails with ``strict``.
    """
    utts, gold, manifest, skipped, intents = [], [], [], [], {}
    seen: dict[str, str] = {}
    bad_annotations = 0
    for number, record in read_records(jsonl):
        where = f"{jsonl}:{number}"
        try:
            annotation = annotation_from_slurp(record, normalize_text, where)
            if not annotation.transcript:
                raise SluFormatError(f"{where}: no words left after normalisation of {record.get('sentence')!r}")
        except SluFormatError as err:
            if strict:
                raise RecipeError(f"{err} (without --strict such sentences are skipped and counted)") from err
            bad_annotations += 1
            skipped += [f"{Path(r['file']).stem}\t{where}\tannotation: {err}" for r in record["recordings"]]
            continue
        kept = []
        for recording in record["recordings"]:
            file = recording["file"]
            utt = corpus_files.check_id(Path(file).stem, f"{where}: recording")
            if utt in seen:
                raise RecipeError(f"{where}: recording {file} already listed at {seen[utt]}")
            seen[utt] = where
            audio = audio_dir / file
            reason = None
            if recordings != "all" and recording_kind(file) != recordings:
                reason = f"not a {recordings} recording (--recordings {recordings})"
            elif not audio.is_file():
                reason = f"audio missing: {audio}"
            else:
                try:
                    info = soundfile.info(str(audio))
                    duration = info.frames / info.samplerate
                except RuntimeError as err:  # soundfile.LibsndfileError
                    reason = f"audio unreadable: {audio} ({err})"
                else:
                    if duration <= 0:
                        reason = f"audio empty: {audio}"
            if reason:
                skipped.append(f"{utt}\t{where}\t{reason}")
                continue
            kept.append({**recording, "utt_id": utt})
            utts.append(Utterance(utt, utt, annotation.transcript, str(audio), duration))
            intents[utt] = annotation.intent
            manifest.append({"utt_id": utt, "source": str(audio.resolve()), "slurp_id": record.get("slurp_id"),
                             "source_line": number, "raw_text": record.get("sentence"), "text": annotation.transcript,
                             "duration": round(duration, 4), "kind": recording_kind(file)})
        if kept:
            gold.append({**record, "recordings": kept, "_line": number})
    if not utts:
        raise RecipeError(f"{jsonl}: none of its {len(skipped)} recordings could be imported from {audio_dir} "
                          f"(first: {skipped[0].split(chr(9))[2] if skipped else 'no recordings'})")
    corpus_files.write_data_dir(out_dir, utts, extra_tables={"utt2intent": intents})
    corpus_files.write_jsonl(out_dir / "manifest.jsonl", manifest)
    body = "".join(json.dumps({k: v for k, v in r.items() if k != "_line"}, ensure_ascii=False, sort_keys=True) + "\n"
                   for r in sorted(gold, key=lambda r: r["_line"]))
    (out_dir / "slurp.jsonl").write_text(body, encoding="utf-8")
    (out_dir / "skipped.txt").write_text("".join(f"{s}\n" for s in skipped), encoding="utf-8")
    return {**corpus_files.summarize(utts), "sentences": len(gold), "skipped_recordings": len(skipped),
            "skipped_bad_annotations": bad_annotations}


def build(out_root: str | Path = "corpora", *, slurp: str | Path, sets: list[str] | None = None,
          recordings: str = "all", strict: bool = False, quick: bool = False) -> dict[str, Path]:
    """Import the SLURP sets found under ``slurp`` into ``out_root/slurp/data/<set>``; returns set -> dir.

    ``sets`` defaults to every set whose JSONL exists. ``quick`` has no effect (a local copy is
    imported as it is) and exists for the recipe-module interface.
    """
    if recordings not in RECORDING_KINDS:
        raise RecipeError(f"--recordings must be one of {', '.join(RECORDING_KINDS)} (got {recordings!r})")
    slurp_dir = Path(slurp)
    jsonl_dir, audio = find_layout(slurp_dir)
    wanted = sets or [s for s in SETS if (jsonl_dir / f"{s}.jsonl").is_file()]
    unknown = [s for s in wanted if s not in SETS]
    if unknown:
        raise RecipeError(f"unknown SLURP set(s) {unknown}; SLURP has {', '.join(SETS)}")
    root = Path(out_root) / NAME
    options = {"slurp": str(slurp_dir.resolve()), "sets": wanted, "recordings": recordings, "strict": strict}
    code = corpus_files.code_checksum(sys.modules[__name__], corpus_files)
    dirs = {s: root / "data" / s for s in wanted}
    if corpus_files.is_built(root, options, code):
        print(f"{NAME}: up to date in {root}")
        return dirs
    summary = {}
    for set_name in wanted:
        jsonl, audio_dir = jsonl_dir / f"{set_name}.jsonl", audio[SETS[set_name]]
        if not jsonl.is_file():
            raise RecipeError(f"{jsonl}: missing — SLURP's {set_name} set is not in {jsonl_dir}")
        if audio_dir is None:
            raise RecipeError(f"{slurp_dir}: no {SETS[set_name]}/ audio folder for {set_name} (looked in {slurp_dir}, "
                              f"{slurp_dir / 'audio'}, {slurp_dir / 'slurp' / 'audio'}); unpack SLURP's audio there")
        summary[set_name] = import_set(jsonl, audio_dir, dirs[set_name], recordings, strict)
        print(f"{NAME}/{set_name}: {summary[set_name]}"
              + (f" — skipped recordings listed in {dirs[set_name] / 'skipped.txt'}"
                 if summary[set_name]["skipped_recordings"] else ""))
    corpus_files.mark_built(root, options, code, summary)
    return dirs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recipes.slurp", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slurp", required=True, type=Path, help="local SLURP folder (see the layout above)")
    parser.add_argument("--out", default="corpora", type=Path, help="output root (default: corpora)")
    parser.add_argument("--sets", default="", help=f"comma-separated sets (default: every one found of {', '.join(SETS)})")
    parser.add_argument("--recordings", default="all", choices=RECORDING_KINDS,
                        help="which recordings of each sentence: all, headset (close-talk) or far (far-field)")
    parser.add_argument("--strict", action="store_true",
                        help="fail on a sentence whose annotation cannot become a target (default: skip and count it)")
    args = parser.parse_args(argv)
    try:
        build(args.out, slurp=args.slurp, sets=[s for s in args.sets.split(",") if s] or None,
              recordings=args.recordings, strict=args.strict)
    except RecipeError as err:
        print(f"slurp: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
