"""Training targets from a file of a data dir other than ``text`` (e.g. ``text_slu`` for slot filling).

A data dir may hold several target files in Kaldi text format (``utt_id target...``) beside its
plain ``text``: slot filling trains on ``text_slu`` (``alarm_set | wake me up at [ time : five am ]``,
written by ``python -m recipes.slu_targets``) while ``text`` keeps the transcript for WER.
``speechprompt train data.text_file=text_slu data.output=slu`` reads them through this module.

Example::

    data = read_with_targets("data/train_200", "text_slu")   # DataDir whose .text holds the targets
    check_lossless(tokenizer, data.text, keep=SLU_MARKUP, where="exp/tok")
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

from speechprompt.data.kaldi_dir import DataDir, DataDirError, Problem, read_table
from speechprompt.data.text import Tokenizer, normalize_text


def read_with_targets(path: str | Path, text_file: str = "text", allow_pipes: bool = False) -> DataDir:
    """The data dir at ``path`` with ``text`` replaced by the table in ``<path>/<text_file>``.

    Every utterance needs exactly one target and every target an utterance; otherwise
    :class:`DataDirError` lists each problem with file, line and utterance id.
    """
    data = DataDir.read(path, allow_pipes=allow_pipes)
    if text_file == "text":
        return data
    target_path = Path(path) / text_file
    if not target_path.is_file():
        raise DataDirError(f"{target_path}: no target file '{text_file}' in data dir {path} — write it "
                           f"(slot filling: python -m recipes.slu_targets {path}) or set data.text_file=text")
    problems: list[Problem] = []
    targets, lines = read_table(target_path, problems, min_fields=2, max_fields=None)
    utts = set(data.utt2spk)
    for utt in sorted(set(targets) - utts):
        problems.append(Problem(str(target_path), lines[utt], utt, "target of an utterance the data dir does not have",
                                "remove the line or add the utterance to wav.scp/utt2spk", "extra-target"))
    for utt in sorted(utts - set(targets)):
        problems.append(Problem(str(target_path), None, utt, f"utterance has no target in {text_file}",
                                f"add a line '{utt} <target>' or remove the utterance", "missing-target"))
    if problems:
        raise DataDirError(problems)
    return dataclasses.replace(data, text=targets)


def check_lossless(tokenizer: Tokenizer, texts: Mapping[str, str], keep: str = "", where: str = "tokenizer") -> None:
    """Raise ValueError naming the utterance when a normalised target does not survive encode -> decode.

    Slot-filling targets must come back with every ``[ ] : |`` in place, or decoded text cannot be
    parsed into slots; a tokenizer trained without the markup maps it to ``<unk>``.
    """
    for utt, text in sorted(texts.items()):
        target = normalize_text(text, keep=keep)
        decoded = tokenizer.decode(tokenizer.encode(target))
        if decoded != target:
            raise ValueError(f"{where}: utterance {utt}: target {target!r} decodes as {decoded!r} — use a tokenizer "
                             f"trained on these targets (leave data.tokenizer unset for a character tokenizer)")
