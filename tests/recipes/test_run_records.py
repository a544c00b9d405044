"""recipes.adapt --records: a finished run leaves a small record that restores it elsewhere (another
clone, another machine, the next sitting) without training, and only when its inputs have the same
content: another config or another adaptation set trains the run again."""

from __future__ import annotations

import json
import shutil

import pytest
from backbones.ct2_writer import released_stand_in

from recipes import adapt
from recipes.run_records import path_identity
from tests.recipes.test_adapt_jobs import CONF
from tests.recipes.test_adapt_untrained_rows import data_dir


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A recipe folder whose prompt run has been trained once with --records; returns (root, records)."""
    root = tmp_path_factory.mktemp("first") / "recipe"
    (root / "conf" / "method").mkdir(parents=True)
    (root / "conf" / "adapt.yaml").write_text(CONF)
    (root / "conf" / "method" / "prompt.yaml").write_text("method: {name: prompt, options: {num_prompts: 4}}\n")
    data_dir(root / "train", 3, 1)
    data_dir(root / "test", 2, 3)
    released_stand_in(root / "stand_in")
    records = tmp_path_factory.mktemp("records")
    assert adapt.main(argv(root, root / "exp", records)) == 0
    return root, records


def argv(root, exp, records):
    return ["--backbone", str(root / "stand_in" / "imported"), "--backbone-name", "tiny", "--size", "10min",
            "--train", str(root / "train"), "--dev", str(root / "test"), "--test", str(root / "test"),
            "--conf", str(root / "conf"), "--methods", "prompt", "--seeds", "1", "--exp", str(exp),
            "--records", str(records)]


def no_training(*args, **kwargs):
    raise AssertionError("trained although a matching record exists")


def test_a_record_holds_the_result_score_and_inputs_by_content(recorded):
    root, records = recorded
    record = records / "tiny" / "10min" / "prompt" / "seed1"
    run = root / "exp" / "tiny" / "10min" / "prompt" / "seed1"
    assert json.loads((record / "result.json").read_text()) == json.loads((run / "result.json").read_text())
    assert (record / "score" / "wer.json").is_file() and not (record / "train").exists()  # no weights
    portable = json.loads((record / "portable_inputs.json").read_text())
    assert portable["train"] == path_identity(str(root / "train"))
    assert str(root) not in json.dumps(portable)  # nothing of this machine's paths


def test_a_clone_elsewhere_restores_the_run_without_training(recorded, tmp_path, monkeypatch, capsys):
    root, records = recorded
    clone = tmp_path / "recipe"
    shutil.copytree(root, clone, ignore=shutil.ignore_patterns("exp"))
    monkeypatch.setattr(adapt, "train", no_training)
    assert adapt.main(argv(clone, clone / "exp", records)) == 0
    assert "restored from its record" in capsys.readouterr().out
    run, first = (r / "exp" / "tiny" / "10min" / "prompt" / "seed1" for r in (clone, root))
    assert json.loads((run / "result.json").read_text()) == json.loads((first / "result.json").read_text())
    assert json.loads((run / "inputs.json").read_text())["train"] == str((clone / "train").resolve())


@pytest.mark.parametrize("change", ["config", "data"])
def test_another_config_or_adaptation_set_trains_again(recorded, tmp_path, monkeypatch, change):
    root, records = recorded
    clone = tmp_path / "recipe"
    shutil.copytree(root, clone, ignore=shutil.ignore_patterns("exp"))
    if change == "config":
        (clone / "conf" / "method" / "prompt.yaml").write_text("method: {name: prompt, options: {num_prompts: 5}}\n")
    else:
        text = clone / "train" / "text"
        text.write_text(text.read_text().replace("continue", "go on"))
    monkeypatch.setattr(adapt, "train", no_training)
    with pytest.raises(AssertionError, match="trained although"):
        adapt.main(argv(clone, clone / "exp", records))


def test_another_normaliser_scores_the_kept_hypotheses_again_without_training(recorded, tmp_path, monkeypatch, capsys):
    root, records = recorded
    clone, clone_records = tmp_path / "recipe", tmp_path / "records"
    shutil.copytree(root, clone, ignore=shutil.ignore_patterns("exp"))
    shutil.copytree(records, clone_records)
    record = clone_records / "tiny" / "10min" / "prompt" / "seed1"
    assert {p.name for p in (record / "decode").iterdir()} == {"hyp.trn", "ref.trn", "decode.json"}
    first = json.loads((record / "score" / "wer.json").read_text())["normalization"]
    assert first != "none"
    monkeypatch.setattr(adapt, "train", no_training)
    assert adapt.main(argv(clone, clone / "exp", clone_records) + ["--normalizer", "none"]) == 0
    assert "scoring its hypotheses again after the none text normaliser" in capsys.readouterr().out
    run = clone / "exp" / "tiny" / "10min" / "prompt" / "seed1"
    score = json.loads((run / "score" / "wer.json").read_text())
    assert score["normalization"] == "none"
    result = json.loads((run / "result.json").read_text())
    assert result["metrics"]["wer"] == pytest.approx(score["wer"])
    assert json.loads((record / "result.json").read_text()) == result  # the record follows
    assert adapt.main(argv(clone, clone / "exp", clone_records) + ["--normalizer", "none"]) == 0
    assert "scoring its hypotheses again" not in capsys.readouterr().out  # once only


def test_a_record_without_hypotheses_is_trained_again_for_another_normaliser(recorded, tmp_path, monkeypatch, capsys):
    root, records = recorded
    clone, clone_records = tmp_path / "recipe", tmp_path / "records"
    shutil.copytree(root, clone, ignore=shutil.ignore_patterns("exp"))
    shutil.copytree(records, clone_records)
    shutil.rmtree(clone_records / "tiny" / "10min" / "prompt" / "seed1" / "decode")  # an older record
    monkeypatch.setattr(adapt, "train", no_training)
    with pytest.raises(AssertionError, match="trained although"):
        adapt.main(argv(clone, clone / "exp", clone_records) + ["--normalizer", "none"])
    assert "its hypotheses are not kept: running it again" in capsys.readouterr().out


def test_a_misspelt_normaliser_stops_before_any_run(recorded, tmp_path, monkeypatch):
    root, records = recorded
    monkeypatch.setattr(adapt, "train", no_training)
    with pytest.raises(SystemExit, match="--normalizer: unknown text normaliser 'whisper_basik'"):
        adapt.main(argv(root, tmp_path / "exp", records) + ["--normalizer", "whisper_basik"])
