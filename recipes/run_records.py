"""Run records: the few small files of a finished adaptation run, kept in the repository next to RESULTS.md.

A run's ``exp/`` folder (checkpoints, artifacts, decodings) stays on the machine that made it. Its record
(``result.json``, ``inputs.json``, ``wall_seconds.json``, the score's ``*.json`` and the decoded hypotheses
with their references, ``decode/{hyp,ref}.trn`` and ``decode.json``) is copied to
``<records>/<backbone-name>/<size>/<method>/seed<k>/`` and committed, so that the table it feeds can be
checked, and finished later, by anyone: ``recipes.adapt --records DIR`` restores a run from its record
instead of training it again when the record's inputs match the run's (the same merged config and
options, data dirs and backbone of the same content, wherever they lie on this machine). A full recipe
takes more CPU hours than one sitting gives, so its runs are finished over several sittings this way.

Matching is by content, not by path: each path in ``inputs.json`` is compared as its last part and a
SHA-256 of the small text files that define it (a data dir's transcripts and durations, a backbone's
config), so a clone elsewhere or a rebuilt corpus with the same content matches, and a changed corpus
or config does not (that run is trained again).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

RECORD_FILES = ("result.json", "inputs.json", "wall_seconds.json")
# the test decoding: what the score was computed from, so a record can be checked and scored again
# (another text normaliser) without its weights; records made before they were kept lack them. The
# references only for asr: slot filling is scored against the test set's gold, identified in the inputs
DECODE_FILES = {"asr": ("hyp.trn", "ref.trn", "decode.json"), "slu": ("hyp.trn", "decode.json")}
PATH_KEYS = ("backbone", "tokenizer", "train", "dev", "test", "gold")
# the files that define a data dir or a backbone; wav.scp is left out: it holds this machine's paths
DEFINING_FILES = ("text", "text_slu", "utt2spk", "utt2dur", "segments", "slurp.jsonl", "config.json",
                  "speechprompt_backbone.json", "tokenizer.json", "pretrain.json")


def path_identity(path: str | None) -> dict | None:
    """``{'name': its last part, 'sha256': of its defining files}`` of a file or folder (None stays None)."""
    if path is None:
        return None
    where = Path(path)
    digest = hashlib.sha256()
    files = [where] if where.is_file() else [where / name for name in DEFINING_FILES if (where / name).is_file()]
    for file in files:
        digest.update(file.name.encode() + b"\0" + file.read_bytes() + b"\0")
    return {"name": where.name, "sha256": digest.hexdigest() if files else None}


def portable_inputs(inputs: dict) -> dict:
    """``inputs`` (recipes.adapt.run_inputs) with every path replaced by its identity."""
    out = dict(inputs)
    for key in PATH_KEYS:
        if key in out:
            out[key] = path_identity(fetched_folder(out[key]) if key == "backbone" else out[key])
    return out


def fetched_folder(backbone: str | None) -> str | None:
    """A released checkpoint given by name (recorded as a path that does not exist) -> its fetched folder."""
    if backbone is None or Path(backbone).exists():
        return backbone
    from speechprompt.backbones.fetch import FetchError, resolve_backbone

    try:
        return str(resolve_backbone(Path(backbone).name))
    except FetchError:
        return backbone


def record_dir(records: Path, run_dir: Path) -> Path:
    """``<records>/<backbone>/<size>/<method>/seed<k>`` for ``<exp>/<backbone>/<size>/<method>/seed<k>``."""
    return Path(records, *run_dir.parts[-4:])


def save_record(run_dir: Path, records: Path) -> Path:
    """Copy a finished run's record into ``records``; its inputs are stored in portable form."""
    target = record_dir(records, run_dir)
    if target.exists():
        shutil.rmtree(target)
    (target / "score").mkdir(parents=True)
    for name in RECORD_FILES:
        if (run_dir / name).is_file():
            shutil.copy2(run_dir / name, target / name)
    inputs = json.loads((run_dir / "inputs.json").read_text(encoding="utf-8"))
    (target / "portable_inputs.json").write_text(
        json.dumps(portable_inputs(inputs), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    for score_file in sorted((run_dir / "score").glob("*.json")):
        shutil.copy2(score_file, target / "score" / score_file.name)
    task = json.loads((run_dir / "result.json").read_text(encoding="utf-8")).get("task", "asr")
    copy_present(run_dir / "decode", target / "decode", DECODE_FILES[task])
    return target


def copy_present(source: Path, target: Path, names: tuple[str, ...]) -> None:
    """Copy those of ``names`` that exist in ``source`` into ``target`` (created only if one does)."""
    for name in names:
        if (source / name).is_file():
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / name, target / name)


def restore_record(run_dir: Path, records: Path, inputs: dict) -> Path | None:
    """Put a matching record's files into ``run_dir``; returns the record's folder, or None.

    A record whose portable inputs differ from these (another config, corpus or backbone) is left
    alone and the run is trained again; its record is replaced when that run finishes."""
    source = record_dir(records, run_dir)
    recorded = source / "portable_inputs.json"
    if not (recorded.is_file() and (source / "result.json").is_file()):
        return None
    if json.loads(recorded.read_text(encoding="utf-8")) != portable_inputs(inputs):
        return None
    (run_dir / "score").mkdir(parents=True, exist_ok=True)
    for name in RECORD_FILES:
        if (source / name).is_file() and name != "inputs.json":
            shutil.copy2(source / name, run_dir / name)
    for score_file in sorted((source / "score").glob("*.json")):
        shutil.copy2(score_file, run_dir / "score" / score_file.name)
    copy_present(source / "decode", run_dir / "decode", DECODE_FILES["asr"])  # those the record has
    # this machine's inputs, so that a later change of config is still noticed (forget_outdated_run)
    (run_dir / "inputs.json").write_text(json.dumps(inputs, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return source
