"""Config: YAML + typed overrides, clear errors, resolved config saved."""

from __future__ import annotations

import pytest
import yaml

from speechprompt.config import (
    ConfigError,
    TrainConfig,
    apply_overrides,
    describe,
    load_config,
    save_config,
)


def test_yaml_and_overrides_are_typed(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  lr: 1e-3\n  max_steps: 50\nmethod:\n  name: lora\n")
    cfg = load_config(
        path,
        [
            "optim.lr=5e-3",
            "optim.warmup_steps=5",
            "optim.clip_norm=null",
            "optim.betas=[0.8, 0.9]",
            "data.tasks=[asr, slu]",
            "experiment.progress=false",
            "method.options.rank=8",
            "method.options.alpha=16.5",
            "backbone.overrides.dropout=0.0",
        ],
    )
    assert isinstance(cfg, TrainConfig)
    assert cfg.optim.lr == pytest.approx(5e-3) and isinstance(cfg.optim.lr, float)
    assert cfg.optim.max_steps == 50 and cfg.optim.warmup_steps == 5
    assert cfg.optim.clip_norm is None
    assert cfg.optim.betas == [0.8, 0.9]
    assert cfg.data.tasks == ["asr", "slu"]
    assert cfg.experiment.progress is False
    assert cfg.backbone.overrides == {"dropout": 0.0}
    assert cfg.method.name == "lora" and cfg.method.options == {"rank": 8, "alpha": 16.5}


def test_unknown_key_names_it_and_lists_valid_ones():
    with pytest.raises(ConfigError) as err:
        load_config(None, ["optim.learning_rate=1"])
    msg = str(err.value)
    assert "optim.learning_rate" in msg and "lr" in msg and "warmup_steps" in msg
    with pytest.raises(ConfigError, match="unknown config key 'optimizer'"):
        load_config(None, ["optimizer.lr=1"])


def test_unknown_key_in_yaml_names_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("data:\n  trian: data/train\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "bad.yaml" in str(err.value) and "data.trian" in str(err.value) and "train" in str(err.value)


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("optim.max_steps=ten", "expected an integer"),
        ("optim.lr=-1", "optim.lr must be > 0"),
        ("optim.schedule=step", "not one of linear, cosine, constant"),
        ("experiment.progress=maybe", "expected true or false"),
        ("optim.warmup_steps=5000", "warmup_steps must be in"),
        ("optim=3", "is a section"),
        ("optim.lr", "not of the form"),
        ("data.speed_perturb=[0.9,0]", "speed_perturb must be positive factors"),
    ],
)
def test_bad_values_say_what_to_fix(override, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load_config(None, [override])


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config(None, ["optim.max_steps=7", "optim.warmup_steps=2", "method.options.prompt_length=3"])
    out = save_config(cfg, tmp_path / "exp")
    assert yaml.safe_load(out.read_text())["optim"]["max_steps"] == 7
    again = load_config(out)
    assert again == cfg


def test_apply_overrides_creates_sections_and_describe_lists_help():
    values = apply_overrides({}, ["data.train=data/x", "backbone.size=small"])
    assert values == {"data": {"train": "data/x"}, "backbone": {"size": "small"}}
    lines = describe()
    assert any(line.startswith("optim.lr ") and "learning rate" in line for line in lines)


def test_train_verb_reports_config_errors_and_lists_options(capsys):
    from speechprompt.cli import main

    assert main(["train", "--resume", "optim.lr=fast", "data.train=x"]) == 2  # overrides may follow flags
    assert "optim.lr: expected a number" in capsys.readouterr().err
    assert main(["train", "optim.lr=1e-3"]) == 2
    assert "data.train is not set" in capsys.readouterr().err
    assert main(["train", "--list-options"]) == 0
    assert "experiment.early_stop_patience" in capsys.readouterr().out
