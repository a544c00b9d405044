"""The asterisk recipe on fake packages: G.722 decoding, transcript rewriting, split, skip counts."""

from __future__ import annotations

import gzip
import json
import shutil

import G722
import numpy as np
import pytest

from recipes import asterisk
from speechprompt.data.kaldi_dir import DataDir
from speechprompt.data.validate import validate
from tests.recipes.debian_fixtures import make_deb

pytestmark = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")

TRANSCRIPTS = """; Core Asterisk Sounds in English (test)

hello: Hello there.
digits/1: 1
beep: [this is a beep tone]
press: Press * then #.
dup-a: Thank you.
dup-b: Thank you.
goodbye: Goodbye [pause] now.
no-audio: This one has no recording.
"""


def _g722(seconds: float, freq: float) -> bytes:
    t = np.arange(int(16000 * seconds)) / 16000
    return G722.G722(16000, 64000).encode((6000 * np.sin(2 * np.pi * freq * t)).astype(np.int16))


@pytest.fixture()
def corpus_root(tmp_path):
    debs = tmp_path / "_debian" / "debs"
    make_deb(debs, "asterisk-core-sounds-en", {
        "usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz": gzip.compress(TRANSCRIPTS.encode())})
    sounds = "usr/share/asterisk/sounds/en_US_f_Test"
    audio = {f"{sounds}/{name}.g722": _g722(0.5 + 0.1 * i, 200 + 50 * i) for i, name in enumerate(
        ["hello", "digits/1", "beep", "press", "dup-a", "dup-b", "goodbye", "untranscribed"])}
    make_deb(debs, "asterisk-core-sounds-en-g722", audio)
    return tmp_path


def test_build_decodes_rewrites_splits_and_reports(corpus_root):
    dirs = asterisk.build(corpus_root, lang="en", adapt_seconds=1.0)
    texts = {}
    for name, path in dirs.items():
        assert validate(path)[1] == []
        texts[name] = DataDir.read(path).text
    every = {**texts["adapt_10min"], **texts["test"]}
    assert every == {
        "en_US_f_Test-hello": "hello there", "en_US_f_Test-digits_1": "one", "en_US_f_Test-press": "press star then pound",
        "en_US_f_Test-dup-a": "thank you", "en_US_f_Test-dup-b": "thank you", "en_US_f_Test-goodbye": "goodbye now"}
    assert texts["adapt_10min"] and texts["test"]
    assert not set(texts["adapt_10min"].values()) & set(texts["test"].values())  # "thank you" stays together
    report = json.loads((corpus_root / "asterisk_en" / "report.json").read_text())
    assert report["skipped: no transcript"] == 1 and report["skipped: no speech in transcript"] == 1
    assert report["transcripts without audio"] == 1 and report["utterances kept"] == 6
    data = DataDir.read(dirs["test"] if "en_US_f_Test-hello" in texts["test"] else dirs["adapt_10min"])
    samples = data.load_audio("en_US_f_Test-hello")
    assert abs(samples.shape[0] - 8000) <= 32 and 0.1 < np.abs(samples).max() < 0.3


def test_unknown_language_is_refused(tmp_path):
    with pytest.raises(asterisk.RecipeError, match="choose one of"):
        asterisk.build(tmp_path, lang="de")
