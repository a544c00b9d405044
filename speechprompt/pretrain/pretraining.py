"""Pretrain an encoder-decoder to generate each utterance's pseudo subwords (or real transcripts).

The model is the whole backbone trained with the ``finetune`` method (every parameter), its
decoder vocabulary the BPE vocabulary of the pseudo language. The result is saved as a backbone
folder (``load_backbone(out)``) with the pseudo language beside it::

    out/config.json, model.safetensors, speechprompt_backbone.json    the backbone
    out/pseudo_language/                                               k-means centroids + BPE (pseudo targets)
    out/tokenizer/                                                     the decoder's tokenizer (pseudo BPE or text)
    out/pretrain.json                                                  what was trained on, steps, best dev loss
    out/exp/                                                           config.yaml, run.sh, logs, checkpoints
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from speechprompt.config import ConfigError, TrainConfig
from speechprompt.data.kaldi_dir import DataDir
from speechprompt.pretrain.labelling import PSEUDO_TEXT, pseudo_label, read_pseudo_text
from speechprompt.pretrain.pseudo_language import PseudoLanguage
from speechprompt.training.distributed import DistributedContext


def pseudo_labelled(data_dir: str | Path, pseudo_text_path: Path, log=print) -> DataDir:
    """The data dir with its ``text`` replaced by pseudo subwords; unlabelled utterances are counted and left out."""
    data = DataDir.read(data_dir)
    data.durations()  # computed (and cached beside the data) before selecting
    targets = read_pseudo_text(pseudo_text_path)
    unknown = sorted(set(targets) - set(data.utt_ids))
    if unknown:
        raise ValueError(f"{pseudo_text_path}: utterance {unknown[0]} is not in {data_dir} ({len(unknown)} such): "
                         "was it made from another data dir?")
    labelled = [u for u in data.utt_ids if u in targets]
    if not labelled:
        raise ValueError(f"{pseudo_text_path}: no utterance of {data_dir} has pseudo subwords")
    missing = len(data.utt_ids) - len(labelled)
    if missing:
        log(f"{missing} utterance(s) of {data_dir} have no pseudo subwords (too short) and are left out")
    subset = data.select(labelled)
    subset.text = {u: targets[u] for u in labelled}
    return subset


def fitting_targets(data: DataDir, limit: int | None, what: str, log=print) -> DataDir:
    """Leave out utterances whose pseudo subwords (+ BOS and EOS) exceed ``limit`` decoder positions."""
    if not limit:
        return data
    keep = [u for u in data.utt_ids if len(data.text[u].split()) + 2 <= limit]
    if not keep:
        raise ValueError(f"every {what} utterance has more pseudo subwords than the decoder's {limit} positions: "
                         "use a larger --bpe-vocab, a backbone with more positions, or shorter utterances")
    if len(keep) < len(data.utt_ids):
        log(f"{len(data.utt_ids) - len(keep)} {what} utterance(s) have more pseudo subwords than the decoder's "
            f"{limit} positions and are left out")
        text = {u: data.text[u] for u in keep}
        data = data.select(keep)
        data.text = text
    return data


def pretrain(
    cfg: TrainConfig,
    data_dir: str,
    out_dir: str | Path,
    *,
    pseudo_dir: str | Path | None = None,
    dev_dir: str | None = None,
    dev_pseudo_dir: str | Path | None = None,
    init_backbone: str | None = None,
    encoder_from: str | None = None,
    decoder_init: str = "fresh",
    targets: str = "pseudo",
    tokenizer_kind: str = "bpe",
    vocab_size: int = 1000,
    resume: bool = False,
    argv: list[str] | None = None,
    allow_changes: bool = False,
) -> dict:
    """Train and save the backbone; returns the summary written to ``<out>/pretrain.json``.

    The backbone is built from ``cfg.backbone`` (family, size, overrides), or loaded from
    ``init_backbone``, or made of the encoder of the released checkpoint ``encoder_from`` and a
    ``decoder_init`` decoder (``encoder_init.backbone_on_encoder``; ``--init`` of a released checkpoint
    means ``encoder_from`` with its decoder). ``cfg.optim.freeze_encoder_steps`` keeps the encoder fixed
    for the first steps (or throughout).
    """
    import torch

    from speechprompt.backbones import build_backbone, load_backbone
    from speechprompt.data.dataset import SpeechDataset
    from speechprompt.data.text import load_tokenizer, normalize_text, train_tokenizer
    from speechprompt.training.cli import (
        attach_spec_augment,
        check_target_lengths,
        fit_and_export,
        prepare_experiment,
        training_waveform_transform,
    )
    from speechprompt.tuning import build_tuned_model

    if cfg.method.name != "finetune":
        raise ConfigError(f"pretraining trains every parameter: method.name must be finetune (got {cfg.method.name})")
    out = Path(out_dir)
    DistributedContext.setup(cfg.experiment.device)  # under torchrun: the process group, for the barrier below
    is_main = int(os.environ.get("RANK", "0")) == 0
    log = print if is_main else (lambda *a, **k: None)
    exp = prepare_experiment(cfg, ["pretrain", *(argv or [])], is_main, resume, allow_changes, log)
    torch.manual_seed(cfg.experiment.seed)

    if targets == "pseudo":
        if pseudo_dir is None:
            raise ConfigError("--targets pseudo needs --pseudo DIR (the output of 'speechprompt pseudo-label')")
        language = PseudoLanguage.load(pseudo_dir)
        tokenizer = language.tokenizer()
        train_data = pseudo_labelled(data_dir, Path(pseudo_dir) / PSEUDO_TEXT, log)
        dev_data = None
        if dev_dir:
            if dev_pseudo_dir is None:  # label the dev set with the same pseudo language
                if language.feature_config["feature"] != "mfcc" and not language.feature_config.get("backbone"):
                    raise ConfigError("--dev with hidden-state pseudo labels needs --dev-pseudo "
                                      "(speechprompt pseudo-label --data DEV --language PSEUDO --backbone ...)")
                dev_pseudo_dir = exp / "dev_pseudo"
                if is_main:
                    pseudo_label(dev_dir, dev_pseudo_dir, language_dir=pseudo_dir)
                _barrier()
            dev_data = pseudo_labelled(dev_dir, Path(dev_pseudo_dir) / PSEUDO_TEXT, log)
        normalize = False
    elif targets == "text":
        train_data, dev_data = DataDir.read(data_dir), DataDir.read(dev_dir) if dev_dir else None
        if cfg.data.tokenizer:
            tokenizer = load_tokenizer(cfg.data.tokenizer)
        else:
            texts = [normalize_text(t) for t in train_data.text.values()]
            tokenizer = train_tokenizer(tokenizer_kind, texts, None, vocab_size)
        language, normalize = None, True
    else:
        raise ConfigError(f"--targets must be 'pseudo' or 'text', got {targets!r}")

    if init_backbone and encoder_from:
        raise ConfigError("give --init (a whole backbone) or --encoder-from (a checkpoint's encoder), not both")
    if init_backbone and not encoder_from:
        from speechprompt.backbones.fetch import resolve_backbone

        backbone = load_backbone(resolve_backbone(init_backbone))
        if getattr(backbone, "is_released_checkpoint", False):
            log(f"--init {init_backbone} is a released checkpoint: its encoder and decoder are kept, with a new "
                "vocabulary (as --encoder-from with --decoder checkpoint)")
            encoder_from, decoder_init = init_backbone, "checkpoint"
    if encoder_from:
        from speechprompt.pretrain.encoder_init import backbone_on_encoder

        backbone = backbone_on_encoder(encoder_from, tokenizer.vocab_size, decoder_init, cfg.backbone.overrides)
        log(f"backbone: the {len(backbone.encoder_layers)}-layer encoder of {encoder_from} (d={backbone.encoder_dim}) "
            f"and a {decoder_init} {len(backbone.decoder_layers)}-layer decoder for {tokenizer.vocab_size} ids")
    elif not init_backbone:
        backbone = build_backbone(cfg.backbone.family, cfg.backbone.size, tokenizer.vocab_size, **cfg.backbone.overrides)
    if language is not None:  # pseudo targets longer than the decoder's positions are left out (counted)
        limit = getattr(backbone, "max_decoder_positions", None)
        train_data = fitting_targets(train_data, limit, "training", log)
        dev_data = fitting_targets(dev_data, limit, "dev", log) if dev_data is not None else None
    train_set = SpeechDataset(train_data, tokenizer, normalize=normalize,
                              waveform_transform=training_waveform_transform(cfg))
    dev_set = SpeechDataset(dev_data, tokenizer, normalize=normalize) if dev_data is not None else None
    if language is None:
        for dataset in (train_set, dev_set) if dev_set is not None else (train_set,):
            check_target_lengths(dataset, backbone, cfg.data.max_utt_seconds)
    if cfg.data.spec_augment:
        attach_spec_augment(backbone)
    options = {"parts": ["all"], **cfg.method.options, "vocab_size": tokenizer.vocab_size}
    model = build_tuned_model(backbone, "finetune", options)
    log(str(model.parameter_report()))
    result = fit_and_export(model, train_set, dev_set, cfg, resume=resume, log=log)
    summary = {"stopped": result.stopped, "step": result.step, "best_metric": result.best_metric,
               "best_step": result.best_step, "metric": cfg.experiment.best_metric, "targets": targets,
               "data": str(data_dir), "dev": dev_dir, "pseudo_language": str(pseudo_dir) if pseudo_dir else None,
               "init_backbone": init_backbone, "encoder_from": encoder_from,
               "decoder_init": decoder_init if encoder_from else None,
               "freeze_encoder_steps": cfg.optim.freeze_encoder_steps, "vocab_size": tokenizer.vocab_size}
    if result.stopped.startswith("signal"):
        log(f"stopped by {result.stopped[7:]} at step {result.step}; continue with: {exp / 'run.sh'} --resume")
        return summary
    if not is_main:
        return summary
    backbone.save_pretrained(out)
    tokenizer.save(out / "tokenizer")
    if language is not None:
        language.save(out / "pseudo_language")
        shutil.copy(Path(pseudo_dir) / "stats.json", out / "pseudo_language" / "stats.json")
    summary["fingerprint"] = backbone.fingerprint()
    (out / "pretrain.json").write_text(json.dumps(summary, indent=1) + "\n")
    log(f"pretrained backbone: {out} (fingerprint {summary['fingerprint']})")
    return summary


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
