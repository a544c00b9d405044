from __future__ import annotations

import re

import pytest

from speechprompt.cli import main
from speechprompt.data.kaldi_dir import DataDir, DataDirError, Segment
from speechprompt.data.ops import combine, info, subset


def _dir(n=30, speakers=3, prefix=""):
    utts = {f"{prefix}s{i % speakers}-u{i:02d}": f"s{i % speakers}" for i in range(n)}
    # speaker 0 has long utterances, the others short ones: a plain random subset is dominated by s0
    durations = {u: (6.0 if s == "s0" else 1.0) + 0.01 * i for i, (u, s) in enumerate(sorted(utts.items()))}
    return DataDir(wav_scp={u: f"/audio/{u}.wav" for u in utts}, text={u: "a b" for u in utts}, utt2spk=utts,
                   utt2dur=durations)


def test_subset_budget_seed_and_speaker_balance():
    data = _dir()
    part = subset(data, 20.0, seed=1)
    assert 15 < sum(part.durations().values()) <= 20.0
    assert part.utt_ids == subset(data, 20.0, seed=1).utt_ids != subset(data, 20.0, seed=2).utt_ids
    balanced = subset(data, 20.0, by_speaker=True, seed=1)
    seconds = {s: sum(balanced.utt2dur[u] for u in us) for s, us in balanced.spk2utt().items()}
    assert set(seconds) == {"s0", "s1", "s2"} and max(seconds.values()) - min(seconds.values()) <= 6.1
    assert len(subset(data, 1e6).utt_ids) == 30  # more than there is: everything


def test_combine_clash_prefix_and_mixed_segments():
    a, b = _dir(4), _dir(4)
    with pytest.raises(DataDirError, match="in both a and b .*--prefix"):
        combine([a, b], names=["a", "b"])
    merged = combine([a, b], names=["a", "b"], prefix=True)
    assert len(merged) == 8 and "a-s0-u00" in merged.utt2spk and merged.utt2spk["b-s1-u01"] == "b-s1"
    seg = DataDir(wav_scp={"rec": "/audio/rec.wav"}, text={"x": "c"}, utt2spk={"x": "k"},
                  segments={"x": Segment("rec", 0.0, 1.0)})
    mixed = combine([a, seg])
    assert mixed.segments["s0-u00"] == Segment("s0-u00", 0.0, a.utt2dur["s0-u00"])
    no_text = DataDir(wav_scp={"z": "/z.wav"}, text={}, utt2spk={"z": "k"}, utt2dur={"z": 1.0})
    with pytest.raises(DataDirError, match="no text file"):
        combine([a, no_text], names=["a", "z"])


def test_info_text():
    report = info(_dir())
    assert "utterances:  30" in report and "speakers:    3" in report and "hours:       0.0" in report
    assert re.search(r" 5-10 +10 #", report) and re.search(r" 1-2 +20 #", report) and "10-15" not in report


def test_cli_subset_combine_info(data_dir, tmp_path, capsys):
    out = tmp_path / "sub"
    assert main(["data", "subset", str(data_dir), str(out), "--seconds", "3", "--by-speaker", "--seed", "0"]) == 0
    part = DataDir.read(out)
    assert sum(part.durations().values()) <= 3 and len(part.spk2utt()) == 2
    assert main(["data", "combine", str(tmp_path / "all"), str(data_dir), str(out)]) == 1
    assert "rename one" in capsys.readouterr().err
    assert main(["data", "combine", str(tmp_path / "all"), str(data_dir), str(out), "--prefix"]) == 0
    assert len(DataDir.read(tmp_path / "all")) == 6 + len(part)
    assert main(["data", "info", str(tmp_path / "all")]) == 0
    assert "duration histogram" in capsys.readouterr().out
