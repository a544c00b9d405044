"""Bring your own corpus: validate an existing Kaldi data dir and import it into our layout.

The source dir is read and checked (every structural problem is listed with file, line and
utterance id; nothing is imported from a broken dir). Each utterance — a whole recording, or a
``segments`` slice of one, from any format libsndfile reads or, with ``--allow-pipes``, a
``cmd |`` entry — is decoded, converted to 16 kHz mono and written as its own FLAC file, so the
imported dir needs no segments and no pipes. Transcripts go through the project's
``normalize_text`` unless ``--keep-text``; ``utt2task`` is carried over.

Output: ``OUT/<name>/data/<set>/`` (wav.scp, text, utt2spk, spk2utt, utt2dur, manifest.jsonl) and
``OUT/<name>/audio/<set>/*.flac``.

Examples:
    python -m recipes.kaldi_dir /data/mycorpus/data/train --name mycorpus --set train
    python -m recipes.kaldi_dir ~/kaldi/egs/x/data/test --name x --set test --allow-pipes --out corpora
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from recipes import corpus_files
from recipes.corpus_files import RecipeError, Utterance
from speechprompt.data.audio import AudioError, write_audio
from speechprompt.data.kaldi_dir import DataDir, DataDirError
from speechprompt.data.text import normalize_text


def import_data_dir(source: str | Path, out_root: str | Path = "corpora", *, name: str, set_name: str,
                    allow_pipes: bool = False, keep_text: bool = False) -> Path:
    """Import ``source`` as ``out_root/name/data/set_name``; returns the new data dir.

    Raises :class:`DataDirError` listing the source's problems, or :class:`RecipeError` naming the
    utterance whose audio cannot be decoded or whose transcript is empty after normalisation.
    """
    corpus_files.check_id(name, "corpus name")
    corpus_files.check_id(set_name, "set name")
    data = DataDir.read(source, allow_pipes=allow_pipes)
    if not data.text:
        raise RecipeError(f"{source}: no 'text' file — an ASR data dir needs transcripts")
    root = Path(out_root) / name
    target = root / "data" / set_name
    utts, records = [], []
    for utt_id in data.utt_ids:
        corpus_files.check_id(utt_id, f"utterance id in {source}/utt2spk")
        text = data.text[utt_id] if keep_text else normalize_text(data.text[utt_id])
        if not text:
            raise RecipeError(f"{source}/text: utterance {utt_id}: transcript {data.text[utt_id]!r} is empty after "
                              "normalisation — fix it, remove the utterance, or pass --keep-text")
        try:
            samples = data.load_audio(utt_id)
        except AudioError as err:
            raise RecipeError(f"{source}: {err} (run 'speechprompt data fix {source}' to drop broken utterances)") from err
        flac = write_audio(root / "audio" / set_name / f"{utt_id}.flac", samples)
        speaker = data.utt2spk[utt_id]
        utts.append(Utterance(utt_id, speaker, text, str(flac), samples.shape[0] / 16000))
        wav_entry, start, end = data.source_of(utt_id)
        records.append({"utt_id": utt_id, "source_dir": str(Path(source).resolve()), "source": wav_entry,
                        "start": start, "end": end, "raw_text": data.text[utt_id], "text": text,
                        "duration": round(samples.shape[0] / 16000, 4), "sha256": corpus_files.file_sha256(flac)})
    if not utts:
        raise RecipeError(f"{source}: the data dir has no utterances")
    _reject_prefix_problems(utts)
    written = corpus_files.write_data_dir(target, utts)
    if data.utt2task is not None:
        written.utt2task = dict(data.utt2task)
        written.write(target)
    corpus_files.write_jsonl(target / "manifest.jsonl", records)
    summary = corpus_files.summarize(utts)
    print(f"{name}/{set_name}: imported from {source}: {summary}")
    return target


def _reject_prefix_problems(utts: list[Utterance]) -> None:
    for utt in utts:
        if not utt.utt_id.startswith(utt.speaker):
            raise RecipeError(f"utterance {utt.utt_id!r} does not start with its speaker id {utt.speaker!r}: Kaldi "
                              "needs speaker-prefixed utterance ids so utt2spk and spk2utt sort alike — rename the ids "
                              "(e.g. '<speaker>-<utt>') in every file of the source dir")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", type=Path, help="existing Kaldi data dir (wav.scp, text, utt2spk[, segments])")
    parser.add_argument("--name", required=True, help="corpus name: the import goes to OUT/NAME/data/SET")
    parser.add_argument("--set", dest="set_name", required=True, help="set name, e.g. train, dev, test")
    parser.add_argument("--out", default="corpora", help="output root (default: corpora)")
    parser.add_argument("--allow-pipes", action="store_true", help="run 'cmd |' entries of wav.scp (trusted dirs only)")
    parser.add_argument("--keep-text", action="store_true", help="copy transcripts verbatim instead of normalising them")


def run(args: argparse.Namespace) -> int:
    try:
        import_data_dir(args.source, args.out, name=args.name, set_name=args.set_name,
                        allow_pipes=args.allow_pipes, keep_text=args.keep_text)
    except (DataDirError, RecipeError) as err:
        print(f"kaldi_dir import: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(cli)
    sys.exit(run(cli.parse_args()))
