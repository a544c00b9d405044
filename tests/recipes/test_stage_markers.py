"""recipes/stage_lib.sh (issue 19, points 2 and 9): stage options must be numbers; a stage's .done
marker records what it ran with, so a changed command (or recipe variable its function reads) or an
earlier stage run again makes it run again instead of reporting "done already"."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")

RECIPE = """#!/usr/bin/env bash
set -euo pipefail
train=data/a
methods=prompt
extra_opts=(train methods)
. {lib} "$@"
train_all() {{
  local n=0
  for m in ${{methods//,/ }}; do n=$((n + 1)); done
  echo "$train $methods $n" >> "$exp/trained"
}}
run_stage 0 "data" bash -c "echo $train >> $exp/data"
run_stage 1 "train" train_all
run_stage 2 "report" bash -c "cat $exp/trained > $exp/RESULTS.md"
"""


@pytest.fixture
def recipe(tmp_path):
    script = tmp_path / "run.sh"
    script.write_text(RECIPE.format(lib=ROOT / "recipes" / "stage_lib.sh"))

    def run(*args):
        return subprocess.run(["bash", str(script), "--exp", str(tmp_path / "exp"), *args], capture_output=True,
                              text=True, cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})

    return run, tmp_path / "exp"


@pytest.mark.parametrize("option, value", [("--stage", "abc"), ("--stop-stage", "1x"), ("--nj", "-2")])
def test_stage_options_must_be_numbers(recipe, option, value):
    run, exp = recipe
    done = run(option, value)
    assert done.returncode == 2 and f"{option} '{value}': expected a whole number" in done.stderr
    assert not (exp / "data").exists()


def test_changed_arguments_rerun_the_stage_and_the_stages_after_it(recipe):
    run, exp = recipe
    assert run().returncode == 0
    again = run()
    assert again.stdout.count("done already") == 3
    marker = (exp / ".done" / "stage1").read_text().splitlines()[0]
    assert marker == f"train_all | exp={exp} methods=prompt train=data/a"
    # another method list: stage 0 is still done, stage 1 runs again, and so does the report after it
    changed = run("--methods", "prompt,lora")
    assert changed.returncode == 0, changed.stderr
    assert "stage 0 (data): done already" in changed.stdout
    assert "stage 1 (train): running it again: its command changed (was: train_all | " in changed.stdout
    assert "stage 2 (report): running it again: stage 1 ran again before it" in changed.stdout
    assert (exp / "RESULTS.md").read_text() == "data/a prompt 1\ndata/a prompt,lora 2\n"
    # another train dir changes the command line of stage 0 itself
    other = run("--train", "data/b", "--methods", "prompt,lora")
    assert "stage 0 (data): running it again: its command changed" in other.stdout
    # a stage run again on its own makes later stages out of date in the next invocation too
    assert run("--stop-stage", "0", "--force", "--train", "data/b", "--methods", "prompt,lora").returncode == 0
    later = run("--stage", "2", "--train", "data/b", "--methods", "prompt,lora")
    assert "stage 2 (report): running it again: stage 0 ran again after it" in later.stdout


def test_markers_of_older_runs_still_count_as_done(recipe):
    run, exp = recipe
    assert run().returncode == 0
    command = f"bash -c echo data/a >> {exp}/data"
    (exp / ".done" / "stage0").write_text(f"{command} # 3 s\n")  # the format before commands were recorded alone
    assert "stage 0 (data): done already" in run("--stop-stage", "0").stdout


def test_a_quick_run_writes_its_own_results_file(tmp_path):
    script = tmp_path / "run.sh"
    script.write_text(f'#!/usr/bin/env bash\nset -euo pipefail\n. {ROOT / "recipes" / "stage_lib.sh"} "$@"\necho "$results"\n')

    def results(*args):
        done = subprocess.run(["bash", str(script), "--exp", str(tmp_path / "exp"), *args], capture_output=True,
                              text=True, cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
        return done.stdout.strip()

    assert results() == "RESULTS.md"
    assert results("--quick") == "RESULTS.quick.md"  # a smoke run never overwrites the full run's table
    assert results("--quick", "--results", "R.md") == "R.md"
