"""Check committed run records against the hypotheses they keep: score each record's ``decode/hyp.trn``
again, as recipes.adapt scored it, and compare with the metrics of its ``result.json``.

A RESULTS.md is written from the records' result.json files (``speechprompt report``); this checks the step
before it, that each result.json holds what its hypotheses score. ASR records are scored against their kept
``decode/ref.trn`` after the text normaliser their ``score/wer.json`` names; slot-filling records against the
test set's gold (--gold). Records made before hypotheses were kept are counted and skipped.

Example:
  python -m recipes.verify_records egs/synth/asr/records egs/asterisk/asr/records
  python -m recipes.verify_records egs/synth/slu/records --gold egs/synth/slu/corpora/synth_slu/data/test/slurp.jsonl
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import sys
import tempfile
from pathlib import Path

# the figures compared: a RESULTS.md shows these
CHECKED = {"asr": ("wer", "cer"), "slu": ("slu_f1", "span_f1", "intent_accuracy", "wer")}


def rescore(record: Path, task: str, gold: Path | None) -> dict[str, float]:
    """The metrics of ``record``'s kept hypotheses, scored as recipes.adapt scores them."""
    from speechprompt.cli import main as speechprompt
    from speechprompt.results import score_metrics

    decode = record / "decode"
    if task == "asr":
        from speechprompt.score.wer import recorded_normalizer

        normalizer = recorded_normalizer(json.loads((record / "score" / "wer.json").read_text(encoding="utf-8")))
        options = ["--ref", str(decode / "ref.trn"), "--normalizer", normalizer]
    else:
        if gold is None:
            raise SystemExit(f"verify_records: {record} is a slot-filling record: give the test set's --gold")
        options = ["--ref", str(gold)]
    with tempfile.TemporaryDirectory() as out, contextlib.redirect_stdout(io.StringIO()):
        status = speechprompt(["score", "--task", task, "--hyp", str(decode / "hyp.trn"), "--out", out, *options])
        if status != 0:
            raise SystemExit(f"verify_records: scoring {decode} failed (exit {status})")
        return score_metrics(Path(out))


def verify(record: Path, gold: Path | None) -> list[str]:
    """The differences between ``record``'s result.json and its rescored hypotheses ([] when they agree)."""
    result = json.loads((record / "result.json").read_text(encoding="utf-8"))
    task = result.get("task", "asr")
    again = rescore(record, task, gold)
    return [f"{name} {result['metrics'].get(name)} recorded, {again.get(name)} rescored"
            for name in CHECKED[task]
            if name in result["metrics"] and not math.isclose(result["metrics"][name], again.get(name, math.nan),
                                                              abs_tol=1e-6)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("records", nargs="+", type=Path, help="records folders (recipes.adapt --records)")
    p.add_argument("--gold", type=Path, help="slot filling: the test set's SLURP JSONL gold")
    args = p.parse_args(argv)
    checked, without, wrong = 0, [], []
    for folder in args.records:
        results = sorted(folder.rglob("result.json"))
        if not results:
            print(f"verify_records: no result.json under {folder}", file=sys.stderr)
            return 1
        for path in results:
            record = path.parent
            if not (record / "decode" / "hyp.trn").is_file():
                without.append(record)
                continue
            checked += 1
            wrong += [f"{record}: {d}" for d in verify(record, args.gold)]
    print(f"verify_records: {checked} record(s) rescored from their hypotheses, {len(wrong)} difference(s); "
          f"{len(without)} record(s) keep no hypotheses (made before they were kept)")
    for line in wrong:
        print(f"  {line}")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
