"""Debian packages as data: download ``.deb`` files and unpack them into a folder of our own.

Unpacking with ``dpkg-deb -x`` instead of installing avoids two pitfalls: other packages that
conflict with the data packages (``asterisk-prompt-es-co`` removes the Spanish transcripts), and
images that drop ``/usr/share/doc`` (where the asterisk transcripts live). ``apt-get download``
needs no root. Downloaded files are kept in ``<cache>/debs`` so a rebuild works offline; a user
without network access can drop the ``.deb`` files there by hand.

Example:
    >>> from recipes.debian_packages import unpacked_packages
    >>> root = unpacked_packages(["asterisk-core-sounds-en"], "corpora/_debian")
    >>> (root / "usr/share/doc/asterisk-core-sounds-en").is_dir()
    True
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from recipes.corpus_files import RecipeError


def _deb_for(package: str, debs: Path) -> Path | None:
    found = sorted(debs.glob(f"{package}_*.deb"))
    return found[-1] if found else None


def download(packages: list[str], debs: str | Path) -> list[Path]:
    """``.deb`` files of ``packages`` in ``debs``, fetched with ``apt-get download`` when missing."""
    debs = Path(debs)
    debs.mkdir(parents=True, exist_ok=True)
    missing = [p for p in packages if _deb_for(p, debs) is None]
    if missing:
        if shutil.which("apt-get") is None:
            raise RecipeError(f"cannot download {', '.join(missing)}: apt-get not found — put the .deb files in {debs}")
        done = subprocess.run(["apt-get", "download", *missing], cwd=debs, capture_output=True, text=True, check=False)
        if done.returncode != 0 and os.geteuid() == 0:  # a fresh image has no package lists yet
            subprocess.run(["apt-get", "update"], capture_output=True, check=False)
            done = subprocess.run(["apt-get", "download", *missing], cwd=debs, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RecipeError(
                f"'apt-get download {' '.join(missing)}' failed ({done.stderr.strip()[-300:]}) — run 'apt-get update' "
                f"(as root) and retry, or copy the .deb files into {debs}")
    return [_deb_for(p, debs) for p in packages]


def unpacked_packages(packages: list[str], cache: str | Path) -> Path:
    """Download and unpack ``packages`` under ``cache/root``; returns that root folder.

    Each package is unpacked once (a ``<deb name>.unpacked`` stamp records it), so calling this
    again is cheap.
    """
    cache = Path(cache)
    root = cache / "root"
    root.mkdir(parents=True, exist_ok=True)
    for deb in download(packages, cache / "debs"):
        stamp = cache / f"{deb.name}.unpacked"
        if stamp.is_file():
            continue
        done = subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RecipeError(f"dpkg-deb -x {deb} failed: {done.stderr.strip()[-300:]} — delete the file and retry")
        stamp.write_text("ok\n")
    return root


def missing_commands(commands: dict[str, str]) -> dict[str, str]:
    """The commands (name -> Debian package providing it) not found on PATH."""
    return {cmd: pkg for cmd, pkg in commands.items() if shutil.which(cmd) is None}


def install_or_explain(packages: list[str]) -> None:
    """Install ``packages`` with apt-get when running as root; otherwise raise with the exact command."""
    if not packages:
        return
    command = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise RecipeError(f"missing Debian packages — run as root: {' '.join(command)}")
    print(f"installing: {' '.join(packages)}")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        subprocess.run(["apt-get", "update"], capture_output=True, check=False)
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RecipeError(f"'{' '.join(command)}' failed: {done.stderr.strip()[-300:]}")
