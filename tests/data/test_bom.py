"""A UTF-8 byte-order mark at the start of a Kaldi file is named, and `data fix` removes it without
dropping the first utterance (issue 19, point 7)."""

from __future__ import annotations

import logging

from speechprompt.cli import main
from speechprompt.data.kaldi_dir import DataDir
from speechprompt.score.transcripts import read_transcripts

BOM = b"\xef\xbb\xbf"


def test_bom_is_named_and_fix_keeps_the_first_utterance(data_dir, capsys):
    first = DataDir.read(data_dir).utt_ids[0]
    for name in ("text", "utt2spk"):
        (data_dir / name).write_bytes(BOM + (data_dir / name).read_bytes())
    data, problems = DataDir.scan(data_dir)
    assert [(p.line, p.utt_id, p.kind) for p in problems] == [(1, first, "bom"), (1, first, "bom")]
    assert "file starts with a UTF-8 byte-order mark (BOM)" in str(problems[0]) and first in data.text
    assert main(["data", "validate", "--no-audio", str(data_dir)]) == 1
    assert "text:1: " + first + ": file starts with a UTF-8 byte-order mark" in capsys.readouterr().out
    assert main(["data", "fix", "--no-audio", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert "dropped 0" in out and "repaired    2 line(s) for bom" in out
    assert not (data_dir / "text").read_bytes().startswith(BOM) and len(DataDir.read(data_dir)) == 6


def test_transcripts_with_a_bom_are_read_and_the_mark_reported(tmp_path, caplog):
    (tmp_path / "hyp").write_bytes(BOM + b"u1 hello\nu2 world\n")
    with caplog.at_level(logging.WARNING):
        assert read_transcripts(tmp_path / "hyp") == {"u1": "hello", "u2": "world"}
    assert "starts with a UTF-8 byte-order mark (BOM); it is ignored" in caplog.text
