"""The synthetic English corpus: deterministic audio, disjoint texts, valid data dirs, .done reuse."""

from __future__ import annotations

import json
import shutil

import pytest

from recipes import corpus_files, synth
from speechprompt.data.kaldi_dir import DataDir
from speechprompt.data.validate import validate

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None or shutil.which("flite") is None,
                                reason="needs Debian espeak-ng and flite")
SCALE = 0.004  # ~30 s of pretrain audio, a few utterances per set


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    first = synth.build(tmp_path_factory.mktemp("a"), scale=SCALE, nj=2)
    second = synth.build(tmp_path_factory.mktemp("b"), scale=SCALE, nj=1)
    return first, second


def _audio_checksums(data_dir):
    data = DataDir.read(data_dir)
    return {utt: corpus_files.file_sha256(data.wav_scp[utt]) for utt in data.utt_ids}


def test_two_builds_give_identical_audio(built):
    first, second = built
    for name in ("pretrain", "adapt_1h", "test"):
        sums = _audio_checksums(first[name])
        assert sums and sums == _audio_checksums(second[name])


def test_sets_are_valid_disjoint_and_in_their_domain(built):
    dirs, _ = built
    texts = {}
    for name, path in dirs.items():
        _, problems = validate(path)
        assert problems == [], problems[:3]
        data = DataDir.read(path)
        assert len(data) > 0
        texts[name] = set(data.text.values())
        speakers = set(data.utt2spk.values())
        if name == "pretrain":
            assert all(s.startswith("espeak_") for s in speakers)
        else:
            assert all(s.startswith("flite_") for s in speakers)
        if name != "test":
            assert "flite_slt" not in speakers  # slt is the unseen test voice
    assert texts["adapt_10min"] <= texts["adapt_1h"]
    for a, b in (("pretrain", "adapt_1h"), ("pretrain", "test"), ("adapt_1h", "dev"), ("adapt_1h", "test"),
                 ("dev", "test"), ("pretrain", "dev")):
        assert not texts[a] & texts[b], (a, b)


def test_manifest_records_how_each_file_was_made(built):
    dirs, _ = built
    data = DataDir.read(dirs["pretrain"])
    records = [json.loads(line) for line in (dirs["pretrain"] / "manifest.jsonl").read_text().splitlines()]
    assert [r["utt_id"] for r in records] == data.utt_ids
    for record in records:
        assert record["engine"] == "espeak-ng" and "1.5" in record["engine_version"]
        assert 130 <= record["rate"] <= 210 and 20 <= record["pitch"] <= 80 and record["variant"]
        assert record["seed"] == 0 and record["sha256"] == corpus_files.file_sha256(record["file"])
        assert record["text"] == data.text[record["utt_id"]]


def test_second_build_is_skipped_until_content_changes(built, capsys):
    dirs, _ = built
    root = dirs["pretrain"].parents[1]
    marker = root / corpus_files.MARKER
    stamp = marker.stat().st_mtime_ns
    synth.build(root.parent, scale=SCALE, nj=1)
    assert "already built" in capsys.readouterr().out and marker.stat().st_mtime_ns == stamp
    assert not corpus_files.is_built(root, {"scale": SCALE, "seed": 1}, json.loads(marker.read_text())["code_sha256"])
    text = dirs["dev"] / "text"
    text.write_text(text.read_text() + "")
    (dirs["dev"] / "utt2dur").write_text("tampered 1\n")
    options = json.loads(marker.read_text())
    assert not corpus_files.is_built(root, options["options"], options["code_sha256"])
