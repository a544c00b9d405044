from __future__ import annotations

import struct

import numpy as np
import pytest
import soundfile as sf

from speechprompt.cli import main
from speechprompt.data.audio import write_audio
from speechprompt.data.kaldi_dir import DataDir
from speechprompt.data.validate import fix, validate


def _wav_with_64bit_pcm(path):
    data = b"\x00" * 800
    fmt = struct.pack("<HHIIHH", 1, 1, 16000, 128000, 8, 64) + b"\x00\x00"
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def _replace_line(path, utt, new_line):
    lines = path.read_bytes().split(b"\n")
    lines = [new_line if line.split(b" ")[0] == utt.encode() else line for line in lines]
    path.write_bytes(b"\n".join(lines))


def _broken_dir(tmp_path, make_dir):
    """A 16-utterance dir with one injected fault per utterance (u04..u15)."""
    d = make_dir(tmp_path, n=16, speakers=4, seconds=[0.4] * 16)
    wav = tmp_path / "wav"
    ids = DataDir.read(d).utt_ids
    u = dict(enumerate(ids))
    DataDir.read(d).write(d)  # adds spk2utt
    # 1 missing audio file, 2 undecodable audio, 3 unsupported encoding, 4 zero-length, 5 all silent, 6 NaN
    (wav / f"{u[4]}.wav").unlink()
    (wav / f"{u[5]}.wav").write_bytes(b"RIFF....junk" * 20)
    _wav_with_64bit_pcm(wav / f"{u[6]}.wav")
    sf.write(wav / f"{u[7]}.wav", np.zeros(0, np.float32), 16000)
    write_audio(wav / f"{u[8]}.wav", np.zeros(8000, np.float32), 16000)
    nan = np.full(800, 0.1, np.float32)
    nan[3] = np.nan
    sf.write(wav / f"{u[9]}.wav", nan, 16000, subtype="FLOAT")
    # 7 empty transcript, 8 non-UTF-8 transcript, 9 duplicate id, 10 id missing from text
    _replace_line(d / "text", u[10], u[10].encode())
    _replace_line(d / "text", u[11], u[11].encode() + b" caf\xe9 latin-1")
    text = (d / "text").read_text("utf-8", "replace").splitlines()
    text = [line for line in text if not line.startswith(u[13])]
    text.insert(1, f"{u[0]} duplicate of the first line")
    (d / "text").write_bytes(b"\n".join(
        line.encode() if not line.startswith(u[11]) else line.encode().replace("\ufffd".encode(), b"\xe9")
        for line in text) + b"\n")
    # 11 malformed utt2spk line, 12 unsorted utt2spk, 13 recording in wav.scp that no utterance uses,
    # 14 stale spk2utt
    _replace_line(d / "utt2spk", u[14], f"{u[14]} spk2 extra".encode())
    rows = (d / "utt2spk").read_text().splitlines()
    rows[2], rows[3] = rows[3], rows[2]
    (d / "utt2spk").write_text("\n".join(rows) + "\n")
    with open(d / "wav.scp", "a") as f:
        f.write(f"zz-orphan {wav / (u[1] + '.wav')}\n")
    (d / "spk2utt").write_text((d / "spk2utt").read_text().replace(f" {u[15]}", ""))
    return d, u


def test_validate_names_every_injected_fault(tmp_path, make_dir):
    d, u = _broken_dir(tmp_path, make_dir)
    _, problems = validate(d)
    report = "\n".join(map(str, problems))
    expected = [
        (f"wav.scp:5: {u[4]}:", "not found"),
        (f"wav.scp:6: {u[5]}:", "cannot decode"),
        (f"wav.scp:7: {u[6]}:", "unsupported audio format"),
        (f"wav.scp:8: {u[7]}:", "empty (0 samples)"),
        (f"wav.scp:9: {u[8]}:", "all silence"),
        (f"wav.scp:10: {u[9]}:", "NaN"),
        (f"text:12: {u[10]}:", "empty transcript"),
        (f"text:13: {u[11]}:", "not valid UTF-8"),
        (f"text:2: {u[0]}:", "duplicate id (first on line 1)"),
        (f"utt2spk:14: {u[13]}:", "has no text entry"),
        (f"utt2spk:15: {u[14]}:", "malformed line"),
        (f"utt2spk:4: {u[2]}:", "not sorted"),
        ("wav.scp:17: zz-orphan:", "recording has no utt2spk entry"),
        (f"spk2utt:{int(u[15][3]) + 1}: spk{u[15][3]}:", "disagree with utt2spk"),
    ]
    for where, what in expected:
        assert any(where in line and what in line for line in report.splitlines()), f"{where} {what}\n{report}"
    assert all(" — " in line for line in report.splitlines())  # every problem says how to fix it
    assert len({what for _, what in expected}) >= 10


def test_fix_leaves_a_valid_dir_and_reports_drops(tmp_path, make_dir, capsys):
    d, u = _broken_dir(tmp_path, make_dir)
    before = (d / "text").read_bytes()
    report = fix(d)
    assert validate(d)[1] == []
    dropped = set(report.dropped)
    assert dropped == {u[i] for i in (4, 5, 6, 7, 8, 9, 10, 11, 13, 14)} | {"zz-orphan"}, report.summary()
    assert {u[0], u[1], u[2], u[3], u[12], u[15]} <= set(DataDir.read(d).utt_ids)
    assert report.kept == 6 and report.reasons["audio-missing"] == 1 and report.reasons["empty-text"] == 1
    assert report.repaired["duplicate"] == 1 and report.repaired["unsorted"] == 1
    assert (report.backup / "text").read_bytes() == before
    assert u[4] in (report.backup / "dropped.txt").read_text()
    assert "dropped" in report.summary()
    assert DataDir.read(d).text[u[0]] == "hello world number 0"  # the first of the duplicates is kept


def test_cli_validate_and_fix_exit_codes(tmp_path, make_dir, capsys):
    d, u = _broken_dir(tmp_path, make_dir)
    assert main(["data", "validate", str(d)]) == 1
    out = capsys.readouterr().out
    assert len(out.splitlines()) >= 14 and f"{u[4]}: audio file not found" in out
    assert main(["data", "fix", str(d)]) == 0
    assert "kept 6 utterance(s)" in capsys.readouterr().out
    assert main(["data", "validate", str(d)]) == 0


def test_segments_outside_recording_and_pipes(tmp_path, make_tone):
    wav = write_audio(tmp_path / "rec.wav", make_tone(2.0), 16000)
    d = tmp_path / "seg"
    d.mkdir()
    (d / "wav.scp").write_text(f"rec {wav}\nrec2 cat {wav} |\n")
    (d / "segments").write_text("a rec 0 1\nb rec 1.5 3.5\nc rec 1.2 1.2\nd rec2 0 1\n")
    (d / "utt2spk").write_text("a s\nb s\nc s\nd s\n")
    (d / "text").write_text("a one\nb two\nc three\nd four\n")
    report = "\n".join(map(str, validate(d)[1]))
    assert "segments:2: b: segment 1.5-3.5 s lies outside recording rec" in report
    assert "segments:3: c: segment end 1.2 is not after start 1.2" in report
    assert "wav.scp:2: rec2: piped command" in report
    assert main(["data", "fix", str(d)]) == 1  # refuses: cannot check piped audio without --allow-pipes
    assert main(["data", "fix", "--allow-pipes", str(d)]) == 0
    assert DataDir.read(d, allow_pipes=True).utt_ids == ["a", "d"]


def test_fix_repairs_cached_tables_without_dropping(data_dir):
    data = DataDir.read(data_dir)
    true = data.durations()
    rows = (data_dir / "utt2dur").read_text().splitlines()
    rows[0] = rows[0].split()[0] + " abc"  # malformed
    rows[1] = rows[1].split()[0] + " 9.5"  # stale
    (data_dir / "utt2dur").write_text("\n".join(rows) + "\n")
    problems = validate(data_dir)[1]
    assert {p.kind for p in problems} == {"malformed", "stale-utt2dur"}
    report = fix(data_dir, backup=False)
    assert report.kept == 6 and not report.dropped and report.backup is None
    assert validate(data_dir)[1] == []
    assert DataDir.read(data_dir).durations() == pytest.approx(true)
