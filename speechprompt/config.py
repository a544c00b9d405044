"""Typed experiment configuration: dataclasses + YAML + ``key.sub=value`` overrides.

One ``TrainConfig`` describes a run: ``data``, ``backbone``, ``method``, ``optim`` and ``experiment``.
Every field carries its help text in ``metadata["help"]``; ``__post_init__`` checks say what to fix.

Example::

    cfg = load_config("conf/prompt.yaml", ["optim.lr=5e-3", "method.options.prompt_length=50"])
    save_config(cfg, cfg.experiment.dir)        # writes <dir>/config.yaml (the resolved config)
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml


class ConfigError(ValueError):
    """A configuration value or key is wrong; the message names the key and what to fix."""


def check_device(device: str, option: str = "--device") -> None:
    """Refuse a CUDA device this machine does not have (``auto`` and ``cpu`` always pass)."""
    import torch

    if device in ("auto", "cpu") or not str(device).startswith("cuda"):
        return
    if not torch.cuda.is_available():
        raise ConfigError(f"{option} {device}: no CUDA GPU is visible to torch on this machine; use cpu")
    index = str(device).partition(":")[2]
    if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
        raise ConfigError(f"{option} {device}: this machine has {torch.cuda.device_count()} CUDA device(s) "
                          f"(cuda:0 .. cuda:{torch.cuda.device_count() - 1})")


def _help(text: str, **kw) -> dict:
    return {"help": text, **kw}


@dataclass
class DataConfig:
    train: str | None = field(default=None, metadata=_help("Kaldi data dir used for training"))
    dev: str | None = field(default=None, metadata=_help("Kaldi data dir for evaluation (dev loss / WER)"))
    tokenizer: str | None = field(default=None, metadata=_help("tokenizer folder (load_tokenizer); None: train one (data.tokenizer_kind) on data.train's targets"))
    tokenizer_kind: Literal["char", "bpe", "unigram"] = field(default="char", metadata=_help(
        "tokenizer trained on data.train's targets when data.tokenizer is not set"))
    tokenizer_vocab: int = field(default=500, metadata=_help(
        "bpe/unigram: vocabulary size (an upper bound on small corpora)"))
    language: str | None = field(default=None, metadata=_help(
        "language token of a released multilingual checkpoint's tokenizer (e.g. cs, es); English-only ones take none"))
    tasks: list[str] | None = field(default=None, metadata=_help("task names: task id = position in this list"))
    text_file: str = field(default="text", metadata=_help(
        "file in each data dir (train and dev) holding the targets, Kaldi text format; e.g. text_slu for slot filling"))
    output: Literal["asr", "slu"] = field(default="asr", metadata=_help(
        "what the decoder learns to write: asr (transcripts) or slu (slot-filling targets "
        "'intent | words [ type : filler ]': normalisation keeps the markup, the artifact is marked as slot filling)"))
    max_batch_seconds: float = field(default=60.0, metadata=_help("audio seconds per batch (per process)"))
    max_utt_seconds: float | None = field(default=None, metadata=_help("skip (and count) longer utterances"))
    spec_augment: bool = field(default=False, metadata=_help("SpecAugment on encoder features while training"))
    speed_perturb: list[float] | None = field(default=None, metadata=_help(
        "training audio is resampled by one of these factors per utterance, e.g. [0.9, 1.0, 1.1] "
        "(tempo and pitch change together, as Kaldi's speed perturbation)"))
    num_workers: int = field(default=0, metadata=_help("DataLoader worker processes"))
    max_unknown_chars: float = field(default=0.01, metadata=_help(
        "largest fraction of training-target characters the tokenizer may write only as <unk>; above it "
        "training stops, below it (but above 0) a warning lists them"))

    def __post_init__(self):
        if self.max_batch_seconds <= 0:
            raise ConfigError(f"data.max_batch_seconds must be > 0 (got {self.max_batch_seconds}); try 60")
        if self.max_utt_seconds is not None and self.max_utt_seconds <= 0:
            raise ConfigError(f"data.max_utt_seconds must be > 0 or null (got {self.max_utt_seconds})")
        if self.num_workers < 0:
            raise ConfigError(f"data.num_workers must be >= 0 (got {self.num_workers})")
        if not 0 <= self.max_unknown_chars <= 1:
            raise ConfigError(f"data.max_unknown_chars must be a fraction in [0, 1] (got {self.max_unknown_chars})")
        if self.tokenizer_vocab < 5:
            raise ConfigError(f"data.tokenizer_vocab must be >= 5 (4 special ids + 1), got {self.tokenizer_vocab}")
        if self.speed_perturb is not None and (not self.speed_perturb or any(f <= 0 for f in self.speed_perturb)):
            raise ConfigError(f"data.speed_perturb must be positive factors such as [0.9, 1.0, 1.1] or null "
                              f"(got {self.speed_perturb})")
        if not self.text_file or "/" in self.text_file:
            raise ConfigError(f"data.text_file must be a file name inside the data dir, e.g. text_slu (got {self.text_file!r})")


@dataclass
class BackboneConfig:
    path: str | None = field(default=None, metadata=_help("backbone folder (load_backbone); overrides family/size"))
    family: str = field(default="wav2vec2", metadata=_help("family of a backbone built from scratch (wav2vec2, hubert, ...)"))
    size: str = field(default="tiny", metadata=_help("build a random backbone of this size when path is not set"))
    vocab_size: int | None = field(default=None, metadata=_help("decoder vocabulary when building from scratch"))
    overrides: dict[str, Any] = field(
        default_factory=dict, metadata=_help("model-config values of a backbone built from scratch, e.g. {dropout: 0.0}")
    )
    pad_to_window: bool | None = field(default=None, metadata=_help(
        "Whisper: encode audio zero-padded to the 30 s window (true) or the true length (false); null: the "
        "backbone's default (released checkpoints: the window). Recorded in the task artifact; decoding follows it"))

    def __post_init__(self):
        if self.vocab_size is not None and self.vocab_size < 5:
            raise ConfigError(f"backbone.vocab_size must be >= 5 (4 special ids + 1), got {self.vocab_size}")


@dataclass
class MethodConfig:
    name: str = field(default="prompt", metadata=_help("tuning method: prompt, deep_prompt, lora, adapter, finetune, ..."))
    options: dict[str, Any] = field(
        default_factory=dict, metadata=_help("method-specific options, e.g. prompt_length, rank (method.options.KEY=V)")
    )

    def __post_init__(self):
        if not self.name:
            raise ConfigError("method.name is empty; name a tuning method, e.g. method.name=prompt")


@dataclass
class OptimConfig:
    lr: float = field(default=1e-3, metadata=_help("peak learning rate (AdamW)"))
    weight_decay: float = field(default=0.0, metadata=_help("AdamW weight decay"))
    betas: list[float] = field(default_factory=lambda: [0.9, 0.98], metadata=_help("AdamW betas"))
    eps: float = field(default=1e-8, metadata=_help("AdamW epsilon"))
    max_steps: int = field(default=1000, metadata=_help("optimizer steps in total"))
    warmup_steps: int = field(default=100, metadata=_help("linear warm-up from 0 to lr over these steps"))
    schedule: Literal["linear", "cosine", "constant"] = field(default="linear", metadata=_help("decay after warm-up"))
    min_lr_ratio: float = field(default=0.0, metadata=_help("final lr as a fraction of lr (linear/cosine)"))
    grad_accum: int = field(default=1, metadata=_help("batches accumulated per optimizer step"))
    clip_norm: float | None = field(default=1.0, metadata=_help("clip the gradient norm to this; null: no clipping"))
    precision: Literal["auto", "fp32", "bf16"] = field(
        default="auto", metadata=_help("auto: bf16 autocast on CUDA with bf16 support, else fp32")
    )
    freeze_encoder_steps: int = field(default=0, metadata=_help(
        "keep the backbone encoder's trained weights fixed for the first N steps, then train them (fairseq's "
        "freeze_finetune_updates); -1: fixed throughout; 0: trained from the first step"))
    encoder_cache: bool = field(default=True, metadata=_help(
        "keep each utterance's encoder output after its first step when that is safe (checked: no trained "
        "parameter reaches the encoder and it is deterministic, e.g. decoder_prompt), so later epochs run the "
        "decoder only; false: never"))

    def __post_init__(self):
        if self.lr <= 0:
            raise ConfigError(f"optim.lr must be > 0 (got {self.lr})")
        if self.max_steps < 1:
            raise ConfigError(f"optim.max_steps must be >= 1 (got {self.max_steps})")
        if not 0 <= self.warmup_steps <= self.max_steps:
            raise ConfigError(f"optim.warmup_steps must be in [0, max_steps={self.max_steps}] (got {self.warmup_steps})")
        if self.grad_accum < 1:
            raise ConfigError(f"optim.grad_accum must be >= 1 (got {self.grad_accum})")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"optim.betas must be two numbers in [0, 1), e.g. [0.9, 0.98] (got {self.betas})")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ConfigError(f"optim.min_lr_ratio must be in [0, 1] (got {self.min_lr_ratio})")
        if self.clip_norm is not None and self.clip_norm <= 0:
            raise ConfigError(f"optim.clip_norm must be > 0 or null (got {self.clip_norm})")
        if self.freeze_encoder_steps < -1:
            raise ConfigError(f"optim.freeze_encoder_steps must be -1 (always), 0 (never) or a number of steps "
                              f"(got {self.freeze_encoder_steps})")


@dataclass
class ExperimentConfig:
    dir: str = field(default="exp/run", metadata=_help("experiment folder: checkpoints, logs, config, run.sh"))
    seed: int = field(default=0, metadata=_help("seed for data order, initialisation and dropout"))
    device: str = field(default="auto", metadata=_help("auto, cpu, cuda, cuda:1, ..."))
    log_every: int = field(default=10, metadata=_help("optimizer steps between log lines"))
    eval_every: int = field(default=200, metadata=_help("optimizer steps between dev evaluations (0: never)"))
    save_every: int = field(default=200, metadata=_help("optimizer steps between checkpoints (0: only at the end)"))
    keep_last: int = field(default=2, metadata=_help("how many recent checkpoints to keep (besides best)"))
    best_metric: Literal["dev_loss", "dev_wer", "last"] = field(
        default="dev_loss", metadata=_help("what picks the model that is kept: dev_loss, dev_wer, or last (the final "
                                           "step; dev loss is still logged)"))
    early_stop_patience: int = field(default=0, metadata=_help("stop after this many evaluations without gain (0: off)"))
    progress: bool = field(default=True, metadata=_help("show a tqdm progress bar"))
    ddp_find_unused: bool = field(
        default=False, metadata=_help("DDP: allow parameters unused in a step (needed by mixtures such as mept)")
    )

    def __post_init__(self):
        for name in ("log_every",):
            if getattr(self, name) < 1:
                raise ConfigError(f"experiment.{name} must be >= 1 (got {getattr(self, name)})")
        for name in ("eval_every", "save_every", "early_stop_patience"):
            if getattr(self, name) < 0:
                raise ConfigError(f"experiment.{name} must be >= 0 (got {getattr(self, name)})")
        if self.keep_last < 1:
            raise ConfigError(f"experiment.keep_last must be >= 1 (got {self.keep_last})")


@dataclass
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig, metadata=_help("data sets and batching"))
    backbone: BackboneConfig = field(default_factory=BackboneConfig, metadata=_help("the speech encoder-decoder"))
    method: MethodConfig = field(default_factory=MethodConfig, metadata=_help("the tuning method"))
    optim: OptimConfig = field(default_factory=OptimConfig, metadata=_help("optimiser and schedule"))
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig, metadata=_help("folder, seed, cadence"))

    def __post_init__(self):
        if self.experiment.best_metric == "dev_wer" and self.experiment.eval_every and not self.data.dev:
            raise ConfigError("experiment.best_metric=dev_wer needs data.dev (a dev data dir)")


# ---------------------------------------------------------------- conversion


def _convert(value: Any, tp: Any, key: str) -> Any:
    """Check/convert ``value`` (already YAML-parsed) to the annotated type ``tp``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if errors else f"{key}: cannot be {value!r}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(str, args))}")
        return value
    if origin is list:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list such as [a, b], got {value!r}")
        return [_convert(v, args[0], f"{key}[{i}]") for i, v in enumerate(value)] if args else list(value)
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping such as {{k: v}}, got {value!r}")
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        number = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value)  # YAML 1.1 reads "1e-3" as a string
            except ValueError:
                pass
        if number is None:
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        if not math.isfinite(number):
            raise ConfigError(f"{key}: expected a finite number, got {value!r}")
        return number
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    raise ConfigError(f"{key}: unsupported field type {tp}")


def _fields(cls) -> dict[str, tuple[dataclasses.Field, Any]]:
    hints = typing.get_type_hints(cls)
    return {f.name: (f, hints[f.name]) for f in dataclasses.fields(cls)}


def _build(cls, values: dict, prefix: str = ""):
    """Build dataclass ``cls`` from a nested mapping, converting and checking every key."""
    if not isinstance(values, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {values!r}")
    known = _fields(cls)
    kwargs = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(
                f"unknown config key '{prefix}{key}'; valid keys under '{prefix.rstrip('.') or '(top)'}': "
                + ", ".join(sorted(known))
            )
        _, tp = known[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = _build(tp, value or {}, f"{prefix}{key}.")
        else:
            kwargs[key] = _convert(value, tp, f"{prefix}{key}")
    try:
        return cls(**kwargs)
    except TypeError as err:  # a required field is missing
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: {err}") from err


def to_dict(config) -> dict:
    return dataclasses.asdict(config)


def _parse_value(text: str) -> Any:
    try:
        return yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        return text


def apply_overrides(values: dict, overrides: list[str], cls=None) -> dict:
    """Apply ``key.sub=value`` strings to a nested mapping (in place) and return it.

    Keys are checked against ``cls`` (default ``TrainConfig``): an unknown key is an error naming
    it and listing the valid ones. ``method.options.<name>`` accepts any name.
    """
    cls = cls or TrainConfig
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' is not of the form key.sub=value")
        dotted, raw = item.split("=", 1)
        parts = dotted.strip().split(".")
        node, node_cls = values, cls
        for depth, part in enumerate(parts):
            prefix = ".".join(parts[:depth])
            last = depth == len(parts) - 1
            if node_cls is None:  # inside a free-form dict (method.options)
                if last:
                    node[part] = _parse_value(raw)
                else:
                    node = node.setdefault(part, {})
                continue
            known = _fields(node_cls)
            if part not in known:
                raise ConfigError(
                    f"unknown config key '{'.'.join(parts[: depth + 1])}'; valid keys under "
                    f"'{prefix or '(top)'}': " + ", ".join(sorted(known))
                )
            _, tp = known[part]
            if last:
                if dataclasses.is_dataclass(tp):
                    raise ConfigError(f"'{dotted}' is a section; set one of its keys: {', '.join(sorted(_fields(tp)))}")
                node[part] = _convert(_parse_value(raw), tp, dotted)
            else:
                child = node.get(part)
                if child is None:
                    child = node[part] = {}
                node = child
                node_cls = tp if dataclasses.is_dataclass(tp) else None
                if node_cls is None and typing.get_origin(tp) is not dict and tp is not dict:
                    raise ConfigError(f"'{'.'.join(parts[: depth + 1])}' is not a section; cannot set '{dotted}'")
    return values


def load_config(path: str | Path | None = None, overrides: list[str] | None = None, cls=None):
    """Read YAML ``path`` (optional), apply ``overrides`` and build a checked config (default ``TrainConfig``)."""
    cls = cls or TrainConfig
    values: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML: {err}") from err
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections ({', '.join(_fields(cls))})")
    apply_overrides(values, overrides or [], cls)
    try:
        return _build(cls, values)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}" if path is not None else str(err)) from err


def save_config(config, directory: str | Path, name: str = "config.yaml") -> Path:
    """Write the resolved config as YAML into ``directory`` (created if needed)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    out = directory / name
    tmp = out.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(to_dict(config), sort_keys=False))
    tmp.replace(out)
    return out


def describe(cls=None, prefix: str = "") -> list[str]:
    """One line per key: ``key (type, default): help`` — for ``--help`` epilogues and docs."""
    cls = cls or TrainConfig
    lines = []
    for name, (f, tp) in _fields(cls).items():
        if dataclasses.is_dataclass(tp):
            lines.extend(describe(tp, f"{prefix}{name}."))
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        lines.append(f"{prefix}{name} (default {default!r}): {f.metadata.get('help', '')}")
    return lines
