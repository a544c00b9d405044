from __future__ import annotations

import numpy as np
import pytest

from speechprompt.data.audio import AudioError
from speechprompt.data.kaldi_dir import DataDir, DataDirError, Segment


def test_read_write_round_trip_derives_spk2utt(data_dir, tmp_path):
    data = DataDir.read(data_dir)
    assert len(data) == 6 and data.utt_ids == sorted(data.utt_ids)
    assert data.text["spk0-utt00"] == "hello world number 0"
    out = data.write(tmp_path / "copy")
    assert (out / "spk2utt").read_text().splitlines()[0] == "spk0 spk0-utt00 spk0-utt02 spk0-utt04"
    again = DataDir.read(out)
    assert again.wav_scp == data.wav_scp and again.text == data.text and again.utt2spk == data.utt2spk


def test_c_locale_sort_order(tmp_path, make_tone):
    data = DataDir(wav_scp={"a_1": "x.wav", "B": "y.wav", "A_1": "z.wav"}, text={"a_1": "a", "B": "b", "A_1": "c"},
                   utt2spk={"a_1": "s", "B": "s", "A_1": "s"})
    out = data.write(tmp_path / "d")
    assert [line.split()[0] for line in (out / "wav.scp").read_text().splitlines()] == ["A_1", "B", "a_1"]
    assert (out / "spk2utt").read_text() == "s A_1 B a_1\n"
    assert data.utt_ids == ["A_1", "B", "a_1"]


def test_unsorted_and_duplicate_wav_scp_name_file_and_line(data_dir):
    lines = (data_dir / "wav.scp").read_text().splitlines()
    lines[1], lines[2] = lines[2], lines[1]
    lines.append(lines[0])
    (data_dir / "wav.scp").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataDirError) as err:
        DataDir.read(data_dir)
    text = str(err.value)
    assert "wav.scp:3: spk0-utt02: not sorted: comes after 'spk0-utt04'" in text
    assert f"wav.scp:7: {lines[0].split()[0]}: duplicate id (first on line 1)" in text


def test_missing_ids_and_pipes_are_reported(data_dir):
    (data_dir / "text").write_text("spk0-utt00 only one\n")
    rows = (data_dir / "wav.scp").read_text().splitlines()
    rows[0] = rows[0].split()[0] + " cat " + rows[0].split()[1] + " |"
    (data_dir / "wav.scp").write_text("\n".join(rows) + "\n")
    with pytest.raises(DataDirError) as err:
        DataDir.read(data_dir)
    assert "utt2spk:2: spk0-utt02: utterance has no text entry" in str(err.value)
    assert "wav.scp:1: spk0-utt00: piped command in wav.scp — pass --allow-pipes" in str(err.value)
    (data_dir / "text").unlink()
    data = DataDir.read(data_dir, allow_pipes=True)  # text is optional (unlabelled data)
    assert data.load_audio("spk0-utt00").size == 8000


def test_durations_are_computed_and_cached(data_dir):
    data = DataDir.read(data_dir)
    durations = data.durations()
    assert durations["spk0-utt00"] == pytest.approx(0.5) and durations["spk1-utt05"] == pytest.approx(1.75)
    assert (data_dir / "utt2dur").read_text().splitlines()[0] == "spk0-utt00 0.5"
    assert DataDir.read(data_dir).utt2dur == pytest.approx(durations)


def test_segments_and_utt2task(tmp_path, make_tone):
    from speechprompt.data.audio import write_audio

    wav = write_audio(tmp_path / "rec.wav", make_tone(3.0), 16000)
    data = DataDir(wav_scp={"rec": str(wav)}, text={"rec-a": "first", "rec-b": "second"},
                   utt2spk={"rec-a": "s", "rec-b": "s"},
                   segments={"rec-a": Segment("rec", 0.0, 1.0), "rec-b": Segment("rec", 1.5, 2.75)},
                   utt2task={"rec-a": "asr", "rec-b": "slu"})
    out = data.write(tmp_path / "d")
    assert (out / "segments").read_text() == "rec-a rec 0 1\nrec-b rec 1.5 2.75\n"
    back = DataDir.read(out)
    assert back.utt2task == {"rec-a": "asr", "rec-b": "slu"}
    assert back.durations() == pytest.approx({"rec-a": 1.0, "rec-b": 1.25})
    np.testing.assert_allclose(back.load_audio("rec-b"), back.load_audio("rec-b"))
    assert back.load_audio("rec-b").size == 20000
    (out / "segments").write_text("rec-a rec 0 1\nrec-b rec 2 1.5\n")
    with pytest.raises(DataDirError, match="segments:2: rec-b: segment end 1.5 is not after start 2"):
        DataDir.read(out)
    (out / "segments").write_text("rec-a rec 0 1\nrec-b rec 2 9\n")
    with pytest.raises(AudioError, match="rec-b.*after the recording ends"):
        DataDir.read(out).load_audio("rec-b")


def test_empty_transcript_and_malformed_line(data_dir):
    rows = (data_dir / "text").read_text().splitlines()
    rows[0] = rows[0].split()[0]
    (data_dir / "text").write_text("\n".join(rows) + "\n")
    (data_dir / "utt2spk").write_text((data_dir / "utt2spk").read_text().replace("spk1-utt01 spk1", "spk1-utt01 spk1 x"))
    with pytest.raises(DataDirError) as err:
        DataDir.read(data_dir)
    assert "text:1: spk0-utt00: empty transcript" in str(err.value)
    assert "utt2spk:4: spk1-utt01: malformed line" in str(err.value)


def test_raw_pcm_entries_and_clean_dir_validates(tmp_path, make_tone):
    from speechprompt.data.audio import write_audio
    from speechprompt.data.validate import validate

    raw = write_audio(tmp_path / "a.raw", make_tone(1.5), 16000)
    flac = write_audio(tmp_path / "b.flac", make_tone(0.5, sr=22050), 22050)
    data = DataDir(wav_scp={"a": str(raw), "b": str(flac)}, text={"a": "x", "b": "y"}, utt2spk={"a": "s", "b": "s"})
    out = data.write(tmp_path / "d")
    back = DataDir.read(out)
    assert back.durations() == pytest.approx({"a": 1.5, "b": 0.5})
    assert back.load_audio("a").size == 24000 and abs(back.load_audio("b").size - 8000) <= 1
    assert validate(out)[1] == []
