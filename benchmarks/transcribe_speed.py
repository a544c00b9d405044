"""Transcription speed and WER of a released Whisper checkpoint: speechprompt against transformers and faster-whisper.

On the first N utterances of a test set (those within the 30 s window), with the same number of threads
for every system, one run measures side by side:

- speechprompt through the code path of ``speechprompt transcribe`` (its own command-line parser and
  ``transcriber_from_args``, the checkpoint as its zero-shot task, ``Transcriber.transcribe_items``),
  greedy and beam 4, batch 1 and batched (``--batch-seconds``), the encoder on the 30 s window
  (``--pad-to-window``, the released checkpoints' default) in float32 and int8 (``--precision int8``,
  ``--precisions``) and on the true length (``--no-pad-to-window``, the default of models built here);
  with ``--artifact NAME=DIR``, also with a trained task loaded, encoding as it was trained, in each of
  ``--precisions`` (the way ``speechprompt transcribe --prompt`` serves a task);
- transformers ``WhisperForConditionalGeneration.generate`` on ``WhisperFeatureExtractor``'s 30 s
  features, as its users run it (``language=``/``task=`` for multilingual checkpoints, ``num_beams``),
  batch 1 and the same batches as speechprompt's;
- faster-whisper int8 and float32 on the CTranslate2 copy of the same checkpoint (``--ct2`` or
  ``--wheel-dir``), one ``WhisperModel.transcribe`` call per utterance as its users run it, greedy and beam 4.
  Its rows are skipped, saying why, when faster-whisper is not installed; it may live in a virtual
  environment of its own (``--faster-whisper-python``), never in speechprompt's dependencies.

Per row: wall seconds, real-time factor (wall / audio), audio seconds per second, WER after the normaliser
``speechprompt score --normalizer auto`` applies to this checkpoint's output (Whisper's English or basic
normaliser), and the RTF relative to faster-whisper int8 with the same beam (x1.00 = as fast). Every
system decodes the same preloaded arrays once after a warm-up utterance; model loading is not timed.

    python benchmarks/transcribe_speed.py --backbone whisper-tiny.en --test corpora/synth/data/test \\
        --ct2 /path/to/ct2/tiny.en -n 100 --threads 2 --out docs/bench/transcribe_speed_tiny_en.md
    python benchmarks/transcribe_speed.py --backbone whisper-base --language cs \\
        --test corpora/fillets_cs/data/test --wheel-dir wheels/ -n 100 --threads 2
    python benchmarks/transcribe_speed.py ... -n 3 --quick      # smoke run: greedy only
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from bench_report import command_line, load_utterances, machine_line, set_threads, table, write_out

BATCH_ONE_SECONDS = 1e-3  # --batch-seconds below any utterance: every batch holds one


# ---------------------------------------------------------------- speechprompt: the transcribe command's path
def speechprompt_run(args, waves, durations, beam: int, batched: bool, window: bool | None, precision: str = "fp32",
                     artifact: str | None = None):
    """Texts and wall seconds of ``speechprompt transcribe`` with these options on the preloaded waves: zero-shot,
    or the trained task ``artifact`` (window None: encode as the artifact was trained)."""
    from speechprompt.decoding.cli_transcribe import add_arguments
    from speechprompt.decoding.options import check_decoding_options, transcriber_from_args
    from speechprompt.decoding.transcriber import AudioItem, Failure

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    argv = ["-", "--backbone", args.backbone, "--beam", str(beam),
            "--batch-seconds", str(args.batch_seconds if batched else BATCH_ONE_SECONDS),
            *([] if window is None else ["--pad-to-window" if window else "--no-pad-to-window"]), "--precision", precision,
            *(["--language", args.language] if args.language else [])]
    options = parser.parse_args(argv)
    check_decoding_options(options)
    transcriber = transcriber_from_args(options)
    if artifact is None:
        transcriber.add_zero_shot("default", options.language)
    else:
        transcriber.add_task("default", artifact, None, options.language)

    def items():
        return [AudioItem(str(i), lambda w=w: w, None, d) for i, (w, d) in enumerate(zip(waves, durations, strict=True))]

    list(transcriber.transcribe_items(items()[:1]))  # warm-up
    start = time.perf_counter()
    done = {int(item.key): outcome for item, outcome in transcriber.transcribe_items(items())}
    wall = time.perf_counter() - start
    texts = ["" if isinstance(done[i], Failure) else done[i].text for i in range(len(waves))]
    return texts, wall, transcriber


def speechprompt_batches(durations, batch_seconds: float) -> list[list[int]]:
    """The batches ``transcribe_items`` forms (length buckets of at most ``batch_seconds`` padded audio)."""
    from speechprompt.data.dataset import LengthBucketSampler

    return LengthBucketSampler(durations, batch_seconds, shuffle=False).all_batches()


# ---------------------------------------------------------------- transformers
def transformers_run(folder: Path, waves, batches, beam: int, language: str | None):
    from transformers import AutoTokenizer, WhisperFeatureExtractor, WhisperForConditionalGeneration
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # 30 s features need no attention mask; generate's notes say nothing here
    model = WhisperForConditionalGeneration.from_pretrained(str(folder), local_files_only=True).eval()
    extractor = WhisperFeatureExtractor(feature_size=model.config.num_mel_bins)
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    options = {"language": language, "task": "transcribe"} if model.generation_config.is_multilingual else {}

    def run(groups):
        out = {}
        for group in groups:
            features = extractor([waves[i] for i in group], sampling_rate=16000, return_tensors="pt").input_features
            generated = model.generate(features, num_beams=beam, do_sample=False, **options)
            for index, text in zip(group, tokenizer.batch_decode(generated, skip_special_tokens=True), strict=True):
                out[index] = text.strip()
        return out

    with torch.inference_mode():
        run([batches[0][:1]])  # warm-up
        start = time.perf_counter()
        out = run(batches)
        wall = time.perf_counter() - start
    return [out[i] for i in range(len(waves))], wall


# ---------------------------------------------------------------- faster-whisper
def faster_whisper_run(args, waves, beams: list[int], work: Path) -> tuple[dict | None, str]:
    """(result of faster_whisper_rows.run, note): in this process when faster_whisper imports, else in
    ``--faster-whisper-python``; None with the reason when neither can."""
    ct2 = args.ct2
    if ct2 is None and args.wheel_dir is not None:
        from speechprompt.backbones.fetch import unpack_ct2

        ct2 = str(unpack_ct2(Path(args.backbone).name, work / "ct2", args.wheel_dir))
    if ct2 is None:
        return None, "faster-whisper rows skipped: give the CTranslate2 copy of the checkpoint (--ct2 or --wheel-dir)"
    np.savez(work / "audio.npz", **{f"a{i}": w for i, w in enumerate(waves)})
    request = {"model_dir": ct2, "audio": str(work / "audio.npz"), "compute_types": ["int8", "float32"],
               "beams": beams, "threads": args.threads, "language": args.language}
    if args.faster_whisper_python:
        (work / "request.json").write_text(json.dumps(request))
        script = Path(__file__).with_name("faster_whisper_rows.py")
        done = subprocess.run([args.faster_whisper_python, str(script), str(work / "request.json"), str(work / "result.json")],
                              capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
        if done.returncode != 0:
            return None, f"faster-whisper rows skipped: {args.faster_whisper_python} failed: {done.stderr.strip()[-400:]}"
        return json.loads((work / "result.json").read_text()), f"faster-whisper run by {args.faster_whisper_python}"
    try:
        import faster_whisper  # noqa: F401
    except ImportError:
        return None, ("faster-whisper rows skipped: faster_whisper is not installed here (pip install faster-whisper, "
                      "e.g. into its own venv, then --faster-whisper-python that-venv/bin/python)")
    import faster_whisper_rows

    return faster_whisper_rows.run(request), "faster-whisper run in this process"


# ---------------------------------------------------------------- the table
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", required=True, help="released checkpoint: folder or fetched name (whisper-tiny.en)")
    parser.add_argument("--test", required=True, help="Kaldi data dir")
    parser.add_argument("--language", help="language of a multilingual checkpoint (e.g. cs)")
    parser.add_argument("-n", type=int, default=100, help="first N utterances (default 100)")
    parser.add_argument("--threads", type=int, default=1, help="threads for every system (default 1)")
    parser.add_argument("--beam", type=int, default=4, help="the beam rows' size (default 4)")
    parser.add_argument("--batch-seconds", type=float, default=60.0,
                        help="batched rows: padded audio seconds per batch, as transcribe's --batch-seconds (default 60)")
    parser.add_argument("--ct2", help="CTranslate2 folder of the same checkpoint, for faster-whisper")
    parser.add_argument("--wheel-dir", help="the pinned wheels of the checkpoint (unpacked for faster-whisper)")
    parser.add_argument("--faster-whisper-python", help="python of a venv with faster-whisper (default: this one)")
    parser.add_argument("--skip", nargs="*", default=[], choices=("transformers", "faster-whisper", "true-length"),
                        help="leave these rows out")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "int8"], choices=("fp32", "bf16", "int8", "int8-decoder"),
                        help="speechprompt rows on the 30 s window in these --precision settings (default fp32 int8; "
                             "the true-length rows are fp32)")
    parser.add_argument("--artifact", action="append", default=[], metavar="NAME=DIR",
                        help="also a trained task (repeat): speechprompt rows with it loaded, encoding as it was "
                             "trained, in each of --precisions")
    parser.add_argument("--quick", action="store_true", help="greedy rows only (smoke runs)")
    parser.add_argument("--out", help="also write the markdown section here")
    args = parser.parse_args()
    set_threads(args.threads)
    logging.getLogger("speechprompt.data.dataset").setLevel(logging.ERROR)  # batch 1: 'longer than max_seconds'

    from speechprompt.backbones.fetch import resolve_backbone
    from speechprompt.decoding.cli_decode import scoring_normalizer
    from speechprompt.score.wer import get_normalizer, score_transcripts

    folder = resolve_backbone(args.backbone)
    ids, waves, refs, durations = load_utterances(args.test, args.n, 30.0)
    audio = sum(durations)
    beams = [1] if args.quick else [1, args.beam]
    batches = speechprompt_batches(durations, args.batch_seconds)
    machine = machine_line(args.threads)
    rows, normaliser = [], None

    def add(system: str, beam: int, batch: str, texts: list[str], wall: float):
        hyps = dict(zip(ids, texts, strict=True))
        wer = score_transcripts(refs, hyps, get_normalizer(normaliser)).word.rate
        rows.append({"system": system, "beam": beam, "batch": batch, "wall": wall, "wer": wer})
        print(f"  {system}, beam {beam}, {batch}: {wall:.1f} s, RTF {wall / audio:.3f}, WER {wer:.1f}", file=sys.stderr,
              flush=True)

    batched_label = f"batched ({len(batches)} batches, <= {args.batch_seconds:g} s)"
    # (encoder input: True = 30 s window, False = true length, None = as the task was trained; precision; task)
    modes = [(True, p, None) for p in args.precisions] + ([] if "true-length" in args.skip else [(False, "fp32", None)])
    for value in args.artifact:
        name, _, directory = value.partition("=")
        modes += [(None, p, (name, directory)) for p in args.precisions]
    for window, precision, task in modes:
        mode = (f"task {task[0]}" if task else "30 s window" if window else "true length") + (
            "" if precision == "fp32" else f", {precision}")
        for beam in beams:
            for batched in (False, True):
                texts, wall, transcriber = speechprompt_run(args, waves, durations, beam, batched, window, precision,
                                                            task[1] if task else None)
                normaliser = normaliser or scoring_normalizer(transcriber)
                add(f"speechprompt, {mode}", beam, batched_label if batched else "1", texts, wall)
                del transcriber
    if "transformers" not in args.skip:
        for beam in beams:
            for label, groups in (("1", [[i] for i in range(len(waves))]), (batched_label, batches)):
                texts, wall = transformers_run(folder, waves, groups, beam, args.language)
                add("transformers generate, 30 s window", beam, label, texts, wall)
    notes = []
    versions = {}
    if "faster-whisper" not in args.skip:
        with tempfile.TemporaryDirectory(prefix="fw-") as work:
            result, note = faster_whisper_run(args, waves, beams, Path(work))
        notes.append(note)
        if result is not None:
            versions = result["versions"]
            for row in result["rows"]:
                add(f"faster-whisper {row['compute_type']}, 30 s window", row["beam"], "1", row["texts"], row["wall"])
    anchor = {r["beam"]: r["wall"] for r in rows if r["system"].startswith("faster-whisper int8")}
    body = [[r["system"], r["beam"], r["batch"], f"{r['wall']:.1f}", f"{r['wall'] / audio:.4f}", f"{audio / r['wall']:.1f}",
             f"{r['wer']:.1f}", f"x{r['wall'] / anchor[r['beam']]:.2f}" if r["beam"] in anchor else "n/a"] for r in rows]
    header = ["system", "beam", "batch", "wall s", "RTF", "audio s/s", f"WER % ({normaliser})",
              "RTF / faster-whisper int8 (same beam)"]
    section = (f"### Transcription speed: {args.backbone}{' --language ' + args.language if args.language else ''} "
               f"on {args.test}\n\n{len(ids)} utterances, {audio:.0f} s of audio; {machine}"
               + (", " + ", ".join(f"{k} {v}" for k, v in versions.items()) if versions else "") + ".\n\n"
               f"Command: `{command_line('transcribe_speed.py')}`\n\n" + table(header, body) + "\n\n"
               + "speechprompt rows run `speechprompt transcribe`'s own path (max 200 tokens, loop guard on, "
               "15 tokens/s cap); transformers and faster-whisper stop at 448 tokens. "
               + " ".join(notes) + "\n")
    print(section)
    write_out(args.out, section)


if __name__ == "__main__":
    main()
