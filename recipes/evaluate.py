"""Decode and score every run of an adaptation sweep on another test set, without retraining.

For each ``<adapt-exp>/<backbone>/<size>/<method>/seed<k>/result.json`` written by ``recipes.adapt``,
the run's task artifact (``train/artifact``) decodes ``--test`` into ``<run>/eval_<name>/decode``,
is scored into ``<run>/eval_<name>/score``, and a result.json with the run's fields (metrics and
test set replaced) goes to ``<out>/<backbone>/<size>/<method>/seed<k>/result.json``, so that
``speechprompt report <out>`` writes the table for that test set. Decoding uses the ``decode:``
section of the same configs the sweep used (``--conf``, ``--quick``). A finished step is not redone.

Examples:
  python -m recipes.evaluate --adapt exp/adapt --backbone exp/wav2seq --test corpora/librispeech/data/test_other \\
      --conf conf --out exp/eval_test_other
  speechprompt report exp/eval_test_other --out RESULTS.test_other.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from recipes import adapt
from recipes.corpus_files import RecipeError


def evaluate_run(result_path: Path, adapt_root: Path, args: argparse.Namespace) -> Path:
    """Decode + score one run on ``args.test``; returns the new result.json path."""
    from speechprompt.results import read_run, write_result

    run = read_run(result_path)
    run_dir = result_path.parent
    out_path = Path(args.out) / run_dir.relative_to(adapt_root) / "result.json"
    if out_path.is_file():
        print(f"[{run.method} seed {run.seed}] done already: {out_path}")
        return out_path
    artifact = run_dir / "train" / "artifact"
    if not (artifact / "task.json").is_file():
        raise RecipeError(f"{result_path}: its task artifact {artifact} is missing — rerun the adaptation stage")
    name = args.name or Path(args.test).name
    decode_dir, score_dir = run_dir / f"eval_{name}" / "decode", run_dir / f"eval_{name}" / "score"
    task = argparse.Namespace(backbone=args.backbone, test=args.test, task=run.task, gold=args.gold,
                              normalizer=args.normalizer)
    if not (decode_dir / "decode.json").is_file():
        settings = adapt.method_config(args.conf, run.method, args.quick).get("decode", {})
        adapt.decode(task, artifact, decode_dir, settings)
    if not (score_dir / adapt.TASK_METRIC_FILE[run.task]).is_file():
        adapt.score(task, decode_dir, score_dir)
    fields = json.loads(result_path.read_text(encoding="utf-8"))
    fields.update(metrics=score_dir, test_set=name)
    return write_result(out_path, **fields)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adapt", required=True, type=Path, help="experiment root of the sweep (recipes.adapt --exp)")
    parser.add_argument("--backbone", required=True, help="the backbone folder the sweep adapted")
    parser.add_argument("--test", required=True, help="the other test data dir")
    parser.add_argument("--name", help="name of the test set in paths and tables (default: the dir's name)")
    parser.add_argument("--gold", help="slu: SLURP JSONL gold of the test set (default <test>/slurp.jsonl)")
    parser.add_argument("--conf", action="append", type=Path,
                        help="the sweep's config folder(s), as given to recipes.adapt (for the decode: settings; "
                             "default conf)")
    parser.add_argument("--normalizer", default="auto",
                        help="asr: text normaliser of the scoring, as recipes.adapt --normalizer (default auto)")
    parser.add_argument("--quick", action="store_true", help="the sweep ran with --quick")
    parser.add_argument("--out", required=True, type=Path, help="where the new result.json files go")
    args = parser.parse_args(argv)
    args.conf = args.conf or [Path("conf")]
    results = sorted(args.adapt.rglob("result.json"))
    if not results:
        print(f"evaluate: no result.json under {args.adapt} — run the adaptation stage first", file=sys.stderr)
        return 1
    try:
        for path in results:
            evaluate_run(path, args.adapt, args)
    except (RecipeError, ValueError) as err:
        print(f"evaluate: {err}", file=sys.stderr)
        return 1
    print(f"evaluate: {len(results)} run(s) scored on {args.test}; results under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
