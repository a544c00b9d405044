"""Check a RESULTS.md written by `speechprompt report`: every expected method has a row, per data
size and table, and every metric cell (the primary metric and those shown with --also, e.g. span_f1,
intent_accuracy, wer of slot filling) holds a finite number. CI runs this on the --quick recipes.

Example:
  python -m recipes.check_results egs/synth/asr/RESULTS.md \\
      --methods finetune,prompt,deep_prompt,ulpt,mept,lora,adapter
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

DEFAULT_METHODS = "finetune,prompt,deep_prompt,ulpt,mept,lora,adapter"
_NUMBER = re.compile(r"^[+-]?\d+(?:\.\d+)?")


def read_tables(text: str) -> list[list[dict[str, str]]]:
    """Markdown tables of ``text`` as lists of {column: cell}."""
    tables, rows, head = [], [], None
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if head is None:
                head = cells
            elif not set("".join(cells)) <= set("-: "):
                rows.append(dict(zip(head, cells, strict=False)))
        elif head is not None:
            tables.append(rows)
            rows, head = [], None
    return tables


def _metric_columns(head: list[str]) -> list[str]:
    """The primary metric ('... better)') and the further metrics after it (report --also), up to 'seeds'."""
    first = next((i for i, c in enumerate(head) if "better" in c), None)
    if first is None:
        return []
    end = head.index("seeds") if "seeds" in head[first:] else first + 1
    return head[first:end]


def check(path: Path, methods: list[str]) -> list[str]:
    problems = []
    tables = read_tables(path.read_text(encoding="utf-8"))
    if not tables:
        return [f"{path}: no results table"]
    for number, rows in enumerate(tables, 1):
        metric_columns = _metric_columns(list(rows[0])) if rows else []
        if not metric_columns:
            problems.append(f"{path}: table {number} has no metric column")
            continue
        for size in sorted({r["data"] for r in rows}):
            present = {r["method"] for r in rows if r["data"] == size}
            for method in methods:
                if method not in present:
                    problems.append(f"{path}: table {number}, data {size}: no row for method '{method}'")
        for row in rows:
            for column in metric_columns:
                match = _NUMBER.match(row[column])
                if not match or not math.isfinite(float(match.group())):
                    problems.append(f"{path}: table {number}, {row['data']} {row['method']}: "
                                    f"'{column}' is not a finite number ({row[column]!r})")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path)
    parser.add_argument("--methods", default=DEFAULT_METHODS, help="comma-separated methods that need a row")
    args = parser.parse_args(argv)
    if not args.results.is_file():
        print(f"check_results: {args.results} does not exist: did the report stage run?", file=sys.stderr)
        return 1
    problems = check(args.results, [m for m in args.methods.split(",") if m])
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"check_results: {args.results}: every method has a finite result")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
