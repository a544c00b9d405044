"""`speechprompt decode`: output files, alone == batched (greedy and beam), per-utterance tasks, bad audio."""

from __future__ import annotations

import json

import pytest
import serving_fixtures as fx  # tests/ is on pytest's pythonpath

from speechprompt.cli import main
from speechprompt.data.kaldi_dir import DataDir
from speechprompt.score.transcripts import read_transcripts


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("decode")
    backbone, tokenizer = fx.make_backbone(root)
    asr = fx.make_prompt_artifact(backbone, root / "asr", tokenizer, seed=1, output="asr")
    slu = fx.make_prompt_artifact(backbone, root / "slu", tokenizer, seed=2, output="slu")
    waves = fx.write_waves(root / "audio", 5)
    utts = [f"spk{i % 2}-utt{i}" for i in range(len(waves))]
    data = DataDir(wav_scp={u: str(p) for u, p in zip(utts, waves, strict=True)},
                   text={u: f"Play Music {i}!" for i, u in enumerate(utts)},
                   utt2spk={u: u.split("-")[0] for u in utts})
    data.write(root / "data")
    return root, asr, slu, utts


def decode(root, out, *extra):
    return main(["decode", "--backbone", str(root / "backbone"), "--data", str(root / "data"), "--out", str(out),
                 "--max-len", "12", *map(str, extra)])


def test_decode_writes_results(setup, tmp_path, capsys):
    root, asr, _, utts = setup
    assert decode(root, tmp_path / "d", "--task", asr) == 0
    assert "RTF" in capsys.readouterr().out
    hyps = read_transcripts(tmp_path / "d" / "hyp.trn")
    refs = read_transcripts(tmp_path / "d" / "ref.trn")
    assert sorted(hyps) == sorted(refs) == sorted(utts)
    assert refs[utts[1]] == "play music 1"  # normalised like training targets
    assert read_transcripts(tmp_path / "d" / "text", fmt="text") == hyps
    summary = json.loads((tmp_path / "d" / "decode.json").read_text())
    assert summary["utterances"] == summary["decoded"] == len(utts) and summary["failed"] == []
    # decode.json rounds wall seconds to 1 ms: allow that much on a fast machine
    rounding = 0.0005 / summary["audio_seconds"]
    assert summary["real_time_factor"] == pytest.approx(summary["wall_seconds"] / summary["audio_seconds"],
                                                        rel=1e-2, abs=rounding + 1e-5)
    assert summary["settings"]["beam"] == 1


@pytest.mark.parametrize("beam", [1, 3])
def test_alone_equals_batched(setup, tmp_path, beam):
    root, asr, _, _ = setup
    # 0.01 s of padded audio per batch: every utterance is decoded on its own
    assert decode(root, tmp_path / "alone", "--task", asr, "--beam", beam, "--batch-seconds", 0.01) == 0
    assert decode(root, tmp_path / "batched", "--task", asr, "--beam", beam, "--batch-seconds", 100) == 0
    alone = (tmp_path / "alone" / "hyp.trn").read_text()
    assert alone == (tmp_path / "batched" / "hyp.trn").read_text()
    assert any(read_transcripts(tmp_path / "alone" / "hyp.trn").values()), "the model should emit tokens"


def test_utt2task_picks_each_utterance_prompt(setup, tmp_path):
    root, asr, slu, utts = setup
    data = DataDir.read(root / "data")
    data.utt2task = {u: ("asr", "slu")[i % 2] for i, u in enumerate(utts)}
    data.write(tmp_path / "mixed")
    args = ["--backbone", root / "backbone", "--max-len", 12]
    assert main(["decode", *map(str, args), "--data", str(tmp_path / "mixed"), "--out", str(tmp_path / "m"),
                 "--task", f"asr={asr}", "--task", f"slu={slu}"]) == 0
    mixed = read_transcripts(tmp_path / "m" / "hyp.trn")
    for name, artifact in (("asr", asr), ("slu", slu)):
        assert decode(root, tmp_path / name, "--task", artifact) == 0
        alone = read_transcripts(tmp_path / name / "hyp.trn")
        for u in utts:
            if data.utt2task[u] == name:
                assert mixed[u] == alone[u]


def test_unreadable_audio_is_reported_and_counted(setup, tmp_path, capsys):
    root, asr, _, utts = setup
    data = DataDir.read(root / "data")
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"not audio at all")
    data.wav_scp[utts[2]] = str(broken)
    data.utt2dur = {}
    data.write(tmp_path / "bad")
    rc = main(["decode", "--backbone", str(root / "backbone"), "--data", str(tmp_path / "bad"),
               "--out", str(tmp_path / "o"), "--task", str(asr), "--max-len", "12"])
    assert rc == 1
    err = capsys.readouterr().err
    assert f"skipped {utts[2]}" in err and "1 utterance(s) could not be decoded" in err
    summary = json.loads((tmp_path / "o" / "decode.json").read_text())
    assert [f["utt_id"] for f in summary["failed"]] == [utts[2]] and summary["decoded"] == len(utts) - 1
    assert sorted(read_transcripts(tmp_path / "o" / "hyp.trn")) == sorted(set(utts) - {utts[2]})


def test_several_tasks_without_utt2task_is_an_error(setup, tmp_path, capsys):
    root, asr, slu, _ = setup
    assert decode(root, tmp_path / "x", "--task", f"a={asr}", "--task", f"b={slu}") == 2
    assert "has no utt2task" in capsys.readouterr().err


def test_bfloat16_autocast_decodes_every_utterance(setup, tmp_path):
    root, asr, _, utts = setup
    assert decode(root, tmp_path / "bf16", "--task", asr, "--dtype", "bfloat16", "--beam", 2) == 0
    assert sorted(read_transcripts(tmp_path / "bf16" / "hyp.trn")) == sorted(utts)
    assert json.loads((tmp_path / "bf16" / "decode.json").read_text())["settings"]["dtype"] == "bfloat16"


def test_int8_precision_decodes_every_utterance(setup, tmp_path, capsys):
    root, asr, _, utts = setup
    assert decode(root, tmp_path / "int8", "--task", asr, "--precision", "int8") == 0
    assert sorted(read_transcripts(tmp_path / "int8" / "hyp.trn")) == sorted(utts)
    assert json.loads((tmp_path / "int8" / "decode.json").read_text())["settings"]["precision"] == "int8"
    assert decode(root, tmp_path / "both", "--task", asr, "--precision", "int8", "--dtype", "bfloat16") == 2
    assert "disagree" in capsys.readouterr().err


def test_utt2task_naming_an_unloaded_task_is_an_error(setup, tmp_path, capsys):
    root, asr, _, utts = setup
    data = DataDir.read(root / "data")
    data.utt2task = dict.fromkeys(utts, "asr")
    data.write(tmp_path / "named")
    rc = main(["decode", "--backbone", str(root / "backbone"), "--data", str(tmp_path / "named"),
               "--out", str(tmp_path / "o"), "--task", str(asr)])  # loaded as its own name, 'default'
    assert rc == 2 and "names task(s) ['asr']" in capsys.readouterr().err
