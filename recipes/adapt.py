"""Adapt one backbone with several tuning methods and seeds; decode, score and record each run.

The shared adaptation stage of every egs recipe. For each method x seed it runs, in order and
each step only once (a finished step leaves its output, so a killed sweep resumes where it stopped):

    train   speechprompt train  (config = conf/adapt.yaml + conf/method/<method>.yaml [+ conf/quick.yaml];
            their ``decode:`` section holds 'speechprompt decode' options such as beam and max_len)
    decode  the test set with the best checkpoint's task artifact
    score   WER/CER (asr) or SLU-F1 (slu) against the test references; asr after the text normaliser the
            decoder names (--normalizer to choose another: a finished run scored with another one is
            scored again from its kept hypotheses, not trained again)
            (slu: trains on each data dir's slot-filling targets, --text-file, default text_slu,
            and scores against the SLURP JSONL gold, --gold, default <test>/slurp.jsonl)
    record  result.json (speechprompt.results schema): metric, trainable parameters, artifact bytes, wall time;
            with --records DIR also copied there (recipes.run_records), so a later sitting restores it

Layout: <exp>/<backbone-name>/<size>/<method>/seed<k>/{train,decode,score,result.json}

Examples:
  python -m recipes.adapt --backbone exp/wav2seq --backbone-name wav2seq --size 10min \\
      --train corpora/synth/adapt_10min --dev corpora/synth/dev --test corpora/synth/test \\
      --conf conf --methods finetune,prompt,lora --seeds 1,2 --exp exp
  python -m recipes.adapt --task slu --backbone exp/wav2seq --backbone-name wav2seq --size 200utt \
      --train corpora/synth_slu/data/train_200 --dev corpora/synth_slu/data/dev \
      --test corpora/synth_slu/data/test --conf conf --methods finetune,prompt --exp exp/adapt
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import yaml

from recipes.run_pool import Work, run_all
from recipes.run_records import record_dir, restore_record, save_record

TASK_METRIC_FILE = {"asr": "wer.json", "slu": "slu.json"}
ZERO_SHOT = "zero_shot"  # the backbone untouched: no training, needs the backbone's own tokenizer
# zero training, as Whisper users prompt a checkpoint: <|startofprev|> + in-domain text before the task prefix
TEXT_PROMPT = "text_prompt"
TEXT_PROMPT_TOKENS = 40  # about the length of two or three training transcripts
# the backbone untouched, its encoder run on the true length of each utterance, as every trained artifact is
# (zero_shot decodes a released checkpoint on its 30 s window): what adaptation starts from in that mode
ZERO_SHOT_TRUE_LENGTH = "zero_shot_true_length"
UNTRAINED = (ZERO_SHOT, ZERO_SHOT_TRUE_LENGTH, TEXT_PROMPT)
BACKBONE_ONLY = (ZERO_SHOT, ZERO_SHOT_TRUE_LENGTH)  # ignore the adaptation set: one decoding for every size
DEFAULT_TEXT_FILE = {"asr": "text", "slu": "text_slu"}  # training targets in each data dir


def deep_merge(base: dict, extra: dict) -> dict:
    """``extra`` over ``base``, recursively for nested mappings."""
    out = dict(base)
    for key, value in (extra or {}).items():
        out[key] = deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def method_config(conf_dirs: Path | list[Path], method: str, quick: bool) -> dict:
    """The merged YAML config of one method: common settings, the method's, then quick overrides.

    ``conf_dirs`` may list several folders: each later one is layered over the earlier ones, file by file
    (every ``adapt.yaml``, then every ``method/<method>.yaml``, then the quick files), so a folder holding only
    ``method/finetune.yaml`` changes fine-tuning alone for one backbone. zero_shot trains nothing: it gets only
    the common ``decode:`` section, so it decodes like the others.
    """
    conf_dirs = [Path(d) for d in (conf_dirs if isinstance(conf_dirs, list) else [conf_dirs])]
    missing = [str(d) for d in conf_dirs if not d.is_dir()]
    if missing:
        raise SystemExit(f"adapt: no config folder {', '.join(missing)} — check --conf")
    method_files = [d / "method" / f"{method}.yaml" for d in conf_dirs]
    if method not in UNTRAINED and not any(f.is_file() for f in method_files):
        known = sorted({p.stem for d in conf_dirs for p in (d / "method").glob("*.yaml")})
        raise SystemExit(f"adapt: no config for method '{method}' ({method_files[0]}); known: {', '.join(known)}")
    layers = [d / "adapt.yaml" for d in conf_dirs] + method_files
    if quick:
        layers += [d / "quick.yaml" for d in conf_dirs] + [d / "method" / f"{method}.quick.yaml" for d in conf_dirs]
    merged: dict = {}
    for layer in layers:
        if layer.is_file():
            merged = deep_merge(merged, yaml.safe_load(layer.read_text(encoding="utf-8")) or {})
    if method == ZERO_SHOT_TRUE_LENGTH:
        return {"decode": {**merged.get("decode", {}), "pad_to_window": False}}
    return {"decode": merged.get("decode", {})} if method in UNTRAINED else merged


def run_inputs(args: argparse.Namespace, config: dict) -> dict:
    """What one run's result depends on, recorded in ``inputs.json`` beside it."""
    def where(path):
        return str(Path(path).resolve()) if path else None

    return {"backbone": where(args.backbone), "tokenizer": where(args.tokenizer), "train": where(args.train),
            "dev": where(args.dev), "test": where(args.test), "gold": where(args.gold), "task": args.task,
            "text_file": args.text_file, "override": list(args.override), "config": config}


def forget_outdated_run(run_dir: Path, inputs: dict, label: str) -> None:
    """A run recorded with other inputs (another train dir, config, ...) is removed, to be run again."""
    recorded_path = run_dir / "inputs.json"
    if not recorded_path.is_file():
        return
    recorded = json.loads(recorded_path.read_text(encoding="utf-8"))
    changed = sorted(k for k in set(recorded) | set(inputs) if recorded.get(k) != inputs.get(k))
    if changed:
        print(f"{label} its inputs changed ({', '.join(changed)}): running it again", flush=True)
        for name in ("result.json", "wall_seconds.json", "inputs.json"):
            (run_dir / name).unlink(missing_ok=True)
        for name in ("train", "decode", "score"):
            shutil.rmtree(run_dir / name, ignore_errors=True)


def run_one(args: argparse.Namespace, method: str, seed: int, run_dir: Path) -> Path:
    """Train, decode, score and record one method x seed; returns the result.json path.

    A run whose recorded inputs (``inputs.json``) differ from these is removed and run again."""
    from speechprompt.results import write_result

    config = method_config(args.conf, method, args.quick)
    inputs = run_inputs(args, config)
    forget_outdated_run(run_dir, inputs, f"[{method} seed {seed}]")
    result_path = run_dir / "result.json"
    if not result_path.is_file() and args.records and restore_record(run_dir, Path(args.records), inputs):
        print(f"[{method} seed {seed}] restored from its record in {args.records}: not trained again")
    if result_path.is_file() and scored_with_other_normalizer(args, run_dir):
        rescore(args, run_dir, f"[{method} seed {seed}]")
    if result_path.is_file():
        print(f"[{method} seed {seed}] done already: {result_path}")
        if args.records and not record_dir(Path(args.records), run_dir).is_dir():
            save_record(run_dir, Path(args.records))
        return result_path
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "inputs.json").write_text(json.dumps(inputs, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    train_dir, decode_dir, score_dir = run_dir / "train", run_dir / "decode", run_dir / "score"
    artifact = train_dir / "artifact"

    config = dict(config)
    decode_settings = config.pop("decode", {})  # the recipe's own section; the rest is the train config
    wall_file = run_dir / "wall_seconds.json"
    if not (artifact / "task.json").is_file():
        seconds, cpu_seconds = train(args, config, method, seed, train_dir)
        import torch

        # the time depends on the device, the threads the run had and what ran beside it: all are recorded
        device = f"cuda ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "cpu"
        timing = {"train": seconds, "cpu": cpu_seconds, "threads": torch.get_num_threads(), "concurrent_runs": args.jobs,
                  "device": device}
        wall_file.write_text(json.dumps(timing) + "\n")
    timing = json.loads(wall_file.read_text()) if wall_file.is_file() else {"train": float("nan")}

    if not (decode_dir / "decode.json").is_file() and method in BACKBONE_ONLY:
        reuse_zero_shot_decode(run_dir, inputs, decode_dir)
    if not (decode_dir / "decode.json").is_file():
        decode(args, artifact, decode_dir, decode_settings)
    if not (score_dir / TASK_METRIC_FILE[args.task]).is_file():
        score(args, decode_dir, score_dir)

    task_meta = json.loads((artifact / "task.json").read_text(encoding="utf-8"))
    artifact_bytes = sum(p.stat().st_size for p in artifact.rglob("*") if p.is_file() and "tokenizer" not in p.parts)
    write_result(
        result_path,
        task=args.task,
        backbone=args.backbone_name,
        method=method,
        data_size=args.size,
        seed=seed,
        metrics=score_dir,
        trainable_params=int(task_meta["trainable_parameters"]),
        backbone_params=int(task_meta["backbone"]["parameters"]),
        artifact_bytes=artifact_bytes,
        wall_seconds=timing["train"],
        **{key: timing[key] for key in ("threads", "concurrent_runs", "device") if key in timing},
        **({"cpu_seconds": timing["cpu"]} if "cpu" in timing else {}),
        test_set=Path(args.test).name,
        data_hours=data_hours(Path(args.train)),
    )
    if args.records:
        save_record(run_dir, Path(args.records))
    return result_path


def reuse_zero_shot_decode(run_dir: Path, inputs: dict, decode_dir: Path) -> None:
    """Copy the test decoding of the same zero-shot row (zero_shot, zero_shot_true_length) of another data size.

    These rows ignore the adaptation set, so their output depends only on the backbone, the test set and
    the decode settings: decoding again per size would repeat the costliest decoding of a recipe
    (released checkpoints decode zero_shot on the 30 s window)."""
    def without_train(recorded: dict) -> dict:
        return {k: v for k, v in recorded.items() if k != "train"}

    size_dir, method = run_dir.parent.parent, run_dir.parent.name
    for other in sorted(size_dir.parent.glob(f"*/{method}/seed*/")):
        if other.parent.parent == size_dir or not (other / "decode" / "decode.json").is_file():
            continue
        recorded = json.loads((other / "inputs.json").read_text(encoding="utf-8"))
        if without_train(recorded) == without_train(inputs):
            shutil.copytree(other / "decode", decode_dir, dirs_exist_ok=True)
            print(f"[{method}] same backbone, test set and decoding as {other}: its decoding is reused")
            return


def data_hours(train_dir: Path) -> float:
    """Hours of audio in the adaptation set (orders the data sizes of the results table)."""
    from speechprompt.data.kaldi_dir import DataDir

    return round(sum(DataDir.read(train_dir).durations().values()) / 3600, 4)


def train(args: argparse.Namespace, config: dict, method: str, seed: int, train_dir: Path) -> tuple[float, float]:
    """Train one method x seed into ``train_dir``; returns (wall seconds, CPU seconds of this process).

    Both include the earlier sittings of a resumed run, up to the checkpoint it resumed from."""
    from speechprompt.config import load_config
    from speechprompt.training.cli import train_task

    train_dir.mkdir(parents=True, exist_ok=True)
    if method in UNTRAINED:
        return save_zero_shot(args, train_dir / "artifact", text_prompt=method == TEXT_PROMPT), 0.0
    conf_file = train_dir / "recipe_config.yaml"
    conf_file.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    overrides = [
        f"data.train={args.train}",
        f"data.dev={args.dev}",
        f"backbone.path={args.backbone}",
        f"experiment.dir={train_dir}",
        f"experiment.seed={seed}",
        "experiment.progress=false",
        f"data.output={args.task}",
        f"data.text_file={args.text_file or DEFAULT_TEXT_FILE[args.task]}",
    ]
    if args.tokenizer:
        overrides.append(f"data.tokenizer={args.tokenizer}")
    if args.language:
        overrides.append(f"data.language={args.language}")
    overrides += args.override
    cfg = load_config(conf_file, overrides)
    resume = (train_dir / "checkpoints").is_dir()
    print(f"[{method} seed {seed}] training -> {train_dir}" + (" (resuming)" if resume else ""), flush=True)
    start, cpu_start = time.perf_counter(), time.process_time()
    status = train_task(cfg, ["train", "--config", str(conf_file), *overrides], resume=resume)
    if status != 0:
        raise SystemExit(f"adapt: training {method} seed {seed} failed (exit {status}); see {train_dir}")
    # a resumed run adds the training time of its earlier sittings (up to the checkpoint it resumed from)
    summary_file = train_dir / "train_summary.json"
    summary = json.loads(summary_file.read_text(encoding="utf-8")) if summary_file.is_file() else {}
    earlier = summary.get("earlier_sittings_seconds", {})
    return (time.perf_counter() - start + earlier.get("wall", 0.0),
            time.process_time() - cpu_start + earlier.get("cpu", 0.0))


def save_zero_shot(args: argparse.Namespace, artifact: Path, text_prompt: bool = False) -> float:
    """The untouched backbone as a task artifact (no tensors): the reference for adaptation.

    A released checkpoint uses its own tokenizer (``--language`` for multilingual ones); ``text_prompt``
    puts the checkpoint's previous-text prompt before its task prefix: ``<|startofprev|>`` and the first
    training transcripts, up to TEXT_PROMPT_TOKENS tokens (Whisper's zero-training way to give context).
    """
    from speechprompt.backbones.fetch import resolve_backbone
    from speechprompt.data.text import load_tokenizer
    from speechprompt.data.whisper_tokenizer import is_checkpoint_tokenizer_dir
    from speechprompt.tuning import build_tuned_model
    from speechprompt.tuning.model import suppressed_among

    backbone_dir = resolve_backbone(args.backbone)
    tokenizer_dir = args.tokenizer or (backbone_dir if is_checkpoint_tokenizer_dir(backbone_dir) else None)
    if tokenizer_dir is None:
        raise SystemExit("adapt: zero_shot needs the backbone's own tokenizer (--tokenizer <backbone>/tokenizer)")
    tokenizer = load_tokenizer(tokenizer_dir, args.language)
    from speechprompt.backbones import load_backbone

    backbone = load_backbone(backbone_dir)
    if tokenizer.kind == "whisper":
        options = tokenizer.method_options()
        if text_prompt:
            previous = previous_text_prefix(tokenizer, args)
            options["task_prefix"] = previous + tokenizer.prefix_ids
            # the prompt shows the output format; symbols the checkpoint suppresses (slot markup '[', ':', '|',
            # '_') would make that format unwritable, as they would for a trained task (see unsuppressed_ids)
            shown = suppressed_among(previous, backbone)
            if shown:
                options["unsuppressed_ids"] = shown
    elif text_prompt:
        raise SystemExit("adapt: text_prompt needs a released checkpoint's tokenizer (it has <|startofprev|>)")
    else:
        options = {"vocab_size": tokenizer.vocab_size}

    model = build_tuned_model(backbone, ZERO_SHOT, options)
    if tokenizer.kind == "whisper":  # the artifact records the tokenizer with its language
        tokenizer_dir = tokenizer.save(artifact.parent / "tokenizer")
    model.save_artifact(artifact, tokenizer_dir=tokenizer_dir, output=args.task)
    return 0.0


def previous_text_prefix(tokenizer, args: argparse.Namespace) -> list[int]:
    """``<|startofprev|>`` + the first training targets (in file order) up to TEXT_PROMPT_TOKENS tokens
    (for slot filling the target lines themselves, so the prompt shows the output format)."""
    from speechprompt.data.targets import read_with_targets
    from speechprompt.data.text import normalize_text
    from speechprompt.score.slu_format import SLU_MARKUP

    data = read_with_targets(args.train, args.text_file or DEFAULT_TEXT_FILE[args.task])
    keep = SLU_MARKUP if args.task == "slu" else ""
    ids: list[int] = []
    for utt in data.utt_ids:
        more = tokenizer.encode(normalize_text(data.text.get(utt, ""), keep=keep))
        if ids and len(ids) + len(more) > TEXT_PROMPT_TOKENS:
            break
        ids += more[:TEXT_PROMPT_TOKENS]
    return [tokenizer.hf.token_to_id("<|startofprev|>"), *ids]


def decode(args: argparse.Namespace, artifact: Path, decode_dir: Path, settings: dict) -> None:
    """Decode the test set; ``settings`` are decode options from the config's ``decode:`` section."""
    import torch

    from speechprompt.cli import main as speechprompt

    argv = ["decode", "--backbone", str(args.backbone), "--task", str(artifact), "--data", str(args.test),
            "--out", str(decode_dir)]
    # decode where training ran (its device defaults to auto): a CUDA GPU when there is one
    settings = {"device": "cuda" if torch.cuda.is_available() else "cpu", **settings}
    for key, value in settings.items():
        flag = key.replace("_", "-")
        if isinstance(value, bool):  # on/off options: --pad-to-window / --no-pad-to-window
            argv.append(f"--{flag}" if value else f"--no-{flag}")
        else:
            argv += [f"--{flag}", str(value)]
    status = speechprompt(argv)
    summary = decode_dir / "decode.json"
    if status == 1 and summary.is_file():  # some utterances failed alone (e.g. longer than a checkpoint's window)
        failed = json.loads(summary.read_text(encoding="utf-8"))["failed"]
        print(f"adapt: {len(failed)} test utterance(s) could not be decoded ({summary}: "
              f"{', '.join(f['utt_id'] for f in failed[:5])}); the score covers the others")
    elif status != 0:
        raise SystemExit(f"adapt: decoding with {artifact} failed (exit {status})")


def score(args: argparse.Namespace, decode_dir: Path, score_dir: Path) -> None:
    from speechprompt.cli import main as speechprompt

    ref = decode_dir / "ref.trn" if args.task == "asr" else Path(args.gold or Path(args.test) / "slurp.jsonl")
    status = speechprompt(["score", "--task", args.task, "--ref", str(ref), "--hyp", str(decode_dir / "hyp.trn"),
                           "--out", str(score_dir), *(["--normalizer", args.normalizer] if args.task == "asr" else [])])
    if status != 0:
        raise SystemExit(f"adapt: scoring {decode_dir} failed (exit {status})")


def scored_with_other_normalizer(args: argparse.Namespace, run_dir: Path) -> bool:
    """Whether a finished asr run was scored after another text normaliser than --normalizer asks for."""
    wer_json = run_dir / "score" / "wer.json"
    if args.task != "asr" or args.normalizer == "auto" or not wer_json.is_file():
        return False
    from speechprompt.score.wer import recorded_normalizer

    return recorded_normalizer(json.loads(wer_json.read_text(encoding="utf-8"))) != args.normalizer


def rescore(args: argparse.Namespace, run_dir: Path, label: str) -> None:
    """Score a finished run again from its hypotheses and update its result.json (and record).

    A run restored from a record that kept no hypotheses cannot be scored again: it is trained again."""
    from speechprompt.results import score_metrics

    decode_dir, score_dir = run_dir / "decode", run_dir / "score"
    if not ((decode_dir / "hyp.trn").is_file() and (decode_dir / "ref.trn").is_file()):
        print(f"{label} was scored after another text normaliser and its hypotheses are not kept: running it again",
              flush=True)
        (run_dir / "result.json").unlink()
        for name in ("decode", "score"):  # training is kept when its artifact is here: decoded again
            shutil.rmtree(run_dir / name, ignore_errors=True)
        return
    print(f"{label} scoring its hypotheses again after the {args.normalizer} text normaliser", flush=True)
    shutil.rmtree(score_dir)
    score(args, decode_dir, score_dir)
    result_path = run_dir / "result.json"
    result = json.loads(result_path.read_text(encoding="utf-8"))
    result["metrics"] = score_metrics(score_dir)
    result_path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if args.records:
        save_record(run_dir, Path(args.records))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", required=True, help="pretrained backbone folder or fetched name (whisper-tiny.en)")
    p.add_argument("--backbone-name", required=True, help="name of the backbone in the results table")
    p.add_argument("--tokenizer", help="tokenizer folder (default: a released checkpoint's own, else a character "
                                       "tokenizer of the training text)")
    p.add_argument("--language", help="language token of a released multilingual checkpoint (e.g. cs)")
    p.add_argument("--size", required=True, help="label of the adaptation data size, e.g. 10min or 1h")
    p.add_argument("--train", required=True, help="adaptation Kaldi data dir")
    p.add_argument("--dev", required=True, help="dev Kaldi data dir")
    p.add_argument("--test", required=True, help="test Kaldi data dir")
    p.add_argument("--task", choices=sorted(TASK_METRIC_FILE), default="asr")
    p.add_argument("--text-file", help="training targets in the train/dev dirs (default: text for asr, "
                   "text_slu for slu, written by python -m recipes.slu_targets)")
    p.add_argument("--normalizer", default="auto",
                   help="asr: text normaliser of the scoring (speechprompt score --normalizer; default auto: the one "
                        "the decoder names, e.g. whisper_basic for a multilingual checkpoint); e.g. "
                        "whisper_basic_nodiacritics:es for Spanish references written without accents")
    p.add_argument("--gold", help="slu: SLURP JSONL gold annotations of the test set (default <test>/slurp.jsonl)")
    p.add_argument("--conf", action="append", type=Path,
                   help="folder with adapt.yaml, quick.yaml and method/<name>.yaml (default conf); repeat it to "
                        "layer a folder of changes over the earlier ones, e.g. one backbone's own fine-tuning lr")
    p.add_argument("--methods", required=True, help="comma-separated tuning methods")
    p.add_argument("--seeds", default="1", help="comma- or space-separated seeds")
    p.add_argument("--jobs", type=int, default=1,
                   help="runs at a time, each in its own process with cores/jobs CPU threads and its own log "
                        "(<run>/adapt.log); default 1: one run after another in this process, all threads")
    p.add_argument("--quick", action="store_true", help="merge conf/quick.yaml (tiny runs for CI)")
    p.add_argument("--exp", default="exp", help="experiment root")
    p.add_argument("--records", help="run records folder (recipes.run_records): a finished run's small files are "
                                     "copied there, and a run with a matching record is restored, not trained")
    p.add_argument("--override", action="append", default=[], metavar="key=value",
                   help="extra 'speechprompt train' override for every run (repeatable)")
    args = p.parse_args(argv)
    args.conf = args.conf or [Path("conf")]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    methods = [m for m in args.methods.replace(",", " ").split() if m]
    seeds = [int(s) for s in args.seeds.replace(",", " ").split()]
    if args.jobs < 1:
        raise SystemExit(f"adapt: --jobs {args.jobs}: give 1 or more")
    if args.normalizer != "auto":  # a misspelt normaliser fails now, not after the first training
        from speechprompt.score.wer import get_normalizer

        try:
            get_normalizer(args.normalizer)
        except ValueError as err:
            raise SystemExit(f"adapt: --normalizer: {err}") from None
    # untrained rows are deterministic (greedy or beam search on fixed weights): one run, the first seed
    runs = [(method, seed, Path(args.exp) / args.backbone_name / args.size / method / f"seed{seed}")
            for method in methods for seed in (seeds[:1] if method in UNTRAINED else seeds)]
    if args.jobs == 1:
        for method, seed, run_dir in runs:
            run_one(args, method, seed, run_dir)
        return 0
    work = [Work(f"[{method} seed {seed}]", run_dir, run_one, (args, method, seed, run_dir))
            for method, seed, run_dir in runs]
    failures = run_all(work, args.jobs, "adapt.log", describe=describe_result)
    for item, error in failures:
        print(f"adapt: {item.label} failed: {error}; see {item.log_dir / 'adapt.log'}", file=sys.stderr)
    return 1 if failures else 0


def describe_result(result_path: Path) -> str:
    """One line for a finished run: its metrics and training time."""
    result = json.loads(Path(result_path).read_text(encoding="utf-8"))
    metrics = ", ".join(f"{k} {result['metrics'][k]:.2f}" for k in ("wer", "cer", "slu_f1") if k in result["metrics"])
    return f"{metrics} (train {result['wall_seconds']:.0f} s)"


if __name__ == "__main__":
    sys.exit(main())
