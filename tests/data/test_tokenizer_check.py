"""Tokenizer mismatches are caught (issue 19, point 6): characters a tokenizer can only write as
<unk> are counted with examples; training stops above data.max_unknown_chars and warns below."""

from __future__ import annotations

import serving_fixtures as fx  # tests/ is on pytest's pythonpath

from speechprompt.cli import main
from speechprompt.data.kaldi_dir import DataDir
from speechprompt.data.text import train_tokenizer
from speechprompt.data.tokenizer_check import unknown_characters


def test_unknown_characters_are_counted_with_examples(tmp_path):
    tokenizer = train_tokenizer("char", ["abc cab"], tmp_path / "tok")
    report = unknown_characters(tokenizer, {"u1": "abd", "u2": "cab", "u3": "xdd"})
    assert report.total == 9 and dict(report.counts) == {"d": 3, "x": 1} and report.utterances == 2
    assert report.example == {"d": "u1", "x": "u3"}
    assert report.describe().startswith("4 of 9 target characters (44.44 %, 2 distinct, in 2 utterance(s)) "
                                        "become <unk>: 'd' x3 (u1), 'x' x1 (u3)")


def test_training_stops_on_a_foreign_tokenizer_and_warns_below_the_threshold(tmp_path, capsys):
    fx.make_backbone(tmp_path)  # its tokenizer knows the letters of fx.TEXTS only
    waves = fx.write_waves(tmp_path / "audio", 2)
    DataDir(wav_scp={"s-a": str(waves[0]), "s-b": str(waves[1])}, text={"s-a": "set an alarm", "s-b": "zzz alarm"},
            utt2spk={"s-a": "s", "s-b": "s"}).write(tmp_path / "data")
    # a pseudo-language tokenizer: none of the English letters
    train_tokenizer("char", ["一二三 四五"], tmp_path / "pseudo")
    common = [f"data.train={tmp_path / 'data'}", f"backbone.path={tmp_path / 'backbone'}", "method.name=prompt",
              "method.options.num_prompts=2", "optim.max_steps=1", "optim.warmup_steps=0",
              "experiment.eval_every=0", "experiment.progress=false"]
    exp = tmp_path / "exp"
    assert main(["train", *common, f"data.tokenizer={tmp_path / 'pseudo'}", f"experiment.dir={exp}"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "18 of 18 target characters (100.00 %" in err
    assert "above data.max_unknown_chars=0.01" in err and not exp.exists()
    # the backbone's own tokenizer lacks only 'z': 3 of 18 characters; allowed up to 20 %, with a warning
    assert main(["train", *common, f"data.tokenizer={tmp_path / 'tokenizer'}", f"experiment.dir={exp}"]) == 2
    assert "3 of 18 target characters" in capsys.readouterr().err
    assert main(["train", *common, f"data.tokenizer={tmp_path / 'tokenizer'}", f"experiment.dir={exp}",
                 "data.max_unknown_chars=0.2"]) == 0
    out = capsys.readouterr().out
    assert "warning: data.tokenizer" in out and "become <unk>: 'z' x3 (s-b)" in out
