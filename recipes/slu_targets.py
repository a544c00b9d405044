"""Slot-filling training targets: ``<dir>/text_slu`` from the gold ``<dir>/slurp.jsonl`` of each data dir.

Each line is ``utt_id intent | words [ type : filler ] words`` (speechprompt.score.slu_format), the
text a slot-filling model learns to generate; ``speechprompt train data.text_file=text_slu
data.output=slu`` trains on it and ``speechprompt score --task slu`` reads the same format back.
An annotation belongs to an utterance through its recording: ``recordings[].utt_id`` when given,
else the recording's file name without extension (SLURP's ``audio-1490200123-headset``).

Every utterance of the data dir needs one annotation (an error names the utterance); annotations
of recordings that are not in the data dir are counted and reported (SLURP lists recordings that
an import may skip). An annotation whose transcript differs from the utterance's ``text`` is
counted and the first few are shown: text and gold should say the same words.

Examples:
  python -m recipes.slu_targets corpora/synth_slu/data/train_200 corpora/synth_slu/data/dev
  python -m recipes.slu_targets corpora/slurp/data/test --gold /data/slurp/test.jsonl --name text_slu
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from speechprompt.data.kaldi_dir import DataDir
from speechprompt.data.text import normalize_text
from speechprompt.score.slu_format import SLU_MARKUP, SluFormatError, read_slurp_jsonl

TARGET_FILE = "text_slu"
GOLD_FILE = "slurp.jsonl"


class TargetError(ValueError):
    """Gold annotations that do not fit the data dir; the message names files, lines and utterances."""


@dataclass
class TargetReport:
    data_dir: Path
    written: int = 0
    unused_recordings: list[str] = field(default_factory=list)  # gold recordings without an utterance
    transcript_mismatches: list[str] = field(default_factory=list)  # 'utt: text != gold' lines

    def lines(self) -> list[str]:
        out = [f"{self.data_dir / TARGET_FILE}: {self.written} targets"]
        if self.unused_recordings:
            out.append(f"  {len(self.unused_recordings)} gold recording(s) not in the data dir, skipped "
                       f"(e.g. {', '.join(self.unused_recordings[:3])})")
        if self.transcript_mismatches:
            out.append(f"  {len(self.transcript_mismatches)} utterance(s) whose text differs from the gold words:")
            out += [f"    {m}" for m in self.transcript_mismatches[:5]]
        return out


def recording_utt_ids(path: Path) -> dict[int, list[str]]:
    """Line number -> utterance ids of the recordings on that line (``utt_id``, else file stem)."""
    out: dict[int, list[str]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        record = json.loads(line)  # read_slurp_jsonl has already reported bad JSON with its line
        ids = []
        for recording in record.get("recordings") or []:
            if isinstance(recording, dict) and (recording.get("utt_id") or recording.get("file")):
                ids.append(str(recording.get("utt_id") or Path(recording["file"]).stem))
        out[number] = ids
    return out


def targets_of(data_dir: Path, gold: Path) -> tuple[dict[str, str], TargetReport]:
    """utt_id -> target text for every utterance of ``data_dir``, from SLURP-style ``gold``."""
    data = DataDir.read(data_dir)
    try:
        records = read_slurp_jsonl(gold, normalize_text)
    except SluFormatError as err:
        raise TargetError(str(err)) from err
    ids_by_line = recording_utt_ids(gold)
    report = TargetReport(data_dir)
    annotations, where = {}, {}
    for record in records:
        ids = ids_by_line.get(record.line) or [Path(i).stem for i in record.ids]
        for utt in ids:
            if utt in annotations:
                raise TargetError(f"{gold}:{record.line}: recording {utt} already annotated on line {where[utt]}")
            annotations[utt], where[utt] = record.annotation, record.line
    utts = data.utt_ids
    missing = [u for u in utts if u not in annotations]
    if missing:
        raise TargetError(f"{gold}: no annotation for {len(missing)} of {len(utts)} utterance(s) of {data_dir} "
                          f"(first: {', '.join(missing[:5])}); every utterance needs a record whose recordings "
                          f"name it (recordings[].utt_id or file)")
    report.unused_recordings = sorted(set(annotations) - set(utts))
    targets = {}
    for utt in utts:
        annotation = annotations[utt]
        target = annotation.to_text()
        if normalize_text(target, keep=SLU_MARKUP) != target:  # the training normaliser must not change it
            raise TargetError(f"{gold}:{where[utt]}: {utt}: target {target!r} changes under normalisation")
        targets[utt] = target
        if utt in data.text and normalize_text(data.text[utt]) != annotation.transcript:
            report.transcript_mismatches.append(f"{utt}: {normalize_text(data.text[utt])!r} != {annotation.transcript!r}")
    return targets, report


def write_targets(data_dir: str | Path, gold: str | Path | None = None, name: str = TARGET_FILE) -> TargetReport:
    """Write ``<data_dir>/<name>`` (Kaldi text, C-locale sorted) from ``gold`` (default ``<data_dir>/slurp.jsonl``)."""
    data_dir = Path(data_dir)
    gold = Path(gold) if gold else data_dir / GOLD_FILE
    if not gold.is_file():
        raise TargetError(f"{gold}: no gold annotations (SLURP JSONL) for {data_dir}")
    targets, report = targets_of(data_dir, gold)
    body = "".join(f"{utt} {targets[utt]}\n" for utt in sorted(targets))
    tmp = data_dir / f".{name}.tmp"
    tmp.write_text(body, encoding="utf-8")
    tmp.replace(data_dir / name)
    report.written = len(targets)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recipes.slu_targets", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dirs", nargs="+", type=Path, help="Kaldi data dirs, each with slurp.jsonl beside text")
    parser.add_argument("--gold", type=Path, help="SLURP JSONL to use instead of <dir>/slurp.jsonl (one data dir only)")
    parser.add_argument("--name", default=TARGET_FILE, help=f"target file written in each dir (default {TARGET_FILE})")
    args = parser.parse_args(argv)
    if args.gold and len(args.data_dirs) > 1:
        parser.error("--gold names the annotations of one data dir; give one data dir with it")
    try:
        for data_dir in args.data_dirs:
            print("\n".join(write_targets(data_dir, args.gold, args.name).lines()))
    except (TargetError, ValueError) as err:
        print(f"slu_targets: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
