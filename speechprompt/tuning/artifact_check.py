"""Integrity of task artifacts: checksums recorded at save, verified at load; finite tables only.

``task.json`` carries ``"checksums": {relative path: sha256}`` of ``task.safetensors`` and of the
tokenizer files. An artifact saved before checksums existed has none and is read as before.
Every problem is one :class:`ArtifactError` line naming the file and what to do.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch


class ArtifactError(ValueError):
    """An artifact that cannot be read or does not fit the given backbone/model."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def artifact_checksums(directory: Path, names: list[str]) -> dict[str, str]:
    """sha256 of each file of ``names`` (relative to ``directory``) and of every file under a folder."""
    sums = {}
    for name in names:
        path = directory / name
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            sums[file.relative_to(directory).as_posix()] = sha256_of(file)
    return sums


def verify_checksums(directory: Path, meta: dict[str, Any], meta_name: str) -> None:
    """Compare each recorded checksum with the file on disk (no record: an older artifact, accepted)."""
    recorded = meta.get("checksums")
    if recorded is None:
        return
    if not isinstance(recorded, dict):
        raise ArtifactError(f"{directory / meta_name}: 'checksums' is not a mapping of file -> sha256")
    for name, expected in sorted(recorded.items()):
        path = directory / name
        if not path.is_file():
            raise ArtifactError(f"{path}: missing, but {meta_name} records it; copy the whole artifact directory")
        if sha256_of(path) != expected:
            raise ArtifactError(f"{path}: sha256 differs from the one {meta_name} recorded at save time (the file "
                                "is corrupted, truncated or from another artifact); copy or export the artifact again")


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file; an unreadable file is an :class:`ArtifactError` naming it."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ArtifactError(f"{path}: not a readable safetensors file ({reason}); the file is truncated or "
                            "corrupted: copy or export the artifact again") from err


def tensor_metadata(path: Path) -> dict[str, str]:
    """The string metadata of a (readable) safetensors file."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata() or {})


def check_finite(state: dict[str, torch.Tensor], path: Path) -> None:
    """Refuse a table holding NaN or infinite values, naming the table."""
    for name, tensor in sorted(state.items()):
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise ArtifactError(f"{path}: table '{name}' holds {bad} NaN or infinite value(s) of {tensor.numel()}; "
                                "the artifact is corrupted or training diverged: use an earlier checkpoint")
