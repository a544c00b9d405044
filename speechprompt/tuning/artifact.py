"""Task artifacts: ``task.safetensors`` + ``task.json`` (+ ``tokenizer/`` when given).

The artifact holds what inference needs and nothing that could run code: the method's final
tables (never its training-time reparameterisation), a re-initialised vocabulary when there is one,
the method's hyperparameters, and the name and fingerprint of the backbone it was trained on.
Loading onto another backbone fails and names both fingerprints. ``task.json`` records the sha256
of the other files, verified at load (:mod:`artifact_check`); a table with NaN or infinite values
is refused.

Layers, bottom up: :mod:`artifact_reader` reads the files (below the methods, which may start from
a saved table); this module writes them, reads them against the registry and adds a saved task to
a model; ``model.load_task`` builds a model from one.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import save_file

from speechprompt.tuning.artifact_check import ArtifactError, artifact_checksums
from speechprompt.tuning.artifact_reader import FORMAT, META, TENSORS, TOKENIZER, VERSION, read_artifact_files
from speechprompt.tuning.registry import METHODS

if TYPE_CHECKING:  # the model imports this module (save_artifact, add_task), never the other way round
    from speechprompt.tuning.model import TunedModel


def backbone_name(backbone) -> str:
    return str(getattr(backbone, "family", None) or type(backbone).__name__)


def save_tokenizer(source: Path, out: Path) -> None:
    """A copy of the tokenizer folder, except a released checkpoint's vocabulary (3.8 MB, the backbone's own
    ``tokenizer.json``), which the artifact names by sha256 and reads from the backbone's folder."""
    from speechprompt.data.whisper_tokenizer import save_naming_vocabulary

    if not save_naming_vocabulary(source, out):
        shutil.copytree(source, out, dirs_exist_ok=True)


def save_artifact(model: TunedModel, directory: str | Path, tokenizer_dir: str | Path | None = None,
                  output: str | None = None) -> Path:
    """``output`` ("asr" or "slu"), when given, is written to task.json: what the decoder writes."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    method_state = model.method.export_state()
    state = {f"method.{name}": tensor for name, tensor in method_state.items()}
    params = dict(model.backbone.named_parameters())
    for name in model.vocab_parameter_names:
        if name not in method_state:  # finetune already stores it under its own name
            state[f"vocab.{name}"] = params[name].detach()
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in state.items()}
    save_file(state, str(directory / TENSORS), metadata={"format": FORMAT, "method": model.method_name})
    config = model.method.exported_config().to_dict()
    config["tasks"] = list(model.task_names)
    meta: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "method": model.method_name,
        "config": config,
        "tasks": list(model.task_names),
        "backbone": {
            "name": backbone_name(model.backbone),
            "fingerprint": model.backbone_fingerprint,
            "parameters": model.backbone_parameters,
        },
        "trainable_parameters": model.parameter_report().trainable,
        "stored_values": sum(t.numel() for t in state.values()),
        "vocab_parameters": list(model.vocab_parameter_names),
        "tokenizer": None,
    }
    if output is not None:
        meta["output"] = output
    if tokenizer_dir is not None:
        save_tokenizer(Path(tokenizer_dir), directory / TOKENIZER)
        meta["tokenizer"] = TOKENIZER
        settings = directory / TOKENIZER / "speechprompt_tokenizer.json"  # a released checkpoint's tokenizer
        if settings.is_file():
            saved = json.loads(settings.read_text(encoding="utf-8"))
            meta.update(tokenizer_kind=saved["kind"], language=saved.get("language"))
    if hasattr(model.backbone, "pad_to_window"):  # how the encoder saw the audio in training: decoding follows
        meta["pad_to_window"] = bool(model.backbone.pad_to_window)
    meta["task_prefixes"] = {name: prefix for name, prefix in zip(model.task_names, model.task_prefixes, strict=True)}
    meta["checksums"] = artifact_checksums(directory, [TENSORS] + ([TOKENIZER] if tokenizer_dir is not None else []))
    (directory / META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return directory


def read_artifact(directory: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(task.json contents, tensors) of an artifact directory whose method is a registered one."""
    return read_artifact_files(directory, METHODS)


def check_fingerprint(directory: Path, meta: dict[str, Any], name: str, fingerprint: str) -> None:
    saved = meta["backbone"]
    if saved["fingerprint"] != fingerprint:
        raise ArtifactError(
            f"{directory}: trained on backbone '{saved['name']}' (fingerprint {saved['fingerprint']}), "
            f"but the given backbone is '{name}' (fingerprint {fingerprint}); load the backbone it was trained on"
        )


def split_state(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    method = {k.removeprefix("method."): v for k, v in state.items() if k.startswith("method.")}
    vocab = {k.removeprefix("vocab."): v for k, v in state.items() if k.startswith("vocab.")}
    return method, vocab


@torch.no_grad()
def load_vocab(model: TunedModel, vocab_state: dict[str, torch.Tensor], directory: Path) -> None:
    params = dict(model.backbone.named_parameters())
    for name, value in vocab_state.items():
        if name not in params or params[name].shape != value.shape:
            raise ArtifactError(f"{directory}: vocabulary tensor '{name}' {tuple(value.shape)} does not fit the model")
        params[name].copy_(value)


def add_task(model: TunedModel, name: str, artifact_dir: str | Path) -> int:
    directory = Path(artifact_dir)
    if name in model.task_names:
        raise ArtifactError(f"task name '{name}' is already loaded ({model.task_names}); choose another name")
    meta, state = read_artifact(directory)
    if meta["method"] != model.method_name:
        raise ArtifactError(f"{directory}: method '{meta['method']}' cannot join a '{model.method_name}' model")
    check_fingerprint(directory, meta, backbone_name(model.backbone), model.backbone_fingerprint)
    for field_name in type(model.config).task_compatible_fields:
        if meta["config"].get(field_name) != getattr(model.config, field_name):
            raise ArtifactError(
                f"{directory}: {field_name}={meta['config'].get(field_name)!r} but the loaded tasks use "
                f"{getattr(model.config, field_name)!r}; tasks in one model must agree on it"
            )
    method_state, vocab_state = split_state(state)
    params = dict(model.backbone.named_parameters())
    if set(vocab_state) != set(model.vocab_parameter_names) or any(
        not torch.equal(params[k].detach().cpu(), v) for k, v in vocab_state.items()
    ):
        raise ArtifactError(f"{directory}: its vocabulary differs from the loaded tasks'; tasks in one batch share one vocabulary")
    prefix = list(meta["config"].get("task_prefix") or [model.bos_id])
    if len(prefix) != model.prefix_len:
        raise ArtifactError(f"{directory}: its decoder prefix has {len(prefix)} ids, the loaded tasks' have "
                            f"{model.prefix_len}; tasks in one batch need prefixes of one length")
    try:
        model.method.append_tasks(method_state)
    except ValueError as err:
        raise ArtifactError(f"{directory}: {err}") from err
    model.task_names.append(name)
    model.task_prefixes.append(prefix)
    model.config.tasks = list(model.task_names)
    return len(model.task_names) - 1
