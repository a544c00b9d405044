"""Reading a task artifact: ``task.json`` + ``task.safetensors``, every check made, nothing else known.

This module sits below the tuning methods (``prompt`` starts a table from a saved artifact) and
knows neither the methods nor the model: :mod:`artifact` reads through it with the registry's
method names, and builds models from what it returns.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path
from typing import Any

import torch

from speechprompt.tuning.artifact_check import (
    ArtifactError,
    check_finite,
    read_tensors,
    tensor_metadata,
    verify_checksums,
)

FORMAT = "speechprompt-task"
VERSION = 1
TENSORS = "task.safetensors"
META = "task.json"
TOKENIZER = "tokenizer"


def read_artifact_files(directory: str | Path, methods: Collection[str] | None = None
                        ) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(task.json contents, tensors) of an artifact directory.

    ``methods``: the method names task.json may give (the registry's, from :func:`artifact.read_artifact`);
    None leaves that check out (a method reading its initial table cannot see the registry; an edited
    name is still refused, as task.safetensors records its method too)."""
    directory = Path(directory)
    meta_path, tensor_path = directory / META, directory / TENSORS
    for path in (meta_path, tensor_path):
        if not path.is_file():
            raise ArtifactError(f"{path}: missing; a task artifact directory holds {META} and {TENSORS}")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as err:
        raise ArtifactError(f"{meta_path}: not valid JSON ({err})") from err
    if meta.get("format") != FORMAT:
        raise ArtifactError(f"{meta_path}: format is {meta.get('format')!r}, expected {FORMAT!r}")
    if meta.get("version", 0) > VERSION:
        raise ArtifactError(f"{meta_path}: version {meta['version']} is newer than this speechprompt ({VERSION})")
    if methods is not None and meta.get("method") not in methods:
        raise ArtifactError(f"{meta_path}: method {meta.get('method')!r} is not one of {sorted(methods)}; "
                            "was the file edited? export the artifact again")
    verify_checksums(directory, meta, META)
    state = read_tensors(tensor_path)
    saved_method = tensor_metadata(tensor_path).get("method")
    if saved_method is not None and saved_method != meta.get("method"):
        raise ArtifactError(f"{meta_path}: method '{meta.get('method')}', but {tensor_path} holds '{saved_method}' "
                            "tables; the two files come from different artifacts (or task.json was edited)")
    check_finite(state, tensor_path)
    return meta, state
