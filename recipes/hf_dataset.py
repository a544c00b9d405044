"""Bring your own corpus: a locally stored Hugging Face ``datasets`` audio dataset -> Kaldi data dir.

Accepted sources (nothing is downloaded):
  * a folder written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk`` (pick ``--split``),
  * one ``.parquet`` file, or a folder of them,
  * an ``audiofolder`` folder (audio files + ``metadata.csv`` / ``metadata.jsonl`` with the text).

Column names are options (``--audio-column audio --text-column text --speaker-column speaker
--id-column id``); without a speaker column every utterance is its own speaker, without an id
column rows are numbered. Audio is read from the stored bytes or path (no decoding backend of
``datasets`` is needed), converted to 16 kHz mono and written as FLAC. Transcripts go through the
project's ``normalize_text`` unless ``--keep-text``; rows whose transcript is empty are skipped
and counted.

Examples:
    python -m recipes.hf_dataset ~/hf/my_corpus --split train --name mycorpus --set train
    python -m recipes.hf_dataset data.parquet --text-column sentence --speaker-column client_id --name cv --set test
    python -m recipes.hf_dataset ./my_audiofolder --text-column transcription --name demo --set all
"""

from __future__ import annotations

import argparse
import io
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import soundfile as sf

from recipes import corpus_files
from recipes.corpus_files import RecipeError, Utterance
from speechprompt.data.audio import check_samples, to_mono_16k, write_audio
from speechprompt.data.text import normalize_text


def load_local(source: str | Path, split: str | None = None, cache_dir: str | Path | None = None):
    """A ``datasets.Dataset`` from a save_to_disk folder, parquet file(s) or an audiofolder."""
    import datasets

    source = Path(source)
    if not source.exists():
        raise RecipeError(f"{source}: no such file or folder")
    saved = source.is_dir() and any((source / f).is_file() for f in ("dataset_info.json", "dataset_dict.json", "state.json"))
    if saved:
        loaded = datasets.load_from_disk(str(source))
    elif source.suffix == ".parquet" or (source.is_dir() and any(source.rglob("*.parquet"))):
        files = [str(source)] if source.is_file() else sorted(str(p) for p in source.rglob("*.parquet"))
        loaded = datasets.load_dataset("parquet", data_files=files, cache_dir=cache_dir)
    elif source.is_dir():
        loaded = read_audiofolder(source, split)
    else:
        raise RecipeError(f"{source}: not a save_to_disk folder, a parquet file or an audiofolder")
    if isinstance(loaded, datasets.DatasetDict):
        if split is None:
            if len(loaded) != 1:
                raise RecipeError(f"{source} holds splits {sorted(loaded)}: choose one with --split")
            split = next(iter(loaded))
        if split not in loaded:
            raise RecipeError(f"{source}: no split {split!r}; it has {sorted(loaded)}")
        loaded = loaded[split]
    return loaded


def read_audiofolder(source: Path, split: str | None):
    """An audiofolder (``metadata.csv``/``metadata.jsonl`` with a ``file_name`` column beside the audio)
    as a Dataset whose audio cells are ``{"path", "bytes": None}``.

    Read here rather than with ``load_dataset("audiofolder")``, which needs an audio decoding
    backend (torchcodec) just to list the files. ``split`` names a sub-folder (``train/``, ...).
    """
    import csv
    import json

    import datasets

    folder = source / split if split else source
    metadata = [folder / name for name in ("metadata.csv", "metadata.jsonl") if (folder / name).is_file()]
    if not metadata:
        subfolders = sorted(p.name for p in source.iterdir() if p.is_dir() and any(p.glob("metadata.*")))
        hint = f"; choose a split with --split ({', '.join(subfolders)})" if subfolders and not split else ""
        raise RecipeError(f"{folder}: no metadata.csv or metadata.jsonl (columns file_name, text, ...){hint}")
    path = metadata[0]
    with path.open(encoding="utf-8") as handle:
        if path.suffix == ".csv":
            rows = list(csv.DictReader(handle))
        else:
            rows = [json.loads(line) for line in handle if line.strip()]
    for number, row in enumerate(rows, start=2 if path.suffix == ".csv" else 1):
        if "file_name" not in row:
            raise RecipeError(f"{path}:{number}: no file_name column — audiofolder metadata must name each audio file")
        row["audio"] = {"path": str((folder / row.pop("file_name")).resolve()), "bytes": None}
    return datasets.Dataset.from_list(rows)


def read_audio_value(value, row: int, base: Path) -> np.ndarray:
    """An audio cell (``{"bytes", "path"}`` or ``{"array", "sampling_rate"}``) -> (S,) float32 16 kHz."""
    label = f"row {row}"
    if not isinstance(value, dict):
        raise RecipeError(f"{label}: audio cell is {type(value).__name__}, expected an Audio feature or a dict")
    if value.get("array") is not None:
        samples = np.asarray(value["array"], dtype=np.float32)
        rate = int(value.get("sampling_rate") or 0)
        if not rate:
            raise RecipeError(f"{label}: audio array without sampling_rate")
    else:
        handle = io.BytesIO(value["bytes"]) if value.get("bytes") else None
        if handle is None and value.get("path"):
            path = Path(value["path"])
            handle = path if path.is_absolute() else base / path
        if handle is None:
            raise RecipeError(f"{label}: audio cell has neither bytes nor a path")
        try:
            samples, rate = sf.read(handle, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as err:
            raise RecipeError(f"{label}: cannot decode audio {value.get('path') or '(bytes)'}: {err}") from err
    check_samples(samples, label)
    return to_mono_16k(samples, rate)


def _kaldi_id(value) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", str(value))


def import_dataset(source: str | Path, out_root: str | Path = "corpora", *, name: str, set_name: str,
                   split: str | None = None, audio_column: str = "audio", text_column: str = "text",
                   speaker_column: str | None = None, id_column: str | None = None, keep_text: bool = False) -> Path:
    """Write ``out_root/name/data/set_name`` from a local dataset; returns the data dir."""
    import datasets

    corpus_files.check_id(name, "corpus name")
    corpus_files.check_id(set_name, "set name")
    root = Path(out_root) / name
    dataset = load_local(source, split, cache_dir=Path(out_root) / "_hf_cache")
    wanted = [c for c in (audio_column, text_column, speaker_column, id_column) if c]
    missing = [c for c in wanted if c not in dataset.column_names]
    if missing:
        raise RecipeError(f"{source}: no column(s) {missing}; columns are {dataset.column_names} — "
                          "set --audio-column/--text-column/--speaker-column/--id-column")
    if isinstance(dataset.features[audio_column], datasets.Audio):
        dataset = dataset.cast_column(audio_column, datasets.Audio(decode=False))
    base = Path(source) if Path(source).is_dir() else Path(source).parent
    utts, records, report = [], [], Counter()
    for row, example in enumerate(dataset):
        raw = example[text_column]
        text = (raw or "").strip() if keep_text else normalize_text(raw or "")
        if not text:
            report["rows skipped: empty transcript"] += 1
            continue
        key = _kaldi_id(example[id_column]) if id_column else f"{row:07d}"
        speaker = _kaldi_id(example[speaker_column]) if speaker_column else key
        utt_id = key if key.startswith(speaker) else f"{speaker}-{key}"
        samples = read_audio_value(example[audio_column], row, base)
        flac = write_audio(root / "audio" / set_name / f"{utt_id}.flac", samples)
        utts.append(Utterance(utt_id, speaker, text, str(flac), samples.shape[0] / 16000))
        records.append({"utt_id": utt_id, "row": row, "raw_text": raw, "text": text,
                        "duration": round(samples.shape[0] / 16000, 4), "sha256": corpus_files.file_sha256(flac)})
    if not utts:
        raise RecipeError(f"{source}: no usable rows ({dict(report) or 'the dataset is empty'})")
    target = root / "data" / set_name
    corpus_files.write_data_dir(target, utts)
    corpus_files.write_jsonl(target / "manifest.jsonl", records)
    report["rows imported"] = len(utts)
    print(f"{name}/{set_name}: {corpus_files.summarize(utts)}; " + ", ".join(f"{k} {v}" for k, v in sorted(report.items())))
    return target


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", type=Path, help="save_to_disk folder, .parquet file/folder, or audiofolder")
    parser.add_argument("--name", required=True, help="corpus name: the data goes to OUT/NAME/data/SET")
    parser.add_argument("--set", dest="set_name", required=True, help="set name, e.g. train, dev, test")
    parser.add_argument("--split", default=None, help="split of a DatasetDict (default: the only one)")
    parser.add_argument("--out", default="corpora", help="output root (default: corpora)")
    parser.add_argument("--audio-column", default="audio")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--speaker-column", default=None, help="default: every utterance its own speaker")
    parser.add_argument("--id-column", default=None, help="default: the row number")
    parser.add_argument("--keep-text", action="store_true", help="copy transcripts verbatim instead of normalising them")


def run(args: argparse.Namespace) -> int:
    try:
        import_dataset(args.source, args.out, name=args.name, set_name=args.set_name, split=args.split,
                       audio_column=args.audio_column, text_column=args.text_column,
                       speaker_column=args.speaker_column, id_column=args.id_column, keep_text=args.keep_text)
    except RecipeError as err:
        print(f"hf_dataset import: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(cli)
    sys.exit(run(cli.parse_args()))
