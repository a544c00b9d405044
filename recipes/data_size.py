"""Print the amount of audio in a data dir as a results-table label (``45s``, ``12min``, ``1.5h``).

Recipes that adapt on a user's data dir label their runs with it, so ``speechprompt report``
orders the table rows by data size.

Examples:
    python -m recipes.data_size data/train        # -> 12min
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from speechprompt.data.kaldi_dir import DataDir, DataDirError


def size_label(seconds: float) -> str:
    """``seconds`` of audio as a short label that ``speechprompt report`` parses back to hours."""
    if seconds < 0:
        raise ValueError(f"seconds must be >= 0, got {seconds}")
    if seconds < 60:
        return f"{round(seconds)}s"
    if seconds < 3600:
        return f"{round(seconds / 60)}min"
    hours = seconds / 3600
    return f"{hours:.1f}h".replace(".0h", "h") if hours < 10 else f"{round(hours)}h"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dir", type=Path, help="Kaldi data dir (utt2dur is used when present)")
    args = parser.parse_args(argv)
    try:
        print(size_label(sum(DataDir.read(args.dir).durations().values())))
    except (DataDirError, ValueError) as err:
        print(f"data_size: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
