"""What every recipe writes: Kaldi data dirs, JSONL manifests, and ``.done`` markers.

A corpus lives in one folder (``corpora/<name>/``): ``audio/`` with the FLAC files, ``data/<set>/``
with the Kaldi data dirs plus ``manifest.jsonl`` (how each file was made), and ``.done``: a JSON
record of the build options, the recipe code that ran and a checksum of everything produced.
A corpus counts as built only when that record matches the options and code asked for now and
the files on disk still have the recorded checksum.

Example:
    >>> from recipes.corpus_files import Utterance, write_data_dir
    >>> utts = [Utterance("spk1-0001", "spk1", "hello world", "/tmp/a.flac", 1.2)]
    >>> write_data_dir("/tmp/demo_dir", utts).utt_ids
    ['spk1-0001']
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from speechprompt.data.kaldi_dir import DataDir

MARKER = ".done"
# Kaldi ids: no whitespace; we also keep them to a safe, sort-stable alphabet.
_ID_OK = re.compile(r"^[A-Za-z0-9_.-]+$")


class RecipeError(RuntimeError):
    """A recipe that cannot build its corpus; the message says what to install or fix."""


@dataclass(frozen=True)
class Utterance:
    """One utterance of a data dir; ``utt_id`` must start with ``speaker`` (Kaldi sort order)."""

    utt_id: str
    speaker: str
    text: str
    audio_path: str
    duration: float


def check_id(value: str, what: str) -> str:
    if not _ID_OK.match(value):
        raise RecipeError(f"{what} {value!r} has characters outside [A-Za-z0-9_.-] — Kaldi ids must be plain")
    return value


def write_data_dir(path: str | Path, utterances: list[Utterance],
                   extra_tables: dict[str, dict[str, str]] | None = None) -> DataDir:
    """Write ``wav.scp`` (absolute FLAC paths), ``text``, ``utt2spk``, ``spk2utt``, ``utt2dur``
    and any ``extra_tables`` (e.g. ``utt2intent``), all C-locale sorted."""
    if not utterances:
        raise RecipeError(f"{path}: no utterances for this set — the source holds too little audio for the split")
    seen: set[str] = set()
    for utt in utterances:
        check_id(utt.utt_id, "utterance id")
        check_id(utt.speaker, f"speaker of {utt.utt_id}")
        if not utt.utt_id.startswith(utt.speaker):
            raise RecipeError(f"utterance id {utt.utt_id!r} does not start with its speaker id {utt.speaker!r}")
        if utt.utt_id in seen:
            raise RecipeError(f"utterance id {utt.utt_id!r} appears twice in {path}")
        if not utt.text.strip():
            raise RecipeError(f"utterance {utt.utt_id} has an empty transcript")
        seen.add(utt.utt_id)
    data = DataDir(
        wav_scp={u.utt_id: str(Path(u.audio_path).resolve()) for u in utterances},
        text={u.utt_id: u.text for u in utterances},
        utt2spk={u.utt_id: u.speaker for u in utterances},
        utt2dur={u.utt_id: round(u.duration, 4) for u in utterances},
    )
    path = Path(path)
    data.write(path)
    for name, table in (extra_tables or {}).items():
        missing = seen - set(table)
        if missing:
            raise RecipeError(f"{name}: no entry for {len(missing)} utterances, e.g. {sorted(missing)[0]}")
        (path / name).write_text("".join(f"{k} {table[k]}\n" for k in sorted(seen)), encoding="utf-8")
    data.path = path
    return data


def write_jsonl(path: str | Path, records: list[dict], key: str = "utt_id") -> Path:
    """JSON lines sorted by ``key`` (stable bytes from run to run)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in sorted(records, key=lambda r: r[key]))
    path.write_text(body, encoding="utf-8")
    return path


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def tree_checksum(root: str | Path) -> str:
    """SHA-256 over every file under ``root`` (relative path + bytes), the marker excluded.

    Absolute paths inside files (wav.scp) make the checksum depend on where the corpus lives,
    which is intended: a moved corpus has stale wav.scp files and must be rebuilt.
    """
    root = Path(root)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != MARKER):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def code_checksum(*modules) -> str:
    """SHA-256 of the source files of the given modules (a change in a recipe means a rebuild)."""
    digest = hashlib.sha256()
    for module in modules:
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()


def build_record(options: dict, code: str) -> dict:
    return {"options": options, "code_sha256": code}


def is_built(root: str | Path, options: dict, code: str) -> bool:
    """True when ``root/.done`` records these options and code and the files still match it."""
    marker = Path(root) / MARKER
    if not marker.is_file():
        return False
    try:
        saved = json.loads(marker.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return False
    if {k: saved.get(k) for k in ("options", "code_sha256")} != build_record(options, code):
        return False
    return saved.get("content_sha256") == tree_checksum(root)


def mark_built(root: str | Path, options: dict, code: str, summary: dict) -> Path:
    """Write ``root/.done`` with the options, code checksum, content checksum and a summary."""
    record = {**build_record(options, code), "content_sha256": tree_checksum(root), "summary": summary}
    marker = Path(root) / MARKER
    marker.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return marker


def summarize(utterances: list[Utterance]) -> dict:
    """Hours, speakers and utterances of one set (printed by the recipes and stored in ``.done``)."""
    return {
        "utterances": len(utterances),
        "speakers": len({u.speaker for u in utterances}),
        "hours": round(sum(u.duration for u in utterances) / 3600, 4),
    }
