"""Decode a Kaldi data dir with a frozen backbone and task artifact(s): batched greedy or beam search.

Each utterance uses the task prompt its ``utt2task`` line names, or the only task loaded. Writes to
``--out``: ``hyp.trn`` and ``ref.trn`` (sclite: ``words (utt_id)``), ``text`` (Kaldi hypotheses),
and ``decode.json`` (utterances, audio seconds, wall seconds, real-time factor, settings, failures).
References are normalised as training targets are (slot markup kept for slot-filling tasks).
Utterances whose audio cannot be read are listed (id and reason) and counted, the rest decoded;
the exit status is 1 when any failed.

Examples:
  speechprompt decode --backbone exp/backbone --task exp/prompt/artifact --data data/test \\
      --out exp/prompt/decode_test
  speechprompt decode --backbone exp/backbone --task exp/prompt/artifact --data data/test \\
      --out exp/prompt/decode_test_beam4 --beam 4 --length-penalty 1.0 --device cuda --precision bf16
  speechprompt decode --backbone exp/backbone --task asr=exp/asr/artifact --task slu=exp/slu/artifact \\
      --data data/mixed_test --out exp/mixed/decode      # data/mixed_test/utt2task names asr or slu
  speechprompt score --task asr --ref exp/prompt/decode_test/ref.trn --hyp exp/prompt/decode_test/hyp.trn
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from speechprompt.decoding.options import add_decoding_arguments

    parser.add_argument("--backbone", required=True, help="backbone folder, or a fetched name (whisper-tiny.en)")
    parser.add_argument("--task", required=True, action="append", metavar="[NAME=]ARTIFACT_DIR",
                        help="task artifact; repeat for several (NAME= renames a single-task artifact)")
    parser.add_argument("--data", required=True, type=Path, help="Kaldi data dir to decode")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--tokenizer", type=Path, help="tokenizer folder, when an artifact carries none")
    add_decoding_arguments(parser)
    parser.add_argument("--allow-pipes", action="store_true", help="allow 'cmd |' entries in wav.scp")


def parse_task_arg(value: str) -> tuple[str | None, Path]:
    """``NAME=DIR`` or ``DIR`` (a directory may itself contain '=': it wins when it exists)."""
    if "=" in value and not Path(value).exists():
        name, _, directory = value.partition("=")
        if not name:
            raise ValueError(f"--task {value!r}: empty name before '='; write NAME=ARTIFACT_DIR")
        return name, Path(directory)
    return None, Path(value)


def items_of(data, slu_tasks: set[str]):
    """AudioItems of a DataDir (durations from utt2dur/segments when known) and normalised references."""
    from speechprompt.data.text import normalize_text
    from speechprompt.decoding.transcriber import AudioItem
    from speechprompt.score.slu_format import SLU_MARKUP

    items, refs = [], {}
    for utt in data.utt_ids:
        task = data.utt2task.get(utt) if data.utt2task else None
        duration = data.utt2dur.get(utt)
        if duration is None and data.segments is not None:
            duration = data.segments[utt].end - data.segments[utt].start
        items.append(AudioItem(utt, lambda u=utt: data.load_audio(u), task, duration))
        if utt in data.text:
            refs[utt] = normalize_text(data.text[utt], keep=SLU_MARKUP if task in slu_tasks else "")
    return items, refs


def check_out_is_not_data(out: Path, data: Path) -> None:
    """``--out`` may be neither the data dir, nor inside it, nor another data dir (its text would be lost)."""
    from speechprompt.data.output_guard import (
        check_writable_dir,
        refuse_data_dir_as_output,
        refuse_input_as_output,
    )

    refuse_input_as_output(out, [data], option="--out")
    refuse_data_dir_as_output(out)
    check_writable_dir(out)


def write_trn(path: Path, texts: dict[str, str]) -> None:
    path.write_text("".join(f"{text} ({utt})\n" if text else f"({utt})\n" for utt, text in sorted(texts.items())),
                    encoding="utf-8")


def run(args: argparse.Namespace) -> int:
    from speechprompt.backbones import BackboneError
    from speechprompt.data.kaldi_dir import DataDir, DataDirError
    from speechprompt.data.whisper_tokenizer import TokenizerError
    from speechprompt.decoding.options import check_decoding_options, transcriber_from_args
    from speechprompt.decoding.transcriber import Failure
    from speechprompt.tuning import ArtifactError

    try:
        check_decoding_options(args)
        check_out_is_not_data(args.out, args.data)
        data = DataDir.read(args.data, allow_pipes=args.allow_pipes)
        if not len(data):
            raise DataDirError(f"{args.data}: no utterances (utt2spk is empty) — nothing to decode")
        transcriber = transcriber_from_args(args)
        for value in args.task:
            name, directory = parse_task_arg(value)
            transcriber.add_task(name, directory, args.tokenizer, args.language)
    except (ArtifactError, BackboneError, DataDirError, TokenizerError, FileNotFoundError, ValueError) as err:
        print(f"speechprompt decode: {err}", file=sys.stderr)
        return 2
    if data.utt2task is None and len(transcriber.tasks) != 1:
        print(f"speechprompt decode: {args.data} has no utt2task, but {len(transcriber.tasks)} tasks are loaded "
              f"({transcriber.tasks}); add utt2task or pass one --task", file=sys.stderr)
        return 2
    unknown = sorted(set((data.utt2task or {}).values()) - set(transcriber.tasks))
    if unknown:
        used = sum(task in unknown for task in data.utt2task.values())
        print(f"speechprompt decode: {args.data}/utt2task names task(s) {unknown} ({used} utterance(s)) but the "
              f"loaded tasks are {transcriber.tasks}; name them with --task NAME=ARTIFACT_DIR", file=sys.stderr)
        return 2
    slu_tasks = {t for t, info in transcriber.task_info.items() if info.slu}
    items, refs = items_of(data, slu_tasks)
    silent = watch_silence(items)
    hyps: dict[str, str] = {}
    failures: list[Failure] = []
    audio_seconds = 0.0
    start = time.perf_counter()
    for item, outcome in transcriber.transcribe_items(items):
        if isinstance(outcome, Failure):
            failures.append(outcome)
            print(f"speechprompt decode: skipped {outcome.key}: {outcome.reason}", file=sys.stderr)
            continue
        hyps[item.key] = outcome.text
        audio_seconds += outcome.seconds
    wall = time.perf_counter() - start
    notes = report_doubtful_inputs(silent, refs, args.data)
    write_outputs(args, transcriber, hyps, refs, failures, audio_seconds, wall, len(items), notes)
    rtf = wall / audio_seconds if audio_seconds else float("nan")
    print(f"decoded {len(hyps)} of {len(items)} utterances ({audio_seconds:.1f} s of audio) in {wall:.1f} s: "
          f"RTF {rtf:.4f}; results in {args.out}")
    if failures:
        print(f"speechprompt decode: {len(failures)} utterance(s) could not be decoded (listed above and in "
              f"{args.out / 'decode.json'})", file=sys.stderr)
        return 1
    return 0


def scoring_normalizer(transcriber) -> str:
    """How these hypotheses are to be scored: the first task's tokenizer says (Whisper's normalisers for a
    released checkpoint's text, else the toolkit's own training normaliser)."""
    infos = list(transcriber.task_info.values())
    return infos[0].tokenizer.scoring_normalizer if infos else "speechprompt"


def watch_silence(items):
    """Note every all-silent utterance as it is loaded (it is still decoded)."""
    from speechprompt.data.silence import SilentAudio

    silent = SilentAudio()
    for item in items:
        item.load = silent.watch(item.key, item.load)
    return silent


def report_doubtful_inputs(silent, refs: dict[str, str], data: Path) -> dict[str, list[str]]:
    """Print the count and ids of all-silent audio and of references that normalise to nothing."""
    notes = {"silent_audio": sorted(silent.ids), "empty_references": sorted(u for u, r in refs.items() if not r)}
    message = silent.report()
    if message:
        print(f"speechprompt decode: {message}", file=sys.stderr)
    empty = notes["empty_references"]
    if empty:
        print(f"speechprompt decode: {len(empty)} reference(s) in {data}/text normalise to nothing (scored as "
              f"empty): {' '.join(empty[:10])}{' ...' if len(empty) > 10 else ''}", file=sys.stderr)
    return notes


def write_outputs(args, transcriber, hyps, refs, failures, audio_seconds, wall, total, notes=None) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    write_trn(args.out / "hyp.trn", hyps)
    # references of the decoded utterances only, so that scoring compares like with like
    write_trn(args.out / "ref.trn", {u: r for u, r in refs.items() if u in hyps})
    (args.out / "text").write_text("".join(f"{u} {t}".rstrip() + "\n" for u, t in sorted(hyps.items())),
                                   encoding="utf-8")
    summary = {
        "normalizer": scoring_normalizer(transcriber),
        "utterances": total,
        "decoded": len(hyps),
        "failed": [{"utt_id": f.key, "reason": f.reason} for f in failures],
        "without_reference": sorted(set(hyps) - set(refs)),
        **(notes or {}),
        "audio_seconds": round(audio_seconds, 3),
        "wall_seconds": round(wall, 3),
        "real_time_factor": round(wall / audio_seconds, 5) if audio_seconds else None,
        "settings": {
            "backbone": str(args.backbone), "tasks": {t: str(i.artifact) for t, i in transcriber.task_info.items()},
            "data": str(args.data), "beam": args.beam, "length_penalty": args.length_penalty,
            "ctc_weight": args.ctc_weight,
            "max_len": args.max_len, "max_len_ratio": transcriber.max_len_ratio, "batch_seconds": args.batch_seconds,
            "max_repeats": args.max_repeats, "pad_to_window": getattr(transcriber.backbone, "pad_to_window", None), "language": args.language,
            "device": args.device, "precision": transcriber.precision, "dtype": transcriber.dtype,
        },
    }
    (args.out / "decode.json").write_text(json.dumps(summary, indent=2) + "\n")
