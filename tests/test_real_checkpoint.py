"""The one test on a real released checkpoint: whisper-tiny.en transcribes 20 utterances of real studio
English (asterisk_en/test) below 5 % WER after Whisper's English normaliser.

Needs `speechprompt backbone fetch whisper-tiny.en` (scripts/install.sh runs it) and the corpus
(`speechprompt prepare --corpora asterisk --asterisk-langs en --out corpora`, or $SPEECHPROMPT_CORPORA).
Skipped where either is missing, except under CI (CI=true), where that is a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from released_checkpoint_check import check_method_round_trip

from speechprompt.backbones.fetch import cache_root
from speechprompt.tuning.registry import TRAINED_METHODS

CORPORA = Path(os.environ.get("SPEECHPROMPT_CORPORA", Path(__file__).resolve().parents[1] / "corpora"))
TEST_SET = CORPORA / "asterisk_en" / "data" / "test"
BACKBONE = cache_root() / "whisper-tiny.en"


def require(path: Path, how: str) -> None:
    if not path.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{path} is missing under CI: {how}")
        pytest.skip(f"{path} is missing: {how}")


def test_whisper_tiny_en_transcribes_real_english_below_5_percent_wer():
    require(BACKBONE, "speechprompt backbone fetch whisper-tiny.en")
    require(TEST_SET, "speechprompt prepare --corpora asterisk --asterisk-langs en --out corpora")
    from speechprompt.data.kaldi_dir import DataDir
    from speechprompt.decoding.transcriber import Transcriber, load_backbone
    from speechprompt.score.wer import get_normalizer, score_transcripts

    data = DataDir.read(TEST_SET)
    utts = data.utt_ids[:20]
    transcriber = Transcriber(load_backbone("whisper-tiny.en"), pad_to_window=True, batch_seconds=40)
    transcriber.add_zero_shot()
    results = transcriber.transcribe([data.load_audio(u) for u in utts])
    hyps = {u: r.text for u, r in zip(utts, results, strict=True)}
    refs = {u: data.text[u] for u in utts}
    wer = score_transcripts(refs, hyps, get_normalizer("whisper_english")).word.rate
    assert wer < 5.0, f"WER {wer:.1f} %: " + "; ".join(f"{refs[u]!r} -> {hyps[u]!r}" for u in utts[:5])


@pytest.mark.parametrize("method", TRAINED_METHODS)
def test_every_method_round_trips_on_the_real_tiny_en(method, tmp_path):
    require(BACKBONE, "speechprompt backbone fetch whisper-tiny.en")
    check_method_round_trip(BACKBONE, method, tmp_path)


@pytest.mark.parametrize("method", TRAINED_METHODS)
def test_every_method_round_trips_on_the_real_base(method, tmp_path):
    """whisper-base is not fetched by the installer: checked where a developer fetched it."""
    folder = cache_root() / "whisper-base"
    if not folder.is_dir():
        pytest.skip("speechprompt backbone fetch whisper-base")
    check_method_round_trip(folder, method, tmp_path, language="cs")
