"""Serving many tasks from one frozen backbone: prompts vs fine-tuned copies, measured side by side.

  (a) N = 1, 10, 100 task prompts on one backbone (a released checkpoint too: ``--backbone whisper-base``) vs N fine-tuned copies of the backbone:
      resident memory (psutil RSS, each case in a fresh process) and load time. 100 copies are
      extrapolated linearly from 1 and 10 (said so in the table).
  (b) time to switch task: another prompt already loaded (a task id in the batch), a prompt
      loaded from disk, a fine-tuned model loaded from disk.
  (c) throughput of mixed-task batches (10 tasks) vs single-task batches.
  (d) real-time factor of greedy and beam decoding.
  (e) (d) again under bf16 autocast and with the backbone's Linear layers quantised to int8
      (torch.ao.quantization.quantize_dynamic; ``speechprompt transcribe --precision``), with the WER of each when a trained backbone,
      its task artifact and a test data dir are given.

Without ``--backbone`` a randomly initialised ``small`` wav2vec2 backbone and random prompt tables
are used (fine for time and memory; outputs are meaningless, so decoding runs to the length cap).
Tables are printed and written to ``docs/benchmarks.md`` under "Serving".

    python benchmarks/serving.py                                   # random small backbone
    python benchmarks/serving.py --quick                           # fewer utterances and repeats
    python benchmarks/serving.py --backbone exp/backbone --task exp/prompt/artifact --test-dir data/test
    python benchmarks/serving.py --backbone whisper-base --sections ab --title "Serving on whisper-base"
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import torch
from bench_report import command_line, cpu_model

from speechprompt.backbones import build_backbone
from speechprompt.decoding.transcriber import AudioItem, Failure, Transcriber, load_backbone

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def rss_mb() -> float:
    """Resident set size after handing freed heap back to the system (so only live memory counts)."""
    gc.collect()
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    return psutil.Process().memory_info().rss / 2**20


@torch.no_grad()
def touch(module: torch.nn.Module) -> None:
    """Read every weight once: transformers maps safetensors lazily, so untouched weights are not resident yet."""
    for param in module.parameters():
        param.sum()


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


# ---------------------------------------------------------------- set-up
def prepare(args, work: Path) -> tuple[Path, list[Path], Path]:
    """(backbone dir, prompt artifact dirs, fine-tuned copy dir) in ``work``."""
    from task_artifacts import random_artifacts

    if args.backbone:
        backbone = load_backbone(args.backbone)
        backbone_dir = Path(backbone.source_dir)  # a fetched name resolved to its folder
    else:
        backbone = build_backbone(args.family, args.size, vocab_size=64)
        backbone_dir = work / "backbone"
        backbone.save_pretrained(backbone_dir)
    # random prompt tables: their values change neither time nor memory; a released checkpoint keeps its tokenizer
    artifacts = random_artifacts(backbone, work, max(args.tasks), "prompt", {"num_prompts": args.num_prompts},
                                 args.language)
    finetuned = work / "finetuned"
    with torch.no_grad():  # a fine-tuned copy: every weight moved a little
        for param in backbone.parameters():
            param.add_(torch.randn_like(param) * 1e-3)
    backbone.save_pretrained(finetuned)
    return backbone_dir, artifacts, finetuned


def measure_load(kind: str, count: int, backbone_dir: str, finetuned: str, artifacts: list[str]) -> dict:
    """Run in a fresh process: RSS and wall time of loading ``count`` prompts or fine-tuned copies."""
    before = rss_mb()
    start = time.perf_counter()
    if kind == "prompts":
        held = Transcriber(load_backbone(backbone_dir))
        for index in range(count):
            held.add_task(f"t{index}", artifacts[index])
        touch(held.model)
    else:
        held = [load_backbone(finetuned) for _ in range(count)]
        for model in held:
            touch(model)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rss_mb": rss_mb(), "added_mb": rss_mb() - before, "held": bool(held)}


def load_in_subprocess(kind: str, count: int, backbone_dir: Path, finetuned: Path, artifacts: list[Path], threads: int):
    payload = json.dumps([kind, count, str(backbone_dir), str(finetuned), [str(a) for a in artifacts[:count]]])
    code = (f"import json, sys, torch; torch.set_num_threads({threads}); sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            "import serving; print(json.dumps(serving.measure_load(*json.loads(sys.argv[1]))))")
    done = subprocess.run([sys.executable, "-c", code, payload], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def generated_audio(count: int, seed: int = 0) -> list[np.ndarray]:
    """``count`` utterances of 2-5 s (tones + noise)."""
    rng = np.random.default_rng(seed)
    waves = []
    for i in range(count):
        n = int(rng.uniform(2.0, 5.0) * 16000)
        t = np.arange(n) / 16000
        wave = 0.3 * np.sin(2 * np.pi * (150 + 40 * i) * t) + 0.05 * rng.standard_normal(n)
        waves.append(wave.astype(np.float32))
    return waves


# ---------------------------------------------------------------- decoding measurements
def timed_transcribe(transcriber: Transcriber, waves, tasks, repeats: int) -> tuple[float, list]:
    """Best-of-``repeats`` wall seconds (after one warm-up batch) and the results."""
    transcriber.transcribe(waves[:2], tasks[:2])
    best, results = float("inf"), []
    for _ in range(repeats):
        start = time.perf_counter()
        results = transcriber.transcribe(waves, tasks)
        best = min(best, time.perf_counter() - start)
    return best, results


def variant(backbone_dir, prompts: dict, kind: str, args, tokenizer=None, ctc_weight: float = 0.0) -> Transcriber:
    """A Transcriber in precision ``kind`` (fp32, bf16, int8: the serving path's own, ``--precision``)."""
    transcriber = Transcriber(load_backbone(backbone_dir), precision=kind, max_len=args.max_len,
                              batch_seconds=args.batch_seconds, ctc_weight=ctc_weight)
    for name, directory in prompts.items():
        transcriber.add_task(name, directory, tokenizer)
    return transcriber


def test_wer(transcriber: Transcriber, test_dir: Path, beam: int) -> float:
    """WER (percent) after the normaliser ``speechprompt score --normalizer auto`` uses for these hypotheses."""
    from speechprompt.data.kaldi_dir import DataDir
    from speechprompt.decoding.cli_decode import scoring_normalizer
    from speechprompt.score.wer import get_normalizer, score_transcripts

    data = DataDir.read(test_dir)
    transcriber.beam = beam
    items = [AudioItem(u, lambda u=u: data.load_audio(u), "test", data.utt2dur.get(u)) for u in data.utt_ids]
    hyps = {it.key: r.text for it, r in transcriber.transcribe_items(items) if not isinstance(r, Failure)}
    refs = {u: data.text[u] for u in hyps}
    transcriber.beam = 1
    return score_transcripts(refs, hyps, get_normalizer(scoring_normalizer(transcriber))).word.rate


# ---------------------------------------------------------------- tables
def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def section_memory(args, backbone_dir: Path, artifacts: list[Path], finetuned: Path) -> str:
    """(a) resident memory and load time of N prompts on one backbone vs N fine-tuned copies."""
    rows = []
    measured = {}
    for count in args.tasks:
        p = load_in_subprocess("prompts", count, backbone_dir, finetuned, artifacts, args.threads)
        if count <= 10:
            c = load_in_subprocess("copies", count, backbone_dir, finetuned, artifacts, args.threads)
            measured[count] = c
            copies = f"{c['added_mb']:.0f} MB, {c['seconds']:.2f} s"
        else:  # linear through the measured 1 and 10
            slope_mb = (measured[10]["added_mb"] - measured[1]["added_mb"]) / 9
            slope_s = (measured[10]["seconds"] - measured[1]["seconds"]) / 9
            copies = (f"~{measured[1]['added_mb'] + slope_mb * (count - 1):.0f} MB, "
                      f"~{measured[1]['seconds'] + slope_s * (count - 1):.1f} s (extrapolated from 1 and 10)")
        rows.append([count, f"{p['added_mb']:.0f} MB, {p['seconds']:.2f} s", copies])
    disk = [f"one prompt artifact {folder_mb(artifacts[0]) * 1024:.0f} KB", f"one fine-tuned copy {folder_mb(finetuned):.1f} MB"]
    return ("### (a) Resident memory added and load time, N tasks\n\n"
            + table(["N tasks", "N prompts on one backbone", "N fine-tuned copies"], rows)
            + f"\n\nOn disk: {disk[0]}; {disk[1]}. Memory is the RSS growth of a fresh process while loading "
            "(backbone included); each fine-tuned copy is loaded from the same folder (page cache warm).")


def section_switch(args, backbone_dir: Path, artifacts: list[Path], finetuned: Path) -> str:
    """(b) time to switch to a loaded task, to a prompt from disk, to a fine-tuned model from disk."""
    transcriber = Transcriber(load_backbone(backbone_dir), max_len=args.max_len, batch_seconds=args.batch_seconds)
    transcriber.add_task("t0", artifacts[0])
    prompt_load = []
    for index in range(1, min(6, len(artifacts))):
        start = time.perf_counter()
        transcriber.add_task(f"t{index}", artifacts[index])
        prompt_load.append(time.perf_counter() - start)
    last = transcriber.tasks[-1]
    gather = []
    for _ in range(5):  # what a task change costs an utterance: the task-id lookup and the gather of its prompt rows
        start = time.perf_counter()
        for _ in range(1000):
            transcriber.model.method.prompts[torch.tensor(transcriber.task_ids([last]))]
        gather.append((time.perf_counter() - start) / 1000)
    model_load = []
    for _ in range(3):
        start = time.perf_counter()
        load_backbone(finetuned)
        model_load.append(time.perf_counter() - start)
    return "### (b) Time to switch task\n\n" + table(["switch to", "time"], [
        ["a prompt already loaded", f"{1000 * statistics.median(gather):.3f} ms (the task id travels with the utterance: "
                                    "name lookup + one gather of its prompt rows; median of 5 x 1000)"],
        ["a prompt artifact from disk (add_task)", f"{1000 * statistics.median(prompt_load):.1f} ms (median of {len(prompt_load)})"],
        ["a fine-tuned model from disk", f"{1000 * statistics.median(model_load):.0f} ms (median of 3)"],
    ])


def section_batches(args, backbone_dir: Path, artifacts: list[Path]) -> tuple[str, list, dict]:
    """(c) mixed-task vs single-task batches; returns the section, the waves and the loaded prompts."""
    waves = generated_audio(args.utterances)
    audio_s = sum(len(w) for w in waves) / 16000
    names = [f"t{i}" for i in range(min(10, len(artifacts)))]
    prompts = {name: artifacts[i] for i, name in enumerate(names)}
    rows = []
    for label, tasks in (("single task", [names[0]] * len(waves)),
                         (f"mixed, {len(names)} tasks", [names[i % len(names)] for i in range(len(waves))])):
        loaded = variant(backbone_dir, prompts, "fp32", args)
        wall, results = timed_transcribe(loaded, waves, tasks, args.repeats)
        tokens = sum(r.num_tokens for r in results)
        rows.append([label, f"{len(waves) / wall:.2f}", f"{audio_s / wall:.1f}", f"{wall / audio_s:.4f}",
                     f"{tokens / wall:.0f}", tokens])
    return (f"### (c) Mixed-task vs single-task batches (greedy, {len(waves)} utterances, {audio_s:.0f} s)\n\n"
            + table(["batches", "utterances/s", "audio s per s", "RTF", "tokens/s", "tokens out"], rows))


def section_precision(args, backbone_dir: Path, artifacts: list[Path]) -> str:
    """(d, e) RTF of greedy and beam decoding under fp32, bf16, int8; WER with a trained task."""
    waves = generated_audio(args.utterances)
    audio_s = sum(len(w) for w in waves) / 16000
    names = [f"t{i}" for i in range(min(10, len(artifacts)))]
    prompts = {name: artifacts[i] for i, name in enumerate(names)}
    trained = {"test": args.task} if args.task and args.test_dir else None
    rows = []
    for kind in ("fp32", "bf16", "int8"):
        loaded = variant(backbone_dir, prompts, kind, args)
        row = [kind]
        for beam in (1, args.beam):
            loaded.beam = beam
            wall, results = timed_transcribe(loaded, waves, [names[0]] * len(waves), args.repeats)
            row.append(f"{wall / audio_s:.4f} ({sum(r.num_tokens for r in results)} tokens)")
        if trained:
            scored = variant(backbone_dir, trained, kind, args, ctc_weight=args.ctc_weight)
            row += [f"{test_wer(scored, Path(args.test_dir), 1):.1f}", f"{test_wer(scored, Path(args.test_dir), args.beam):.1f}"]
        else:
            row += ["not measured", "not measured"]
        rows.append(row)
    note = (f"WER on {args.test_dir} with {args.task}, CTC weight {args.ctc_weight} (the int8 rows leave the small "
            "CTC head in float32)") if trained else (
        "WER not measured: no trained backbone + task artifact + test set given (--backbone, --task, --test-dir)")
    return ("### (d, e) Real-time factor (wall s / audio s) and WER by decoding and numeric format\n\n"
            + table(["backbone", "RTF greedy", f"RTF beam {args.beam}", "WER greedy", f"WER beam {args.beam}"], rows)
            + f"\n\n{note}.")


def run(args) -> str:
    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="serving-"))
    backbone_dir, artifacts, finetuned = prepare(args, work)
    params = load_backbone(backbone_dir).num_parameters()
    sections = []
    if "a" in args.sections:
        sections.append(section_memory(args, backbone_dir, artifacts, finetuned))
    if "b" in args.sections:
        sections.append(section_switch(args, backbone_dir, artifacts, finetuned))
    if "c" in args.sections:
        sections.append(section_batches(args, backbone_dir, artifacts))
    if "d" in args.sections:
        sections.append(section_precision(args, backbone_dir, artifacts))
    command = command_line("serving.py")
    where = (f"{cpu_model()}, {args.threads} thread(s), torch {torch.__version__}, {time.strftime('%Y-%m-%d')}")
    backbone_text = str(args.backbone) if args.backbone else f"random {args.family} {args.size}"
    header = (f"Backbone: {backbone_text} ({params / 1e6:.1f} M parameters); prompts of {args.num_prompts} vectors; "
              f"max {args.max_len} tokens per utterance; {where}. Timings come from a machine shared with other "
              "jobs" + (": the fp32 greedy single-task figure appears in both (c) and (d) and shows the run-to-run "
                        "spread" if {"c", "d"} <= set(args.sections) else "") + f".\n\nCommand: `{command}`")
    shutil.rmtree(work, ignore_errors=True)
    return f"## {args.title}\n\n" + header + "\n\n" + "\n\n".join(sections) + "\n"


def write_section(doc: Path, section: str, title: str = "Serving") -> None:
    """Replace the '## <title>' section of ``doc`` (or append it), keeping every other section."""
    text = doc.read_text() if doc.is_file() else "# Benchmarks\n"
    start = text.find(f"## {title}\n")
    if start >= 0:
        end = text.find("\n## ", start + 1)
        rest = text[end:] if end >= 0 else ""  # '\n## <next section>...': a blank line before it
        text = text[:start] + section.rstrip("\n") + "\n" + rest
    else:
        text = text.rstrip("\n") + "\n\n" + section
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", help="backbone folder or fetched name, e.g. whisper-base (default: random small wav2vec2)")
    parser.add_argument("--language", help="language token of a released multilingual checkpoint (its random prompts)")
    parser.add_argument("--sections", default="abcd",
                        help="which tables: a memory/load, b switching, c mixed batches, d precision (default abcd)")
    parser.add_argument("--title", default="Serving", help="markdown section title, replaced in --doc (default Serving)")
    parser.add_argument("--task", help="trained task artifact on --backbone, for the WER columns")
    parser.add_argument("--test-dir", help="Kaldi test data dir, for the WER columns")
    parser.add_argument("--family", default="wav2vec2")
    parser.add_argument("--size", default="small")
    parser.add_argument("--num-prompts", type=int, default=50)
    parser.add_argument("--utterances", type=int, default=32)
    parser.add_argument("--beam", type=int, default=4)
    parser.add_argument("--ctc-weight", type=float, default=0.0,
                        help="joint CTC/attention decoding weight for the WER columns (the recipe's decode.ctc_weight)")
    parser.add_argument("--max-len", type=int, default=40)
    parser.add_argument("--batch-seconds", type=float, default=40.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: a shared machine)")
    parser.add_argument("--quick", action="store_true", help="12 utterances, one repeat")
    parser.add_argument("--doc", "--out", default=str(DOC), help="markdown file to update ('' = print only)")
    args = parser.parse_args()
    args.tasks = (1, 10, 100)
    if args.quick:
        args.utterances, args.repeats = 12, 1
    section = run(args)
    print(section)
    if args.doc:
        write_section(Path(args.doc), section, args.title)
        print(f"written to {args.doc}", file=sys.stderr)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
