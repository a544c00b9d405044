"""recipes.adapt's zero-training rows on a tiny stand-in released checkpoint: run once (not per seed), and the
zero_shot decoding of one data size is reused by another (it does not depend on the adaptation set)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from backbones.ct2_writer import released_stand_in

from recipes import adapt
from speechprompt.data.audio import write_audio


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return released_stand_in(tmp_path_factory.mktemp("released"))


def data_dir(root, n, seed):
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    rows = []
    for i in range(n):
        utt = f"spk-{seed}-{i:02d}"
        wav = write_audio(root / f"{utt}.wav", rng.normal(0, 0.1, 8000 + 1600 * i).astype(np.float32), 16000)
        rows.append((utt, wav))
    (root / "wav.scp").write_text("".join(f"{u} {p}\n" for u, p in rows))
    (root / "utt2spk").write_text("".join(f"{u} spk\n" for u, _ in rows))
    (root / "text").write_text("".join(f"{u} press {i} to continue\n" for i, (u, _) in enumerate(rows)))
    return root


def adapt_args(checkpoint, tmp_path, size, train):
    return ["--backbone", str(checkpoint), "--backbone-name", "tiny", "--size", size, "--train", str(train),
            "--dev", str(tmp_path / "test"), "--test", str(tmp_path / "test"), "--conf", str(tmp_path / "conf"),
            "--methods", "zero_shot,text_prompt", "--seeds", "1,2,3", "--exp", str(tmp_path / "exp")]


def test_untrained_rows_run_once_and_zero_shot_decoding_is_shared_between_sizes(checkpoint, tmp_path, capsys):
    (tmp_path / "conf" / "method").mkdir(parents=True)
    (tmp_path / "conf" / "adapt.yaml").write_text("decode: {beam: 1, max_len: 8, pad_to_window: false}\n")
    small, large = data_dir(tmp_path / "small", 2, 1), data_dir(tmp_path / "large", 3, 2)
    data_dir(tmp_path / "test", 3, 3)

    assert adapt.main(adapt_args(checkpoint, tmp_path, "10min", small)) == 0
    exp = tmp_path / "exp" / "tiny"
    for method in ("zero_shot", "text_prompt"):
        assert sorted(p.name for p in (exp / "10min" / method).iterdir()) == ["seed1"]
    first = exp / "10min" / "zero_shot" / "seed1" / "decode"
    marker = "shared decoding\n"  # a file only the first size's decoding has: copied means reused
    (first / "marker.txt").write_text(marker)

    assert adapt.main(adapt_args(checkpoint, tmp_path, "1h", large)) == 0
    assert "its decoding is reused" in capsys.readouterr().out
    second = exp / "1h" / "zero_shot" / "seed1"
    assert (second / "decode" / "marker.txt").read_text() == marker
    assert (second / "decode" / "hyp.trn").read_text() == (first / "hyp.trn").read_text()
    results = [json.loads((exp / size / "zero_shot" / "seed1" / "result.json").read_text()) for size in ("10min", "1h")]
    assert results[0]["metrics"] == results[1]["metrics"] and results[1]["data_size"] == "1h"

    # text_prompt depends on the adaptation transcripts: decoded anew, never copied
    assert not (exp / "1h" / "text_prompt" / "seed1" / "decode" / "marker.txt").exists()

    # another test set is not the same decoding: no reuse
    shutil.rmtree(exp / "1h")
    data_dir(tmp_path / "test2", 2, 4)
    argv = adapt_args(checkpoint, tmp_path, "1h", large)
    argv[argv.index("--test") + 1] = str(tmp_path / "test2")
    assert adapt.main(argv) == 0
    assert not (exp / "1h" / "zero_shot" / "seed1" / "decode" / "marker.txt").exists()


def test_zero_shot_true_length_decodes_the_untouched_backbone_without_the_window(checkpoint, tmp_path):
    (tmp_path / "conf" / "method").mkdir(parents=True)
    (tmp_path / "conf" / "adapt.yaml").write_text("decode: {beam: 1, max_len: 8}\n")  # the checkpoint's own mode
    data_dir(tmp_path / "small", 2, 1)
    data_dir(tmp_path / "test", 3, 3)
    argv = adapt_args(checkpoint, tmp_path, "10min", tmp_path / "small")
    argv[argv.index("--methods") + 1] = "zero_shot,zero_shot_true_length"
    assert adapt.main(argv) == 0
    runs = tmp_path / "exp" / "tiny" / "10min"
    settings = {m: json.loads((runs / m / "seed1" / "decode" / "decode.json").read_text())["settings"]
                for m in ("zero_shot", "zero_shot_true_length")}
    assert settings["zero_shot"]["pad_to_window"] is True  # a released checkpoint's default: its 30 s window
    assert settings["zero_shot_true_length"]["pad_to_window"] is False
    result = json.loads((runs / "zero_shot_true_length" / "seed1" / "result.json").read_text())
    assert result["trainable_params"] == 0 and result["method"] == "zero_shot_true_length"


def test_text_prompt_may_write_the_suppressed_symbols_its_prompt_shows(checkpoint, tmp_path, monkeypatch):
    """Slot markup ('[', ':', '|') is on Whisper's suppress list: a text prompt that shows the format must
    not leave the format unwritable (a trained task gets the same exception for its targets)."""
    import speechprompt.backbones as backbones
    from speechprompt.data.text import load_tokenizer
    from speechprompt.tuning.model import load_task

    tokenizer = load_tokenizer(checkpoint)
    shown = tokenizer.encode("press")[0]  # an id the prompt uses, declared suppressed by the checkpoint below
    real_load = backbones.load_backbone

    def load_with_suppression(folder):
        backbone = real_load(folder)
        monkeypatch.setattr(type(backbone), "suppress_ids", property(lambda self: [1, shown]))
        return backbone

    monkeypatch.setattr(backbones, "load_backbone", load_with_suppression)
    data_dir(tmp_path / "small", 2, 1)
    args = adapt.parse_args(adapt_args(checkpoint, tmp_path, "10min", tmp_path / "small"))
    for text_prompt, writable in ((False, False), (True, True)):
        artifact = tmp_path / f"text_prompt_{text_prompt}" / "artifact"
        adapt.save_zero_shot(args, artifact, text_prompt=text_prompt)
        task = load_task(artifact, load_with_suppression(checkpoint))
        never = task.suppress_ids.tolist()
        assert 1 in never and (shown not in never) == writable  # only what the prompt shows is let through
