"""What a RIFF/WAVE header promises, to catch files cut short (libsndfile reads them silently short).

Only plain ``RIFF`` files are examined; a ``data`` size of 0 or 0xFFFFFFFF (written by streaming
tools that cannot seek back) means "unknown" and is never reported.
"""

from __future__ import annotations

import struct
from pathlib import Path

_UNKNOWN_SIZES = (0, 0xFFFFFFFF)
_MAX_CHUNKS = 64  # headers with more chunks before the data are left to libsndfile


def wav_truncation(path: str | Path) -> tuple[int, int] | None:
    """``(frames the header promises, frames present)`` when a WAV file holds fewer sample bytes
    than its ``data`` chunk declares; None when it is complete, not a RIFF/WAVE file, or unknown."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            if f.read(4) != b"RIFF":
                return None
            f.read(4)
            if f.read(4) != b"WAVE":
                return None
            block_align = None
            for _ in range(_MAX_CHUNKS):
                header = f.read(8)
                if len(header) < 8:
                    return None
                chunk, length = header[:4], struct.unpack("<I", header[4:])[0]
                if chunk == b"fmt ":
                    fmt = f.read(length)
                    if len(fmt) >= 14:
                        block_align = struct.unpack("<H", fmt[12:14])[0]
                    if length % 2:
                        f.read(1)
                    continue
                if chunk == b"data":
                    if length in _UNKNOWN_SIZES or not block_align:
                        return None
                    present = size - f.tell()
                    if present >= length:
                        return None
                    return length // block_align, max(present, 0) // block_align
                f.seek(length + length % 2, 1)
    except OSError:
        return None
    return None
