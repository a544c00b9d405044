"""`speechprompt prepare`: argument checks, building, and skipping what is already built."""

from __future__ import annotations

import argparse
import shutil

import pytest

from recipes import prepare, synth_slu


def _args(out, **overrides):
    parser = argparse.ArgumentParser()
    prepare.add_arguments(parser)
    args = parser.parse_args(["--out", str(out)])
    for key, value in overrides.items():
        setattr(args, key, value)
    return args


def test_unknown_corpus_is_refused():
    with pytest.raises(SystemExit, match="unknown"):
        prepare.parse_list("synth,librispeech", prepare.CORPORA, "--corpora")


def test_missing_tools_are_named(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda cmd: None)
    assert prepare.missing_packages(["synth_slu"]) == ["espeak-ng", "flite"]


@pytest.mark.skipif(shutil.which("espeak-ng") is None or shutil.which("flite") is None,
                    reason="needs Debian espeak-ng and flite")
def test_prepare_builds_then_skips(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(synth_slu, "QUICK_SIZES", {"train_1000": 8, "dev": 3, "test": 4})
    monkeypatch.setattr(synth_slu, "QUICK_NESTED", 3)
    args = _args(tmp_path, corpora="synth_slu", quick=True)
    assert prepare.run(args) == 0
    out = capsys.readouterr().out
    assert "synth_slu    train_200" in out and (tmp_path / "synth_slu" / ".done").is_file()
    assert prepare.run(args) == 0
    assert "already built" in capsys.readouterr().out
