"""The fillets recipe on fake packages: Lua parsing, speakers, level-group split, skip counts."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from recipes import fillets
from speechprompt.data.kaldi_dir import DataDir
from speechprompt.data.validate import validate
from tests.recipes.debian_fixtures import make_deb

pytestmark = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")
LEVELS = [f"level{i}" for i in range(8)]


def _ogg(seconds: float, rate: int, channels: int = 1) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    wave = 0.2 * np.sin(2 * np.pi * 220 * t)
    buffer = io.BytesIO()
    sf.write(buffer, np.stack([wave] * channels, axis=1), rate, format="OGG", subtype="VORBIS")
    return buffer.getvalue()


def _lua(level: str, minor_font: str) -> str:
    return (f'dialogId("{level}-m-a", "font_small", "Hello.")\ndialogStr("Ahoj, rybko {level[-1]}.")\n\n'
            f'dialogId("{level}-v-b", "font_big",\n  "Yes.")\ndialogStr(\n"Ano, to je {level}!")\n\n'
            f'dialogId("{level}-x-c", "{minor_font}", "Who?")\ndialogStr("Kdo je tam, {level}? Máme 2 \\"ryby\\".")\n\n'
            f'dialogId("{level}-m-e", "font_small", "")\ndialogStr("")\n')


@pytest.fixture()
def corpus_root(tmp_path):
    game = "usr/share/games/fillets-ng"
    scripts, sounds = {}, {}
    for i, level in enumerate(LEVELS):
        minor = "font_parrot" if i in (0, 1) else f"font_minor{i}"  # levels 0 and 1 share a minor speaker
        scripts[f"{game}/script/{level}/dialogs_cs.lua"] = _lua(level, minor).encode()
        for j, line in enumerate(("m-a", "v-b", "x-c", "m-e")):
            sounds[f"{game}/sound/{level}/cs/{level}-{line}.ogg"] = _ogg(0.6 + 0.1 * j, 44100 if j == 1 else 22050,
                                                                       2 if j == 1 else 1)
    sounds[f"{game}/sound/level0/cs/level0-m-orphan.ogg"] = _ogg(0.5, 22050)
    debs = tmp_path / "_debian" / "debs"
    make_deb(debs, "fillets-ng-data", scripts)
    make_deb(debs, "fillets-ng-data-cs", sounds)
    return tmp_path


def test_build_parses_splits_by_level_group_and_reports(corpus_root):
    dirs = fillets.build(corpus_root)
    report = json.loads((corpus_root / "fillets_cs" / "report.json").read_text())
    assert report["audio files"] == 33
    assert report["skipped: no dialogue line for the audio"] == 1 and report["skipped: empty Czech text"] == 8
    levels, speakers = {}, {}
    for name, path in dirs.items():
        assert validate(path)[1] == []
        data = DataDir.read(path)
        levels[name] = {u.split("-")[1] for u in data.utt_ids}
        speakers[name] = set(data.utt2spk.values())
    assert levels["adapt_10min"] <= levels["adapt_1h"]
    for a, b in (("adapt_1h", "dev"), ("adapt_1h", "test"), ("dev", "test")):
        assert not levels[a] & levels[b]
    assert all(levels[name] for name in ("adapt_1h", "dev", "test"))
    together = [name for name in ("adapt_1h", "dev", "test") if "level0" in levels[name]]
    assert "level1" in levels[together[0]]  # the shared minor speaker keeps its levels together
    minor_test = {s for s in speakers["test"] if s not in ("fillets_small", "fillets_big")}
    assert minor_test and not minor_test & (speakers["adapt_1h"] | speakers["dev"])
    data = DataDir.read(dirs[together[0]])
    assert data.text["fillets_parrot-level0-level0-x-c"] == "kdo je tam level nula máme dva ryby"
    assert data.text["fillets_big-level0-level0-v-b"] == "ano to je level nula"
    assert abs(data.durations()["fillets_big-level0-level0-v-b"] - 0.7) < 0.01  # 44.1 kHz stereo -> 16 kHz mono
