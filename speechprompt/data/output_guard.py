"""Checks that an output folder cannot destroy the input it is computed from.

Verbs that write a folder call these before reading anything heavy: an ``--out`` equal to (or
inside) an input data dir, or one that already holds another data dir, is refused with a message
that names both paths and says what to pass instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

# files whose presence marks a folder as a Kaldi data dir
DATA_DIR_MARKERS = ("wav.scp", "utt2spk")


class OutputPathError(ValueError):
    """An output path that would overwrite (part of) the input or another user's files."""


def _same_or_inside(path: Path, folder: Path) -> bool:
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def refuse_input_as_output(out: Path, inputs: Iterable[Path], option: str = "OUT",
                           allow_inside: bool = False) -> None:
    """Raise when ``out`` is one of ``inputs`` (or, unless ``allow_inside``, a folder inside one)."""
    for source in inputs:
        same = out.resolve() == source.resolve()
        if same or (not allow_inside and _same_or_inside(out, source)):
            where = "is" if same else "is inside"
            raise OutputPathError(f"{option} {out} {where} the input data dir {source}: writing there would "
                                  "overwrite its files — choose another output folder")


def refuse_data_dir_as_output(out: Path, option: str = "--out") -> None:
    """Raise when ``out`` already holds a Kaldi data dir (its ``text`` would be replaced)."""
    found = [name for name in DATA_DIR_MARKERS if (out / name).is_file()]
    if found:
        raise OutputPathError(f"{option} {out} holds a Kaldi data dir ({', '.join(found)}): its files would be "
                              "overwritten — choose another output folder")


def refuse_non_empty(out: Path, option: str = "OUT", flag: str = "--overwrite") -> None:
    """Raise when ``out`` exists and is not an empty folder (``flag`` lets the user replace it)."""
    if out.exists() and not out.is_dir():
        raise OutputPathError(f"{option} {out} is a file, not a folder — choose another output folder")
    if out.is_dir() and any(out.iterdir()):
        raise OutputPathError(f"{option} {out} is not empty — choose a new folder, or pass {flag} to replace "
                              "its data dir files")


def refuse_input_file_as_output(out: Path | None, inputs: Iterable[Path | str], option: str = "--output") -> None:
    """Raise when the output file ``out`` is one of the input files (audio, wav.scp, task list)."""
    if out is None:
        return
    target = out.resolve()
    for source in inputs:
        source = Path(source)
        if source.is_file() and source.resolve() == target:
            raise OutputPathError(f"{option} {out} is one of the inputs ({source}): writing there would "
                                  "overwrite it — choose another output file")


def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable_dir(out: Path, option: str = "--out") -> None:
    """``out`` is (or can be created as) a folder this process may write into; creates nothing."""
    import os

    existing = _nearest_existing(out)
    if existing == out.absolute() and not out.is_dir():
        raise OutputPathError(f"{option} {out} is a file, not a folder — choose another output folder")
    if not existing.is_dir():
        raise OutputPathError(f"{option} {out}: {existing} is a file, not a folder — choose another output folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputPathError(f"{option} {out}: {existing} is not writable — choose a folder you may write to")


def check_writable_file(out: Path, option: str = "--output") -> None:
    """``out`` can be written as a file (its folder exists or can be created, and is writable)."""
    import os

    if out.is_dir():
        raise OutputPathError(f"{option} {out} is a folder — name a file")
    if out.exists() and not os.access(out, os.W_OK):
        raise OutputPathError(f"{option} {out} is not writable — choose another output file")
    check_writable_dir(out.parent, option=f"{option} {out}: folder")
