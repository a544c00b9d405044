"""recipes.adapt --jobs: runs side by side in their own processes, each with its share of the CPU threads and
its own log; a failed run is named with its log and does not stop the others; a run in the pool trains the
same prompt as alone."""

from __future__ import annotations

import json

import pytest
import torch
from backbones.ct2_writer import released_stand_in
from safetensors.torch import load_file

from recipes import adapt
from recipes.run_pool import threads_per_run
from tests.recipes.test_adapt_untrained_rows import data_dir

CONF = """\
backbone: {pad_to_window: false}
data: {max_batch_seconds: 4}
optim: {max_steps: 3, warmup_steps: 1, lr: 1.0e-2, precision: fp32}
experiment: {log_every: 1, eval_every: 3, save_every: 3, keep_last: 1, early_stop_patience: 0}
decode: {beam: 1, max_len: 8, pad_to_window: false}
"""


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    root = tmp_path_factory.mktemp("recipe")
    (root / "conf" / "method").mkdir(parents=True)
    (root / "conf" / "adapt.yaml").write_text(CONF)
    (root / "conf" / "method" / "prompt.yaml").write_text("method: {name: prompt, options: {num_prompts: 4}}\n")
    (root / "conf" / "method" / "broken.yaml").write_text("method: {name: no_such_method}\n")
    data_dir(root / "train", 3, 1)
    data_dir(root / "test", 2, 3)
    return root, released_stand_in(root / "released")


def argv(recipe, exp, methods, seeds, jobs):
    root, checkpoint = recipe
    return ["--backbone", str(checkpoint), "--backbone-name", "tiny", "--size", "10min",
            "--train", str(root / "train"), "--dev", str(root / "test"), "--test", str(root / "test"),
            "--conf", str(root / "conf"), "--methods", methods, "--seeds", seeds, "--exp", str(exp),
            "--jobs", str(jobs)]


def test_runs_in_a_pool_log_apart_record_their_threads_and_survive_a_failed_one(recipe, tmp_path, capsys):
    exp = tmp_path / "exp"
    assert adapt.main(argv(recipe, exp, "prompt,broken,zero_shot", "1,2", jobs=2)) == 1
    out, err = capsys.readouterr()
    runs = exp / "tiny" / "10min"
    assert f"2 at a time with {threads_per_run(2)} CPU thread(s) each" in out
    assert "[broken seed 1] failed: " in err and str(runs / "broken" / "seed1" / "adapt.log") in err
    assert "no_such_method" in (runs / "broken" / "seed1" / "adapt.log").read_text()
    for seed in (1, 2):
        run = runs / "prompt" / f"seed{seed}"
        result = json.loads((run / "result.json").read_text())
        assert result["threads"] == threads_per_run(2) and result["concurrent_runs"] == 2
        assert result["device"] == "cpu" and 0 < result["cpu_seconds"] <= result["wall_seconds"] * result["threads"] + 1
        assert f"[prompt seed {seed}] wer " in out  # one line per finished run in the caller's output
        assert f"[prompt seed {seed}] training -> " in (run / "adapt.log").read_text()  # the rest in its log
    assert (runs / "zero_shot" / "seed1" / "result.json").is_file()

    # run again: the finished runs are kept, only the broken ones are tried (and fail) again
    assert adapt.main(argv(recipe, exp, "prompt,broken", "1,2", jobs=2)) == 1
    assert "done already" in (runs / "prompt" / "seed1" / "adapt.log").read_text()


def test_a_run_in_the_pool_trains_the_same_prompt_as_alone(recipe, tmp_path):
    pooled, alone = tmp_path / "pooled", tmp_path / "alone"
    assert adapt.main(argv(recipe, pooled, "prompt", "1", jobs=2)) == 0
    threads = torch.get_num_threads()
    torch.set_num_threads(threads_per_run(2))  # the same thread count: the same float reductions
    try:
        assert adapt.main(argv(recipe, alone, "prompt", "1", jobs=1)) == 0
    finally:
        torch.set_num_threads(threads)
    artifacts = [load_file(exp / "tiny" / "10min" / "prompt" / "seed1" / "train" / "artifact" / "task.safetensors")
                 for exp in (pooled, alone)]
    assert artifacts[0].keys() == artifacts[1].keys()
    for name in artifacts[0]:
        torch.testing.assert_close(artifacts[0][name], artifacts[1][name], rtol=1e-5, atol=1e-6)
    results = [json.loads((exp / "tiny" / "10min" / "prompt" / "seed1" / "result.json").read_text())
               for exp in (pooled, alone)]
    assert results[0]["metrics"] == results[1]["metrics"] and results[1]["concurrent_runs"] == 1
