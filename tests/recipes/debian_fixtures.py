"""Tiny fake Debian packages for recipe tests (built with dpkg-deb, nothing is downloaded)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def make_deb(debs: Path, package: str, files: dict[str, bytes]) -> Path:
    """Build ``debs/<package>_1.0_all.deb`` holding ``files`` (path inside the package -> bytes)."""
    tree = debs.parent / "trees" / package
    for relative, body in files.items():
        path = tree / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    control = tree / "DEBIAN" / "control"
    control.parent.mkdir(parents=True, exist_ok=True)
    control.write_text(f"Package: {package}\nVersion: 1.0\nArchitecture: all\nMaintainer: Test <t@example.org>\n"
                       f"Description: test fixture\n")
    debs.mkdir(parents=True, exist_ok=True)
    deb = debs / f"{package}_1.0_all.deb"
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", "-Zgzip", str(tree), str(deb)],
                   check=True, capture_output=True)
    return deb
