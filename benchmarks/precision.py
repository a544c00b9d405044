"""Precision robustness: WER of trained task artifacts and of the zero-shot backbone under fp32, bf16, int8.

For every task artifact given (prompt, ulpt, deep_prompt, lora, finetune, ...) and for the backbone as it
is (a released checkpoint's zero-shot task, on its 30 s window and on the true length the trained tasks
encode), on the first N utterances of a test set, one run decodes
through the path of ``speechprompt transcribe --precision P`` (its own parser and ``transcriber_from_args``):

- fp32: as trained;
- bf16: bfloat16 autocast (CPU or GPU); weights and task tables stay float32 in memory;
- int8: the frozen backbone's nn.Linear layers dynamically quantised (``quantize_dynamic``, per row),
  after the task is loaded; the task's own tables (prompts, LoRA, adapters) stay float32 and are not
  quantised (checked after each int8 run and said in the output);
- int8-decoder: the same for all but the encoder's layers.

Per task: WER under each precision (normalised as ``speechprompt score --normalizer auto`` would), the
change against fp32, and the real-time factor of each. ``--random METHOD`` adds an artifact of METHOD
with random values made here (for smoke runs: its WER means nothing).

    python benchmarks/precision.py --backbone whisper-tiny.en --test corpora/synth/data/test -n 200 \\
        --artifact prompt=exp/prompt/artifact --artifact lora=exp/lora/artifact --artifact finetune=exp/ft/artifact \\
        --threads 2 --out docs/bench/precision_tiny_en.md
    python benchmarks/precision.py --backbone whisper-tiny.en --test corpora/synth/data/test -n 3 --random prompt lora
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import torch
from bench_report import command_line, load_utterances, machine_line, set_threads, table, write_out

PRECISIONS = ("fp32", "bf16", "int8", "int8-decoder")
ZERO_SHOT = "zero-shot backbone"
RANDOM_OPTIONS = {"prompt": {"num_prompts": 50}, "ulpt": {"num_prompts": 50, "rank": 4},
                  "deep_prompt": {"num_prompts": 10}, "lora": {"rank": 8}, "adapter": {"bottleneck": 32}}


def decode(args, artifact: Path | None, precision: str, waves, durations, extra: tuple[str, ...] = ()):
    """(texts, wall seconds, transcriber) of ``speechprompt transcribe --precision [extra]`` with one task
    (artifact None: zero-shot)."""
    from speechprompt.decoding.cli_transcribe import add_arguments
    from speechprompt.decoding.options import check_decoding_options, transcriber_from_args
    from speechprompt.decoding.transcriber import AudioItem, Failure

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    options = parser.parse_args(["-", "--backbone", args.backbone, "--precision", precision, "--beam", str(args.beam),
                                 *(["--language", args.language] if args.language else []), *extra])
    check_decoding_options(options)
    transcriber = transcriber_from_args(options)
    if artifact is None:
        transcriber.add_zero_shot("task", options.language)
    else:
        transcriber.add_task("task", artifact, None, options.language)
    items = [AudioItem(str(i), lambda w=w: w, None, d) for i, (w, d) in enumerate(zip(waves, durations, strict=True))]
    list(transcriber.transcribe_items(items[:1]))  # warm-up (int8: quantises here)
    start = time.perf_counter()
    done = {int(item.key): outcome for item, outcome in transcriber.transcribe_items(items)}
    wall = time.perf_counter() - start
    return ["" if isinstance(done[i], Failure) else done[i].text for i in range(len(waves))], wall, transcriber


def task_tables_stay_float32(transcriber) -> bool:
    """The method's own parameters are float32 and none of its modules is quantised."""
    from speechprompt.backbones.precision import quantized_linear_count

    method = transcriber.model.method
    return all(p.dtype == torch.float32 for p in method.parameters()) and quantized_linear_count(method) == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", required=True, help="backbone folder or fetched name")
    parser.add_argument("--test", required=True, help="Kaldi data dir")
    parser.add_argument("--language", help="language of a multilingual checkpoint (e.g. cs)")
    parser.add_argument("--artifact", action="append", default=[], metavar="NAME=DIR", help="trained task (repeat)")
    parser.add_argument("--random", nargs="*", default=[], choices=sorted(RANDOM_OPTIONS),
                        help="also artifacts of these methods with random values (smoke runs)")
    parser.add_argument("--no-zero-shot", action="store_true", help="leave out the backbone's own zero-shot row")
    parser.add_argument("-n", type=int, default=200, help="first N utterances (default 200)")
    parser.add_argument("--beam", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", help="also write the markdown section here")
    args = parser.parse_args()
    set_threads(args.threads)
    logging.getLogger("speechprompt.data.dataset").setLevel(logging.ERROR)

    from speechprompt.decoding.cli_decode import scoring_normalizer
    from speechprompt.decoding.transcriber import load_backbone
    from speechprompt.score.wer import get_normalizer, score_transcripts

    ids, waves, refs, durations = load_utterances(args.test, args.n, 30.0)
    audio = sum(durations)
    work = tempfile.TemporaryDirectory(prefix="precision-")
    # name -> (artifact or None for zero-shot, extra transcribe options). The checkpoint zero-shot twice: on its
    # 30 s window (as released) and on the true length, the way the trained tasks encode, so that each task
    # has a backbone reference under the same formats and the same input length.
    tasks: dict[str, tuple[Path | None, tuple[str, ...]]] = {}
    if not args.no_zero_shot:
        tasks[ZERO_SHOT] = (None, ("--pad-to-window",))
        tasks[f"{ZERO_SHOT}, true length"] = (None, ("--no-pad-to-window",))
    for value in args.artifact:
        name, _, directory = value.partition("=")
        tasks[name] = (Path(directory), ())
    if args.random:
        from task_artifacts import random_artifacts

        backbone = load_backbone(args.backbone)
        for method in args.random:
            made = random_artifacts(backbone, Path(work.name) / method, 1, method, RANDOM_OPTIONS[method], args.language)
            tasks[f"{method} (random values)"] = (made[0], ())
    rows, checks, notes = [], [], []
    if ZERO_SHOT in tasks and not getattr(load_backbone(args.backbone), "is_released_checkpoint", False):
        tasks = {name: task for name, task in tasks.items() if not name.startswith(ZERO_SHOT)}
        notes.append("No zero-shot row: the backbone is not a released checkpoint (it has no tokenizer of its own).")
    for name, (artifact, extra) in tasks.items():
        wers, rtfs = {}, {}
        for precision in PRECISIONS:
            texts, wall, transcriber = decode(args, artifact, precision, waves, durations, extra)
            normaliser = scoring_normalizer(transcriber)
            wers[precision] = score_transcripts(refs, dict(zip(ids, texts, strict=True)), get_normalizer(normaliser)).word.rate
            rtfs[precision] = wall / audio
            if precision.startswith("int8"):
                checks.append(f"{name}, {precision}: {transcriber.quantized_layers} Linear layers int8, task tables float32 "
                              f"{'yes' if task_tables_stay_float32(transcriber) else 'NO'}")
            print(f"  {name}, {precision}: WER {wers[precision]:.1f}, RTF {rtfs[precision]:.3f}", file=sys.stderr, flush=True)
            del transcriber
        rows.append([name, *(f"{wers[p]:.1f}" for p in PRECISIONS), *(f"{wers[p] - wers['fp32']:+.1f}" for p in PRECISIONS[1:]),
                     *(f"{rtfs[p]:.3f}" for p in PRECISIONS)])
    work.cleanup()
    header = ["task", *(f"WER {p}" for p in PRECISIONS), *(f"{p} - fp32" for p in PRECISIONS[1:]),
              *(f"RTF {p}" for p in PRECISIONS)]
    section = (f"### Precision robustness: {args.backbone} on {args.test}\n\n{len(ids)} utterances, {audio:.0f} s of "
               f"audio; beam {args.beam}; WER % after the checkpoint's scoring normaliser; {machine_line(args.threads)}.\n\n"
               f"Command: `{command_line('precision.py')}`\n\n" + table(header, rows) + "\n\n"
               + "int8 runs: " + "; ".join(checks) + ". " + " ".join(notes) + "\n")
    print(section)
    write_out(args.out, section)


if __name__ == "__main__":
    main()
