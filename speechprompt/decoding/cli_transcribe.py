"""Transcribe audio files with one or many task prompts on one frozen backbone.

INPUTS are audio files, folders (searched recursively for audio extensions) or Kaldi ``wav.scp``
files. Each input uses ``--task``, or the task its line in ``--task-list`` names (two columns:
``file_or_id task``), or the only prompt loaded. Inputs are batched by length and a batch may mix
tasks. Output (stdout or ``--output``): ``text`` (one transcript per line, input order), ``jsonl``
(id, task, text, slots for slot-filling prompts, audio and wall seconds, pieces) or ``kaldi`` (``id text``).
A recording longer than a Whisper backbone's 30 s window is cut at pauses into pieces that fit, and
the pieces' texts are joined (``pieces`` in jsonl; slot-filling prompts read one command and are not cut).
Files that cannot be read are reported on stderr and skipped; the rest are transcribed, and the
exit status is 1 when any was skipped.

Examples:
  speechprompt transcribe --backbone exp/backbone --prompt asr=exp/prompt/artifact call.wav
  speechprompt transcribe --backbone exp/backbone --prompt asr=exp/asr/artifact \\
      --prompt slu=exp/slu/artifact --task slu --format jsonl recordings/ > slots.jsonl
  speechprompt transcribe --backbone exp/backbone --prompt asr=exp/asr/artifact \\
      --prompt slu=exp/slu/artifact --task-list tasks.txt --format kaldi data/test/wav.scp
  # tasks.txt:  call1.wav asr
  #             call2.wav slu

Python API (speechprompt.decoding.transcriber):

    from speechprompt.decoding.transcriber import Transcriber
    tr = Transcriber.from_dirs("exp/backbone", {"asr": "exp/asr/artifact", "slu": "exp/slu/artifact"})
    results = tr.transcribe([wave1, wave2], tasks=["asr", "slu"])   # 16 kHz float32 arrays
    results[1].text, results[1].slots
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".sph", ".raw", ".pcm")
PROGRESS_MIN_ITEMS = 20  # shorter inputs get no progress bar


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from speechprompt.decoding.options import add_decoding_arguments

    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT",
                        help="audio files, folders (recursive) or Kaldi wav.scp files")
    parser.add_argument("--backbone", required=True,
                        help="backbone folder, or a fetched name (whisper-tiny.en, whisper-base)")
    parser.add_argument("--prompt", action="append", default=[], metavar="NAME=ARTIFACT_DIR",
                        help="a task prompt to load under NAME; repeat for several. Without any, a released "
                             "checkpoint transcribes as it is (its own tokenizer; --language for multilingual ones)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--task", help="the task every input uses (default: the only prompt)")
    which.add_argument("--task-list", type=Path, help="two columns per line: file_or_id task")
    parser.add_argument("--format", choices=("text", "jsonl", "kaldi"), default="text", help="output format")
    parser.add_argument("--output", type=Path, help="write here instead of stdout")
    parser.add_argument("--tokenizer", type=Path, help="tokenizer folder, for artifacts that carry none")
    add_decoding_arguments(parser)
    parser.add_argument("--allow-pipes", action="store_true", help="allow 'cmd |' entries in wav.scp")


class InputError(ValueError):
    pass


def parse_prompts(values: list[str]) -> dict[str, Path]:
    prompts: dict[str, Path] = {}
    for value in values:
        name, sep, directory = value.partition("=")
        if not sep or not name or not directory:
            raise InputError(f"--prompt {value!r}: write NAME=ARTIFACT_DIR")
        if name in prompts:
            raise InputError(f"--prompt {value!r}: the name {name!r} is used twice")
        prompts[name] = Path(directory)
    return prompts


def collect_inputs(inputs: list[Path]) -> list[tuple[str, str]]:
    """(id, audio source) pairs in input order: files, folder contents (sorted), wav.scp entries."""
    from speechprompt.data.kaldi_dir import DataDirError, read_table

    found: list[tuple[str, str]] = []
    for path in inputs:
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
            if not files:
                raise InputError(f"{path}: no audio files ({', '.join(AUDIO_EXTENSIONS)}) in this folder")
            found += [(str(p), str(p)) for p in files]
        elif path.name == "wav.scp" or path.suffix == ".scp":
            problems: list = []
            table, _ = read_table(path, problems, 2, None)
            problems = [p for p in problems if p.kind != "unsorted"]  # order does not matter here
            if problems:
                raise DataDirError(problems)
            found += list(table.items())
        elif path.exists():
            found.append((str(path), str(path)))
        else:
            raise InputError(f"{path}: no such file or folder")
    ids = [key for key, _ in found]
    if len(set(ids)) != len(ids):
        repeated = sorted({k for k in ids if ids.count(k) > 1})
        raise InputError(f"inputs name the same id more than once: {repeated[:5]}; give each file once")
    return found


def read_task_list(path: Path, sources: list[tuple[str, str]]) -> dict[str, str]:
    """id -> task from ``file_or_id task`` lines; a line may name an id, a path as given, or the same file."""
    by_key = {}
    for key, source in sources:
        by_key[key] = key
        by_key.setdefault(source, key)
        if not source.rstrip().endswith("|"):
            by_key.setdefault(str(Path(source).resolve()), key)
    tasks: dict[str, str] = {}
    unmatched = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 2:
            raise InputError(f"{path}:{number}: expected 'file_or_id task', got {line!r}")
        name, task = fields
        key = by_key.get(name) or by_key.get(str(Path(name).resolve()))
        if key is None:
            unmatched.append(f"{path}:{number}: {name}")
        else:
            tasks[key] = task
    if unmatched:
        print(f"speechprompt transcribe: {len(unmatched)} task-list line(s) match no input, ignored: "
              + "; ".join(unmatched[:5]), file=sys.stderr)
    return tasks


def make_items(sources: list[tuple[str, str]], tasks: dict[str, str], default: str | None, allow_pipes: bool):
    from speechprompt.data.audio import AudioError, audio_duration, load_audio
    from speechprompt.decoding.transcriber import AudioItem

    items = []
    for key, source in sources:
        try:  # the header gives the duration for length bucketing; unreadable files are reported at load
            duration = audio_duration(source, utt_id=key, allow_pipes=allow_pipes)
        except AudioError:
            duration = None
        load = lambda s=source, k=key: load_audio(s, utt_id=k, allow_pipes=allow_pipes)  # noqa: E731
        items.append(AudioItem(key, load, tasks.get(key, default), duration))
    return items


def format_result(fmt: str, key: str, result) -> str:
    if fmt == "text":
        return result.text
    if fmt == "kaldi":
        return f"{'_'.join(key.split())} {result.text}".rstrip()
    record = {"id": key, "task": result.task, "text": result.text}
    if result.slots is not None:
        record["slots"] = result.slots
    record["audio_seconds"] = round(result.seconds, 3)
    record["wall_seconds"] = round(result.wall_seconds, 4)
    record["pieces"] = result.pieces  # > 1: longer than the backbone's window, decoded in pieces cut at pauses
    return json.dumps(record, ensure_ascii=False)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from speechprompt.backbones import BackboneError
    from speechprompt.data.kaldi_dir import DataDirError
    from speechprompt.data.output_guard import refuse_input_file_as_output
    from speechprompt.data.whisper_tokenizer import TokenizerError
    from speechprompt.decoding.options import check_decoding_options, transcriber_from_args
    from speechprompt.decoding.transcriber import Failure
    from speechprompt.tuning import ArtifactError

    try:
        from speechprompt.data.output_guard import check_writable_file

        check_decoding_options(args)
        if args.output is not None:
            check_writable_file(args.output)
        prompts = parse_prompts(args.prompt)
        if args.task is not None and prompts and args.task not in prompts:
            raise InputError(f"--task {args.task!r} is not one of the loaded prompts {sorted(prompts)}")
        sources = collect_inputs(args.inputs)
        tasks = read_task_list(args.task_list, sources) if args.task_list else {}
        refuse_input_file_as_output(args.output, [*args.inputs, *(s for _, s in sources if not s.endswith("|")),
                                                  *([args.task_list] if args.task_list else [])])
        transcriber = transcriber_from_args(args)
        for name, directory in prompts.items():
            transcriber.add_task(name, directory, args.tokenizer, args.language)
        if not prompts:
            transcriber.add_zero_shot("default", args.language)
    except (InputError, ArtifactError, BackboneError, DataDirError, TokenizerError, FileNotFoundError,
            ValueError) as err:
        print(f"speechprompt transcribe: {err}", file=sys.stderr)
        return 2
    items = make_items(sources, tasks, args.task, args.allow_pipes)
    from speechprompt.decoding.cli_decode import watch_silence

    silent = watch_silence(items)
    results, failures = {}, []
    short = len(items) < PROGRESS_MIN_ITEMS
    with tqdm(total=len(items), unit="file", disable=True if short else None, file=sys.stderr) as bar:
        for item, outcome in transcriber.transcribe_items(items, on_batch=bar.update):
            if isinstance(outcome, Failure):
                failures.append(outcome)
                bar.write(f"speechprompt transcribe: skipped {outcome.key}: {outcome.reason}", file=sys.stderr)
            else:
                results[item.key] = outcome
    lines = [format_result(args.format, key, results[key]) + "\n" for key, _ in sources if key in results]
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text("".join(lines), encoding="utf-8")
    else:
        sys.stdout.writelines(lines)
        sys.stdout.flush()
    if silent.report("input(s)"):
        print(f"speechprompt transcribe: {silent.report('input(s)')}", file=sys.stderr)
    if failures:
        print(f"speechprompt transcribe: {len(failures)} of {len(items)} input(s) skipped, "
              f"{len(results)} transcribed", file=sys.stderr)
        return 1
    return 0
