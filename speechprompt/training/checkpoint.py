"""Training checkpoints: safetensors for tensors, JSON for everything else, written atomically.

A checkpoint is a folder ``<root>/step-00000120/`` holding

- ``model.safetensors``      the trained tensors (trainable parameters + buffers)
- ``optimizer.safetensors``  optimizer state tensors, keyed ``<param index>.<name>``
- ``state.json``             step, epoch, data position, RNG states, metrics, optimizer param groups,
                             and the size + SHA-256 of both tensor files (checked on load)

The folder is built under a temporary name and moved into place with ``os.replace``, so a run
killed while saving leaves either the old or the new checkpoint, never half of one. Nothing is
unpickled: a checkpoint handed over by someone else cannot run code.
"""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from speechprompt.tuning.artifact_check import sha256_of

STEP_PREFIX = "step-"


class CheckpointError(RuntimeError):
    """A checkpoint folder is missing files, truncated or corrupt; the message names the file."""


# ---------------------------------------------------------------- RNG state <-> JSON


def _b64(t: torch.Tensor) -> str:
    return base64.b64encode(t.cpu().numpy().tobytes()).decode("ascii")


def _unb64(s: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(s)), dtype=torch.uint8).clone()


def capture_rng_state() -> dict:
    """Python, NumPy, torch CPU (and CUDA) generator states as JSON-able data."""
    py_version, py_state, py_gauss = random.getstate()
    np_state = np.random.get_state()
    state = {
        "python": [py_version, list(py_state), py_gauss],
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "torch": _b64(torch.get_rng_state()),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = [_b64(s) for s in torch.cuda.get_rng_state_all()]
    return state


def restore_rng_state(state: dict) -> None:
    version, py_state, gauss = state["python"]
    random.setstate((version, tuple(py_state), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(_unb64(state["torch"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([_unb64(s) for s in state["cuda"]])


# ---------------------------------------------------------------- optimizer state <-> safetensors + JSON


def optimizer_to_flat(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split ``optimizer.state_dict()`` into tensors (safetensors) and plain values (JSON)."""
    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, entry in sd["state"].items():
        for name, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{index}.{name}"] = value
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def optimizer_from_flat(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    for key, value in meta.get("scalars", {}).items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    groups = []
    for g in meta["param_groups"]:
        g = dict(g)
        if isinstance(g.get("betas"), list):
            g["betas"] = tuple(g["betas"])
        groups.append(g)
    return {"state": state, "param_groups": groups}


# ---------------------------------------------------------------- files


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def step_dir(root: str | Path, step: int) -> Path:
    return Path(root) / f"{STEP_PREFIX}{step:08d}"


def save_checkpoint(
    directory: str | Path,
    model_tensors: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer | None,
    state: dict,
) -> Path:
    """Write a checkpoint folder atomically (temporary folder, fsync, ``os.replace``)."""
    final = Path(directory)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    files = {"model.safetensors": {k: v.detach().cpu().contiguous() for k, v in model_tensors.items()}}
    state = dict(state)
    if optimizer is not None:
        opt_tensors, opt_meta = optimizer_to_flat(optimizer)
        files["optimizer.safetensors"] = opt_tensors
        state["optimizer"] = opt_meta
    state["files"] = {}
    for name, tensors in files.items():
        save_file(tensors, str(tmp / name))
        _fsync(tmp / name)
        state["files"][name] = {"bytes": (tmp / name).stat().st_size, "sha256": sha256_of(tmp / name)}
    (tmp / "state.json").write_text(json.dumps(state, indent=1))
    _fsync(tmp / "state.json")
    if final.exists():  # re-saving the same step (e.g. after a resume): swap, then drop the old one
        old = final.parent / f".{final.name}.old-{os.getpid()}"
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
    return final


def verify_checkpoint(directory: str | Path) -> dict:
    """Return the checkpoint's state; raise ``CheckpointError`` naming the bad file otherwise."""
    directory = Path(directory)
    state_path = directory / "state.json"
    if not state_path.is_file():
        raise CheckpointError(f"{state_path} is missing (the checkpoint was not finished)")
    try:
        state = json.loads(state_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{state_path} is not valid JSON ({err}); the file is truncated or corrupt") from err
    for name, info in state.get("files", {}).items():
        path = directory / name
        if not path.is_file():
            raise CheckpointError(f"{path} is missing")
        size = path.stat().st_size
        if size != info["bytes"]:
            raise CheckpointError(f"{path} has {size} bytes, expected {info['bytes']}: the file is truncated or corrupt")
        if sha256_of(path) != info["sha256"]:
            raise CheckpointError(f"{path} does not match its SHA-256 in state.json: the file is corrupt")
    return state


def load_checkpoint(directory: str | Path) -> tuple[dict[str, torch.Tensor], dict | None, dict]:
    """Load ``(model_tensors, optimizer_state_dict or None, state)`` from a verified checkpoint."""
    directory = Path(directory)
    state = verify_checkpoint(directory)
    try:
        model = load_file(str(directory / "model.safetensors"))
        optimizer = None
        if (directory / "optimizer.safetensors").is_file() and "optimizer" in state:
            optimizer = optimizer_from_flat(load_file(str(directory / "optimizer.safetensors")), state["optimizer"])
    except Exception as err:  # safetensors raises its own error types for bad headers
        raise CheckpointError(f"{directory}: cannot read tensors ({err})") from err
    return model, optimizer, state


def list_checkpoints(root: str | Path) -> list[Path]:
    """Step checkpoints under ``root``, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        if path.is_dir() and path.name.startswith(STEP_PREFIX) and path.name[len(STEP_PREFIX) :].isdigit():
            found.append(path)
    return sorted(found, key=lambda p: int(p.name[len(STEP_PREFIX) :]))


def load_latest(root: str | Path, warn=print):
    """Load the newest usable checkpoint under ``root``; a corrupt one is reported and the previous used.

    Returns ``(path, model_tensors, optimizer_state, state)`` or ``None`` when there is none.
    Raises ``CheckpointError`` when checkpoints exist but none is usable.
    """
    candidates = list_checkpoints(root)
    problems = []
    for path in reversed(candidates):
        try:
            model, optimizer, state = load_checkpoint(path)
        except CheckpointError as err:
            problems.append(str(err))
            warn(f"checkpoint {path} is unusable: {err}; trying the previous one")
            continue
        if problems:
            warn(f"resuming from {path} (skipped {len(problems)} unusable newer checkpoint(s))")
        return path, model, optimizer, state
    if problems:
        raise CheckpointError(f"no usable checkpoint under {root}: " + "; ".join(problems))
    return None


def prune_checkpoints(root: str | Path, keep_last: int) -> list[Path]:
    """Delete all but the ``keep_last`` newest step checkpoints (and stale temporary folders)."""
    removed = []
    for path in list_checkpoints(root)[:-keep_last] if keep_last > 0 else []:
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    for path in Path(root).glob(".*.tmp-*") if Path(root).is_dir() else []:
        pid = path.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid():
            shutil.rmtree(path, ignore_errors=True)
    return removed


def load_best(model: torch.nn.Module, exp_dir: str | Path) -> dict:
    """Load ``<exp_dir>/checkpoints/best`` (or the newest step checkpoint) into ``model``; return its state."""
    root = Path(exp_dir) / "checkpoints"
    best = root / "best"
    if best.is_dir():
        tensors, _, state = load_checkpoint(best)
    else:
        found = load_latest(root)
        if found is None:
            raise CheckpointError(f"no checkpoint under {root}")
        _, tensors, _, state = found
    model.load_state_dict(tensors, strict=False)
    return state
