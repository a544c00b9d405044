"""Read reference / hypothesis transcripts: Kaldi ``text`` files or sclite ``trn`` files.

- Kaldi ``text``: one utterance per line, ``utt_id word word ...`` (an id alone is an empty transcript).
- sclite ``trn``: one utterance per line, ``word word ... (utt_id)``.

``fmt="auto"`` picks ``trn`` when every non-blank line ends with ``(id)``, else ``text``.
Blank lines carry no utterance and are skipped; everything else that cannot be read raises
:class:`TranscriptError` naming the file, the line and what to fix.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

TRN_LINE = re.compile(r"^(?P<words>.*?)\s*\((?P<utt>[^()\s]+)\)\s*$")
FORMATS = ("auto", "text", "trn")


class TranscriptError(ValueError):
    """A transcript file that cannot be read; the message names file, line and the fix."""


def _read_lines(path: Path) -> list[str]:
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise TranscriptError(f"{path}: cannot read transcript file ({err.strerror})") from err
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
        logging.getLogger(__name__).warning("%s starts with a UTF-8 byte-order mark (BOM); it is ignored", path)
    lines = raw.split(b"\n")
    out = []
    for number, line in enumerate(lines, start=1):
        try:
            out.append(line.decode("utf-8").rstrip("\r"))
        except UnicodeDecodeError as err:
            raise TranscriptError(
                f"{path}:{number}: not valid UTF-8 (byte {err.start}); re-encode the file as UTF-8"
            ) from err
    return out


def detect_format(lines: list[str]) -> str:
    """``trn`` when every non-blank line ends with ``(utt_id)``, else ``text``."""
    content = [line for line in lines if line.strip()]
    if content and all(TRN_LINE.match(line) for line in content):
        return "trn"
    return "text"


def read_transcripts(path: str | Path, fmt: str = "auto", line_numbers: dict[str, int] | None = None) -> dict[str, str]:
    """Read a transcript file into ``{utt_id: text}`` (text as written, not normalised).

    ``line_numbers``, when given, is filled with ``{utt_id: line}`` for later error messages.
    Raises :class:`TranscriptError` on unreadable files, bad lines and duplicate ids.
    """
    path = Path(path)
    if fmt not in FORMATS:
        raise ValueError(f"unknown transcript format {fmt!r}; use one of {FORMATS}")
    lines = _read_lines(path)
    if fmt == "auto":
        fmt = detect_format(lines)
    transcripts: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if fmt == "trn":
            match = TRN_LINE.match(line)
            if match is None:
                raise TranscriptError(
                    f"{path}:{number}: trn line does not end with '(utt_id)': {line[:80]!r}"
                )
            utt_id, words = match.group("utt"), match.group("words")
        else:
            if line[0].isspace():
                raise TranscriptError(
                    f"{path}:{number}: line starts with white space; a Kaldi text line is 'utt_id words...'"
                )
            utt_id, _, words = line.partition(" ")
            if "\t" in utt_id:
                utt_id, _, rest = utt_id.partition("\t")
                words = f"{rest} {words}"
        if utt_id in first_line:
            raise TranscriptError(
                f"{path}:{number}: utterance {utt_id!r} repeats line {first_line[utt_id]}; keep one line per utterance"
            )
        first_line[utt_id] = number
        transcripts[utt_id] = " ".join(words.split())
    if line_numbers is not None:
        line_numbers.update(first_line)
    return transcripts
