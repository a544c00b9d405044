"""Task artifacts are checked like checkpoints (issue 19, point 3): checksums recorded at save and
verified at load, NaN/inf tables refused by name, truncated / swapped / edited files give one-line
ArtifactErrors naming the file; artifacts saved before checksums existed still load."""

from __future__ import annotations

import copy
import hashlib
import json

import pytest
import serving_fixtures as fx  # tests/ is on pytest's pythonpath
import torch
from safetensors.torch import load_file, save_file

from speechprompt.backbones import build_backbone
from speechprompt.cli import main
from speechprompt.tuning import ArtifactError, build_tuned_model, load_task


@pytest.fixture(scope="module")
def backbone():
    torch.manual_seed(0)
    return build_backbone("wav2vec2", "tiny", vocab_size=30)


def save(backbone, directory, method="prompt", values=None):
    model = build_tuned_model(copy.deepcopy(backbone), method, values or {"num_prompts": 2})
    model.save_artifact(directory)
    return directory


def meta_of(directory):
    return json.loads((directory / "task.json").read_text())


def drop_checksums(directory):
    """What an artifact saved before checksums existed looks like."""
    meta = meta_of(directory)
    meta.pop("checksums")
    (directory / "task.json").write_text(json.dumps(meta))


def flip_last_value_to_nan(directory):
    path = directory / "task.safetensors"
    raw = bytearray(path.read_bytes())
    raw[-4:] = b"\xff\xff\xff\x7f"  # a float32 NaN
    path.write_bytes(bytes(raw))


def test_checksums_are_recorded_and_old_artifacts_still_load(backbone, tmp_path):
    directory = save(backbone, tmp_path / "a")
    sums = meta_of(directory)["checksums"]
    assert sums == {"task.safetensors": hashlib.sha256((directory / "task.safetensors").read_bytes()).hexdigest()}
    load_task(directory, copy.deepcopy(backbone))
    drop_checksums(directory)
    load_task(directory, copy.deepcopy(backbone))


def test_flipped_bytes_fail_the_checksum_and_nan_tables_are_named(backbone, tmp_path):
    directory = save(backbone, tmp_path / "a")
    flip_last_value_to_nan(directory)
    with pytest.raises(ArtifactError, match=r"task.safetensors: sha256 differs from the one task.json recorded"):
        load_task(directory, copy.deepcopy(backbone))
    drop_checksums(directory)  # an old artifact: no checksum, but the NaN is still found
    with pytest.raises(ArtifactError, match=r"table 'method.prompts' holds 1 NaN or infinite value"):
        load_task(directory, copy.deepcopy(backbone), trainable=True)
    state = load_file(str(directory / "task.safetensors"))
    state["method.prompts"] = torch.full_like(state["method.prompts"], float("inf"))
    save_file(state, str(directory / "task.safetensors"), metadata={"format": "speechprompt-task", "method": "prompt"})
    with pytest.raises(ArtifactError, match=r"table 'method.prompts' holds"):
        load_task(directory, copy.deepcopy(backbone))


@pytest.mark.parametrize("checksums", [True, False])
def test_truncated_file_is_one_artifact_error(backbone, tmp_path, checksums):
    directory = save(backbone, tmp_path / "a")
    if not checksums:
        drop_checksums(directory)
    path = directory / "task.safetensors"
    path.write_bytes(path.read_bytes()[:-7])
    message = "sha256 differs" if checksums else "not a readable safetensors file"
    with pytest.raises(ArtifactError, match=message) as err:
        load_task(directory, copy.deepcopy(backbone))
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_swapped_tensor_file_is_named(backbone, tmp_path):
    a = save(backbone, tmp_path / "a")
    b = save(backbone, tmp_path / "b", values={"num_prompts": 5})
    (a / "task.safetensors").write_bytes((b / "task.safetensors").read_bytes())
    with pytest.raises(ArtifactError, match="sha256 differs"):
        load_task(a, copy.deepcopy(backbone))
    drop_checksums(a)
    with pytest.raises(ArtifactError, match=r"a/task.safetensors: its tables do not fit the 'prompt' model") as err:
        load_task(a, copy.deepcopy(backbone))
    assert "\n" not in str(err.value)
    lora = save(backbone, tmp_path / "lora", method="lora", values={"rank": 2})
    (a / "task.safetensors").write_bytes((lora / "task.safetensors").read_bytes())
    with pytest.raises(ArtifactError, match=r"task.json: method 'prompt', but .*task.safetensors holds 'lora'"):
        load_task(a, copy.deepcopy(backbone))


@pytest.mark.parametrize("method", ["promt", "lora"])
def test_edited_method_name_names_the_file(backbone, tmp_path, method):
    directory = save(backbone, tmp_path / "a")
    meta = meta_of(directory)
    meta["method"] = method
    (directory / "task.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match=rf"{directory / 'task.json'}: method '{method}'"):
        load_task(directory, copy.deepcopy(backbone))


def test_transcribe_with_a_corrupted_artifact_is_one_line(tmp_path, capsys):
    bb, tokenizer = fx.make_backbone(tmp_path)
    artifact = fx.make_prompt_artifact(bb, tmp_path / "asr", tokenizer, seed=1)
    flip_last_value_to_nan(artifact)
    wav = fx.write_waves(tmp_path / "audio", 1)[0]
    rc = main(["transcribe", str(wav), "--backbone", str(tmp_path / "backbone"), "--prompt", f"asr={artifact}"])
    err = capsys.readouterr().err
    assert rc == 2 and "sha256 differs" in err and len(err.strip().splitlines()) == 1
