"""Validate, fix, subset, combine and describe Kaldi data dirs.

  validate DIR        one line per problem, `file:line: utt_id: problem — how to fix`;
                      exit status 1 when there is any
  fix DIR             keep the consistent, usable utterances; back up what changes to
                      DIR/.backup/<timestamp>/ and report what was dropped and why
  subset DIR OUT      a seeded random subset of at most --seconds of audio
  combine OUT DIR...  merge dirs (id clashes are an error unless --prefix)
  info DIR            utterances, speakers, hours and a duration histogram

examples:
  speechprompt data validate data/train
  speechprompt data validate --no-audio data/train          # structure only, fast
  speechprompt data fix data/train
  speechprompt data subset data/train data/train_10min --seconds 600 --by-speaker --seed 1
  speechprompt data combine data/all data/espeak data/flite --prefix
  speechprompt data info data/train

OUT of subset and combine is never one of the input dirs, and must be new or empty unless
--overwrite is given (then its data dir files are replaced).

Piped wav.scp entries (`sox ... - |`) run commands from the data dir, so they are refused
unless --allow-pipes is given.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from speechprompt.data.audio import AudioError
from speechprompt.data.kaldi_dir import DataDir, DataDirError
from speechprompt.data.output_guard import OutputPathError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="<action>", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--allow-pipes", action="store_true", help="run piped wav.scp commands ('cmd |')")
        return p

    p = command("validate", "report every problem of a data dir, one per line")
    p.add_argument("dir", type=Path)
    p.add_argument("--no-audio", action="store_true", help="check the files' structure only, do not decode audio")
    p.add_argument("--min-seconds", type=float, default=0.025,
                   help="flag shorter audio: the backbone's front-end cannot use it (default 0.025 = 25 ms)")
    p = command("fix", "keep the consistent part of a data dir (with a backup) and report what was dropped")
    p.add_argument("dir", type=Path)
    p.add_argument("--no-audio", action="store_true", help="do not decode audio (keeps unreadable audio)")
    p.add_argument("--no-backup", action="store_true", help="do not copy the original files to DIR/.backup/")
    p = command("subset", "write a seeded random subset with at most --seconds of audio")
    p.add_argument("dir", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--seconds", type=float, required=True, help="audio budget of the subset, in seconds")
    p.add_argument("--by-speaker", action="store_true", help="give every speaker about the same amount of audio")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace the data dir files of a non-empty OUT")
    p = command("combine", "merge data dirs into OUT")
    p.add_argument("out", type=Path)
    p.add_argument("dirs", type=Path, nargs="+")
    p.add_argument("--prefix", action="store_true", help="prefix every id with '<dir name>-' (avoids clashes)")
    p.add_argument("--overwrite", action="store_true", help="replace the data dir files of a non-empty OUT")
    p = command("info", "describe a data dir")
    p.add_argument("dir", type=Path)


def _validate(args) -> int:
    from speechprompt.data.validate import validate

    _, problems = validate(args.dir, allow_pipes=args.allow_pipes, check_audio=not args.no_audio,
                           min_seconds=args.min_seconds)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{args.dir}: {len(problems)} problem(s); 'speechprompt data fix {args.dir}' keeps the "
              "consistent part", file=sys.stderr)
        return 1
    print(f"{args.dir}: OK", file=sys.stderr)
    return 0


def _fix(args) -> int:
    from speechprompt.data.validate import fix, validate

    report = fix(args.dir, allow_pipes=args.allow_pipes, check_audio=not args.no_audio, backup=not args.no_backup)
    print(report.summary())
    _, left = validate(args.dir, allow_pipes=args.allow_pipes, check_audio=not args.no_audio)
    for problem in left:
        print(f"still wrong: {problem}", file=sys.stderr)
    return 1 if left or report.kept == 0 else 0


def _check_out(out: Path, inputs: list[Path], overwrite: bool) -> None:
    """OUT must not be an input; a non-empty OUT is replaced only with --overwrite."""
    from speechprompt.data.output_guard import check_writable_dir, refuse_input_as_output, refuse_non_empty

    refuse_input_as_output(out, inputs, allow_inside=True)
    if not overwrite:
        refuse_non_empty(out)
    check_writable_dir(out, option="OUT")


def _subset(args) -> int:
    from speechprompt.data.ops import subset

    if not (args.seconds > 0 and args.seconds != float("inf")):  # also refuses nan
        raise DataDirError(f"--seconds {args.seconds}: the audio budget must be a positive number of seconds")
    _check_out(args.out, [args.dir], args.overwrite)
    data = DataDir.read(args.dir, allow_pipes=args.allow_pipes)
    part = subset(data, args.seconds, by_speaker=args.by_speaker, seed=args.seed)
    part.write(args.out)
    total = sum(part.durations(write_cache=False).values())
    print(f"{args.out}: {len(part)} of {len(data)} utterances, {total:.1f} s of {args.seconds:g} s requested, "
          f"{len(part.spk2utt())} speaker(s)")
    if total < 0.9 * args.seconds:
        print(f"note: {args.dir} holds only {sum(data.durations().values()):.1f} s that fit the budget",
              file=sys.stderr)
    return 0


def _combine(args) -> int:
    from speechprompt.data.ops import combine

    _check_out(args.out, args.dirs, args.overwrite)
    dirs = [DataDir.read(d, allow_pipes=args.allow_pipes) for d in args.dirs]
    merged = combine(dirs, names=[d.resolve().name for d in args.dirs], prefix=args.prefix)
    merged.write(args.out)
    print(f"{args.out}: {len(merged)} utterances from {len(dirs)} dirs")
    return 0


def _info(args) -> int:
    from speechprompt.data.ops import info

    print(info(DataDir.read(args.dir, allow_pipes=args.allow_pipes)))
    return 0


def run(args) -> int:
    actions = {"validate": _validate, "fix": _fix, "subset": _subset, "combine": _combine, "info": _info}
    try:
        return actions[args.action](args)
    except (DataDirError, AudioError, FileNotFoundError, OutputPathError) as err:
        print(f"speechprompt data {args.action}: {err}", file=sys.stderr)
        if isinstance(err, DataDirError) and err.problems:
            print(f"run 'speechprompt data validate {getattr(args, 'dir', '')}' for details, "
                  "or 'speechprompt data fix' to keep the consistent part", file=sys.stderr)
        return 1
