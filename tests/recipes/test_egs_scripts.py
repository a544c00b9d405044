"""Every egs/<corpus>/<task>/run.sh: valid bash, --help, and a config for every method it runs."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from recipes.adapt import UNTRAINED, method_config

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(ROOT.glob("egs/*/*/run*.sh"))
pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def _methods(script: Path) -> list[str]:
    """Every method the script may run: its methods="..." line and any *_methods="..." alternative."""
    found = re.findall(r'^\w*methods="([^"]+)"', script.read_text(), re.M)
    assert found, f"{script}: no methods=\"...\" line"
    return sorted({method for line in found for method in line.split(",")})


def _confs(script: Path) -> list[list[Path]]:
    """The config layers a script may hand to recipes.adapt: conf/, the folders below it with their own
    adapt.yaml (conf/checkpoint), and conf/ with a folder of changes layered over it (conf/wav2seq_on_checkpoint)."""
    conf = script.parent / "conf"
    layers = [[conf]] if (conf / "method").is_dir() else []
    for folder in sorted(conf.glob("*/")):
        if (folder / "method").is_dir():
            layers.append([folder] if (folder / "adapt.yaml").is_file() else [conf, folder])
    return layers


def test_there_are_recipes():
    names = {p.parent.parent.name for p in SCRIPTS}
    assert {"synth", "asterisk", "fillets", "kaldi", "librispeech"} <= names


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_run_sh_parses_helps_and_rejects_unknown_options(script, tmp_path):
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    helped = subprocess.run(["bash", str(script), "--help"], capture_output=True, text=True, cwd=tmp_path)
    assert helped.returncode == 0 and f"./{script.name}" in helped.stdout and "set -euo" not in helped.stdout
    wrong = subprocess.run(["bash", str(script), "--no-such-option", "1", "--exp", str(tmp_path / "exp")],
                           capture_output=True, text=True, cwd=tmp_path)
    assert wrong.returncode == 2 and "unknown option '--no-such-option'" in wrong.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_method_of_a_recipe_has_a_config(script):
    confs = _confs(script)
    assert confs, f"{script}: no conf/method folder"
    for conf in confs:
        for method in _methods(script):
            for quick in (False, True):
                config = method_config(conf, method, quick)
                if method in UNTRAINED:  # nothing to train: the common decode settings only
                    assert set(config) == {"decode"}
                    continue
                assert config["method"]["name"] == method, f"{conf[-1]}/method/{method}.yaml names another method"
                assert "optim" in config and "decode" in config


def test_zero_shot_decodes_with_the_common_decode_settings():
    conf = ROOT / "egs" / "synth" / "asr" / "conf"
    common = yaml.safe_load((conf / "adapt.yaml").read_text())["decode"]
    assert method_config(conf, "zero_shot", False) == {"decode": common}
    quick = {**common, **yaml.safe_load((conf / "quick.yaml").read_text()).get("decode", {})}
    assert method_config(conf, "zero_shot", True) == {"decode": quick}


def test_run_all_lists_every_recipe_on_embedded_corpora_and_each_exists():
    listed = subprocess.run([str(ROOT / "egs" / "run_all.sh"), "--list"], capture_output=True, text=True, check=True)
    scripts = {line.split()[0] for line in listed.stdout.splitlines()}
    for script in scripts:
        assert (ROOT / "egs" / script).is_file() and (ROOT / "egs" / script).stat().st_mode & 0o111, script
    # the recipes that need a user's own data (kaldi, librispeech, slurp) are the only ones left out
    embedded = {str(p.relative_to(ROOT / "egs")) for p in SCRIPTS if p.parts[-3] in ("synth", "fillets", "asterisk")}
    assert scripts == embedded


def test_a_later_conf_folder_changes_only_what_it_holds(tmp_path):
    base, overlay = tmp_path / "conf", tmp_path / "conf" / "other_backbone"
    (base / "method").mkdir(parents=True)
    (overlay / "method").mkdir(parents=True)
    (base / "adapt.yaml").write_text("optim: {max_steps: 100, warmup_steps: 10}\ndecode: {beam: 4}\n")
    (base / "method" / "finetune.yaml").write_text("method: {name: finetune}\noptim: {lr: 1.0e-3}\n")
    (base / "method" / "lora.yaml").write_text("method: {name: lora}\noptim: {lr: 1.0e-3}\n")
    (overlay / "method" / "finetune.yaml").write_text("optim: {lr: 1.0e-4}\n")

    finetune = method_config([base, overlay], "finetune", False)
    assert finetune["optim"] == {"max_steps": 100, "warmup_steps": 10, "lr": 1.0e-4}
    assert finetune["method"] == {"name": "finetune"} and finetune["decode"] == {"beam": 4}
    assert method_config([base, overlay], "lora", False) == method_config(base, "lora", False)
    with pytest.raises(SystemExit, match="no config for method 'ulpt'"):
        method_config([base, overlay], "ulpt", False)
    with pytest.raises(SystemExit, match="no config folder .*typo"):
        method_config([base, tmp_path / "typo"], "finetune", False)
