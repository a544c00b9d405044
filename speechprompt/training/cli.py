"""Adapt a backbone to a task with a tuning method (prompt, deep_prompt, lora, adapter, finetune, ...).

The run is described by a YAML config (sections data, backbone, method, optim, experiment) and
``key.sub=value`` overrides. The experiment folder receives config.yaml (resolved), run.sh
(repeats the run), train_log.jsonl, learning_curve.png, checkpoints/ (last K + best) and
artifact/ (the task artifact of the best checkpoint: safetensors + task.json + tokenizer).

Examples:
  speechprompt train --config conf/prompt.yaml
  speechprompt train --config conf/prompt.yaml method.options.num_prompts=50 optim.lr=5e-3
  speechprompt train data.train=data/train data.dev=data/dev backbone.path=exp/w2s method.name=lora \\
      experiment.dir=exp/lora
  speechprompt train --config conf/prompt.yaml --resume          # continue a stopped run
  speechprompt train --config conf/prompt.yaml --resume --allow-changes optim.lr=5e-4   # ... with other options

One run at a time holds an experiment folder (``<dir>/.lock`` names its pid; a lock left by a
process that is gone is taken over). ``--resume`` refuses options that differ from the run's
``config.yaml`` unless ``--allow-changes`` is given; the changes are then recorded in train_log.jsonl.
  torchrun --nproc_per_node 4 -m speechprompt.cli train --config conf/prompt.yaml   # data parallel
  speechprompt train --list-options                               # every config key with its help
  speechprompt train --list-options method.name=lora              # ... and the options of one method
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from pathlib import Path

from speechprompt.config import ConfigError, TrainConfig, describe, load_config, save_config

INTERMIXED_ARGS = True  # overrides may come before or after the flags


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("overrides", nargs="*", metavar="key.sub=value", help="config overrides")
    parser.add_argument("--config", help="YAML config file")
    parser.add_argument("--resume", action="store_true", help="continue from the newest usable checkpoint")
    parser.add_argument("--allow-changes", action="store_true",
                        help="with --resume: continue with options that differ from the run's config.yaml")
    parser.add_argument("--list-options", action="store_true", help="print every config key with its help and exit")


# ---------------------------------------------------------------- building blocks (shared with pretrain)


def batch_sampler_for(dataset, cfg: TrainConfig, shuffle: bool, log=print):
    """epoch -> batches (index lists) of ``dataset`` from the data layer's ``LengthBucketSampler``;
    utterances longer than ``data.max_utt_seconds`` are left out and counted."""
    from speechprompt.data.dataset import LengthBucketSampler

    durations = list(dataset.durations)
    keep = list(range(len(durations)))
    if cfg.data.max_utt_seconds is not None:
        keep = [i for i in keep if durations[i] <= cfg.data.max_utt_seconds]
        skipped = len(durations) - len(keep)
        if skipped:
            log(f"skipping {skipped} of {len(durations)} utterance(s) longer than "
                f"data.max_utt_seconds={cfg.data.max_utt_seconds}")
        if not keep:
            raise ConfigError(f"every utterance is longer than data.max_utt_seconds={cfg.data.max_utt_seconds}")
    sampler = LengthBucketSampler([durations[i] for i in keep], cfg.data.max_batch_seconds, shuffle=shuffle,
                                  seed=cfg.experiment.seed)

    def batches(epoch: int) -> list[list[int]]:
        sampler.set_epoch(epoch)
        return [[keep[i] for i in b] for b in sampler.all_batches()]

    return batches


def wer_callback(tokenizer):
    """A dev-WER function for ``train(wer_fn=...)`` using greedy decoding, or None when unavailable."""
    try:
        from speechprompt.decoding.search import greedy_search
        from speechprompt.score.wer import score_transcripts
    except ImportError:
        return None

    def dev_wer(model, batches) -> float:
        device = next(model.parameters()).device
        refs, hyps = {}, {}
        for batch in batches:
            batch = batch.to(device)
            out = greedy_search(model, batch.waveforms, batch.wave_lengths, batch.task_ids)
            for utt, text, ids in zip(batch.utt_ids, batch.texts, out, strict=True):
                refs[utt], hyps[utt] = text, tokenizer.decode(ids)
        return score_transcripts(refs, hyps).word.rate

    return dev_wer


def training_waveform_transform(cfg: TrainConfig):
    """The per-utterance audio augmentation of the training set (data.speed_perturb), or None."""
    if not cfg.data.speed_perturb:
        return None
    from speechprompt.data.features import SpeedPerturb

    return SpeedPerturb(cfg.data.speed_perturb)


def attach_spec_augment(backbone) -> None:
    """SpecAugment (data.features) on the encoder features while the backbone is in training mode."""
    from speechprompt.data.features import SpecAugment

    spec = SpecAugment(time_mask_param=20)
    embed = backbone.embed_audio

    def embed_with_spec_augment(waveforms, wave_lengths):
        features, mask = embed(waveforms, wave_lengths)
        if backbone.training:
            features = spec.train()(features, mask.sum(1))
        return features, mask

    backbone.embed_audio = embed_with_spec_augment


def prepare_experiment(cfg: TrainConfig, argv: list[str], is_main: bool, resume: bool = False,
                       allow_changes: bool = False, log=print) -> Path:
    """Create the experiment folder with the resolved config.yaml and a run.sh that repeats the run;
    a resumed run must match the config.yaml it continues (unless ``allow_changes``)."""
    from speechprompt.config import to_dict
    from speechprompt.experiment_dir import check_resume_config
    from speechprompt.training.loop import write_run_script

    exp = Path(cfg.experiment.dir)
    if is_main:
        if resume:
            check_resume_config(exp, to_dict(cfg), allow_changes, log)
        save_config(cfg, exp)
        write_run_script(exp, argv)
    return exp


def fit_and_export(model, train_set, dev_set, cfg: TrainConfig, *, resume: bool, tokenizer=None, log=print):
    """Run ``train`` with the data layer's sampler and collate; load the best checkpoint afterwards."""
    from speechprompt.data.dataset import collate
    from speechprompt.training.checkpoint import load_best
    from speechprompt.training.loop import train

    if tokenizer is not None:  # targets end in the tokenizer's EOS and are padded with its pad id
        collate = functools.partial(collate, pad_id=tokenizer.pad_id, eos_id=tokenizer.eos_id)
    result = train(
        model, train_set, cfg, collate_fn=collate, batch_sampler=batch_sampler_for(train_set, cfg, True, log),
        dev_set=dev_set, dev_batch_sampler=batch_sampler_for(dev_set, cfg, False, log) if dev_set is not None else None,
        resume=resume, wer_fn=wer_callback(tokenizer) if tokenizer is not None and cfg.experiment.best_metric == "dev_wer"
        else None, log=log,
    )
    if not result.stopped.startswith("signal"):
        state = load_best(model, result.exp_dir)
        if state.get("kind") == "best":
            log(f"loaded the best checkpoint (step {state['step']}, {cfg.experiment.best_metric} "
                f"{state['best_metric']:.4g})")
        else:
            log(f"no dev evaluation: using the last checkpoint (step {state['step']})")
    return result


# ---------------------------------------------------------------- the verb


def run(args: argparse.Namespace) -> int:
    if args.list_options:
        from speechprompt.tuning.registry import METHODS

        print("\n".join(describe()))
        chosen = [o.split("=", 1)[1] for o in args.overrides if o.startswith("method.name=")]
        for name in chosen or sorted(METHODS):
            if name in METHODS:
                print("\nmethod.options for " + METHODS[name][0].describe())
        return 0
    try:
        cfg = load_config(args.config, args.overrides)
        if not cfg.data.train:
            raise ConfigError("data.train is not set: name the training data dir (data.train=data/train)")
    except ConfigError as err:
        print(f"speechprompt train: {err}", file=sys.stderr)
        return 2
    if args.allow_changes and not args.resume:
        print("speechprompt train: --allow-changes applies to --resume only", file=sys.stderr)
        return 2
    argv = sys.argv[1:] if sys.argv[1:2] == ["train"] else ["train", *_argv(args)]
    argv = [a for a in argv if a != "--allow-changes"]  # run.sh repeats the run with the options it has now
    fresh = not args.resume and not Path(cfg.experiment.dir).exists()
    try:
        return train_task(cfg, argv, args.resume, args.allow_changes)
    except user_errors() as err:
        print(f"speechprompt train: {err}", file=sys.stderr)
        if fresh and int(os.environ.get("RANK", "0")) == 0:
            import shutil

            shutil.rmtree(cfg.experiment.dir, ignore_errors=True)  # a failed fresh run leaves nothing behind
        return 2


def user_errors() -> tuple[type[Exception], ...]:
    """Errors caused by the config, data or files a user gave: reported in one line, no traceback."""
    from speechprompt.backbones import BackboneError
    from speechprompt.data.audio import AudioError
    from speechprompt.data.kaldi_dir import DataDirError
    from speechprompt.data.output_guard import OutputPathError
    from speechprompt.data.whisper_tokenizer import TokenizerError
    from speechprompt.experiment_dir import ExperimentDirError
    from speechprompt.training.checkpoint import CheckpointError
    from speechprompt.tuning.artifact_check import ArtifactError
    from speechprompt.tuning.config import ConfigError as MethodConfigError

    return (ConfigError, MethodConfigError, DataDirError, BackboneError, CheckpointError, FileNotFoundError,
            AudioError, ArtifactError, OutputPathError, ExperimentDirError, TokenizerError)


def check_tokenizer_covers(tokenizer, texts, keep: str, cfg: TrainConfig, log=print) -> None:
    """Stop when more than data.max_unknown_chars of the targets' characters become <unk>; warn below."""
    from speechprompt.data.text import normalize_text
    from speechprompt.data.tokenizer_check import unknown_characters

    report = unknown_characters(tokenizer, {u: normalize_text(t, keep=keep) for u, t in texts.items()})
    if not report.count:
        return
    where = cfg.data.tokenizer or "the trained tokenizer"
    if report.fraction > cfg.data.max_unknown_chars:
        raise ConfigError(f"data.tokenizer {where}: {report.describe()}; above data.max_unknown_chars="
                          f"{cfg.data.max_unknown_chars:g} — use the tokenizer these targets were written for "
                          "(or leave data.tokenizer unset to train one)")
    log(f"warning: data.tokenizer {where}: {report.describe()} (at most data.max_unknown_chars="
        f"{cfg.data.max_unknown_chars:g} allowed)")


def check_target_lengths(dataset, backbone, max_seconds: float | None = None) -> None:
    """Fail before training when a target needs more decoder positions than the backbone learned.

    Utterances longer than ``max_seconds`` (``data.max_utt_seconds``) are never batched, so they are not checked.
    """
    limit = getattr(backbone, "max_decoder_positions", None)
    if not limit:
        return
    used = [i for i in range(len(dataset)) if max_seconds is None or dataset.durations[i] <= max_seconds]
    if not used:
        return
    prefix = len(dataset.tokenizer.prefix_ids)  # BOS, or a released checkpoint's task prefix
    longest, utt = max((len(dataset.tokens_of(i)) + prefix, dataset.utt_ids[i])
                       for i in used)
    if longest > limit:
        raise ConfigError(f"utterance {utt}: its target needs {longest} decoder positions, the backbone has {limit}; "
                          f"use subwords (data.tokenizer_kind=bpe), a backbone with more positions, or a lower "
                          f"data.max_utt_seconds")


def target_ids_suppressed(dataset, backbone) -> list[int]:
    """Ids that the dataset's targets use and the backbone's checkpoint list suppresses (sorted).

    Whisper's list holds symbols such as '_', '|', '[' and ':'; a task trained to write them (slot filling)
    must be allowed to, or decoding stops where the first one should come.
    """
    from speechprompt.tuning.model import suppressed_among

    return suppressed_among((token for i in range(len(dataset)) for token in dataset.tokens_of(i)), backbone)


def _argv(args) -> list[str]:
    out = (["--config", args.config] if args.config else []) + list(args.overrides)
    return out


def train_task(cfg: TrainConfig, argv: list[str], resume: bool = False, allow_changes: bool = False) -> int:
    """Check the device and folder, hold the experiment folder's lock, and train."""
    from speechprompt.config import check_device
    from speechprompt.data.output_guard import check_writable_dir
    from speechprompt.experiment_dir import ExperimentLock

    check_device(cfg.experiment.device, "experiment.device")
    check_writable_dir(Path(cfg.experiment.dir), "experiment.dir")
    if int(os.environ.get("RANK", "0")) != 0:
        return _train_task(cfg, argv, resume, allow_changes)
    with ExperimentLock(cfg.experiment.dir):
        return _train_task(cfg, argv, resume, allow_changes)


def _train_task(cfg: TrainConfig, argv: list[str], resume: bool, allow_changes: bool) -> int:
    import torch

    from speechprompt.backbones import build_backbone, load_backbone
    from speechprompt.backbones.fetch import resolve_backbone
    from speechprompt.data.dataset import SpeechDataset
    from speechprompt.data.targets import check_lossless, read_with_targets
    from speechprompt.data.text import load_tokenizer, train_tokenizer
    from speechprompt.data.whisper_tokenizer import is_checkpoint_tokenizer_dir
    from speechprompt.score.slu_format import RESERVED, SLU_MARKUP
    from speechprompt.tuning import build_tuned_model, make_config

    make_config(cfg.method.name, cfg.method.options)  # a wrong method option fails before anything is written
    is_main = int(os.environ.get("RANK", "0")) == 0
    log = print if is_main else (lambda *a, **k: None)
    exp = prepare_experiment(cfg, argv, is_main, resume, allow_changes, log)
    torch.manual_seed(cfg.experiment.seed)
    # slot filling: normalisation keeps the markup of 'intent | words [ type : filler ]'
    keep = SLU_MARKUP if cfg.data.output == "slu" else ""
    train_data = read_with_targets(cfg.data.train, cfg.data.text_file)
    backbone_dir = resolve_backbone(cfg.backbone.path) if cfg.backbone.path else None
    if cfg.data.tokenizer:
        tokenizer = load_tokenizer(cfg.data.tokenizer, cfg.data.language, vocabulary_dir=backbone_dir)
    elif backbone_dir is not None and is_checkpoint_tokenizer_dir(backbone_dir):
        # a released checkpoint keeps its own tokenizer: no vocabulary is re-learnt
        tokenizer = load_tokenizer(backbone_dir, cfg.data.language)
        log(f"using the checkpoint's own {tokenizer.kind} tokenizer ({tokenizer.vocab_size} ids, "
            f"decoder prefix {tokenizer.prefix_ids})")
    else:  # a tokenizer of the training targets, deterministic on every rank
        from speechprompt.data.text import normalize_text

        kind = cfg.data.tokenizer_kind
        texts = [normalize_text(t, keep=keep) for t in train_data.text.values()]
        symbols = list(RESERVED) if keep and kind != "char" else []  # subwords never swallow the slot markup
        tokenizer = train_tokenizer(kind, texts, exp / "tokenizer" if is_main else None,
                                    vocab_size=cfg.data.tokenizer_vocab, symbols=symbols)
        log(f"trained a {kind} tokenizer ({tokenizer.vocab_size} ids) into {exp / 'tokenizer'}")
    if cfg.data.output == "slu":  # the slot markup first: the most specific message
        try:
            check_lossless(tokenizer, train_data.text, keep, where=cfg.data.tokenizer or str(exp / "tokenizer"))
        except ValueError as err:
            raise ConfigError(f"data.tokenizer: {err}") from err
    check_tokenizer_covers(tokenizer, train_data.text, keep, cfg, log)
    train_set = SpeechDataset(train_data, tokenizer, cfg.data.tasks, keep=keep,
                              waveform_transform=training_waveform_transform(cfg))
    dev_set = (SpeechDataset(read_with_targets(cfg.data.dev, cfg.data.text_file), tokenizer, cfg.data.tasks, keep=keep)
               if cfg.data.dev else None)
    if backbone_dir is not None:
        backbone = load_backbone(backbone_dir)
    else:
        backbone = build_backbone(cfg.backbone.family, cfg.backbone.size, cfg.backbone.vocab_size or tokenizer.vocab_size,
                                  **cfg.backbone.overrides)
        if is_main:  # a task artifact names its backbone: keep the random one it was trained on
            backbone.save_pretrained(exp / "backbone")
            log(f"built a random {cfg.backbone.family}/{cfg.backbone.size} backbone, saved to {exp / 'backbone'}")
    if cfg.backbone.pad_to_window is not None:
        if not hasattr(backbone, "pad_to_window"):
            raise ConfigError(f"backbone.pad_to_window: a {backbone.family} backbone has no fixed input window "
                              "(Whisper has); remove the option")
        backbone.pad_to_window = cfg.backbone.pad_to_window
    for dataset in (train_set, dev_set) if dev_set is not None else (train_set,):
        check_target_lengths(dataset, backbone, cfg.data.max_utt_seconds)
    if dev_set is not None:
        dev_set.check_audio()  # before step 1, not at the first evaluation
    if cfg.data.spec_augment:
        attach_spec_augment(backbone)
    options = dict(cfg.method.options)
    if tokenizer.kind == "whisper":  # the checkpoint's own ids, prefix and suppression; no vocabulary resize
        options.update(tokenizer.method_options())
        kept = target_ids_suppressed(train_set, backbone)
        if kept:
            log(f"the training targets use {len(kept)} id(s) the checkpoint never generates; this task may: {kept}")
            options["unsuppressed_ids"] = kept
    else:
        options.setdefault("vocab_size", tokenizer.vocab_size)
    if cfg.data.tasks:
        options.setdefault("tasks", list(cfg.data.tasks))
    model = build_tuned_model(backbone, cfg.method.name, options)
    log(str(model.parameter_report()))
    result = fit_and_export(model, train_set, dev_set, cfg, resume=resume, tokenizer=tokenizer, log=log)
    if result.stopped.startswith("signal"):
        log(f"stopped by {result.stopped[7:]} at step {result.step}; continue with: {exp / 'run.sh'} --resume")
        return 130
    if is_main:
        if tokenizer.kind == "whisper":  # the artifact records the checkpoint tokenizer with its language and prefix
            tokenizer.save(exp / "tokenizer")
        tok_dir = Path(cfg.data.tokenizer) if cfg.data.tokenizer and tokenizer.kind != "whisper" else exp / "tokenizer"
        model.save_artifact(exp / "artifact", tok_dir, output=cfg.data.output)
        log(f"task artifact: {exp / 'artifact'} ({result.stopped} at step {result.step})")
    return 0
