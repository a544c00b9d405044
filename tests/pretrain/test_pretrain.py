"""Pseudo-label -> pretrain -> a loadable backbone with its pseudo language -> prompt tuning on it."""

from __future__ import annotations

import json

from speechprompt.backbones import load_backbone
from speechprompt.cli import main
from speechprompt.data.kaldi_dir import DataDir
from speechprompt.pretrain.pretraining import pseudo_labelled
from speechprompt.pretrain.pseudo_language import PseudoLanguage

FAST = ["optim.warmup_steps=1", "experiment.progress=false", "data.max_batch_seconds=4", "experiment.log_every=1"]


def test_pseudo_label_pretrain_then_prompt_tune(phone_data, tmp_path, capsys):
    pl, w2s = tmp_path / "pl", tmp_path / "w2s"
    assert main(["pseudo-label", "--data", str(phone_data), "--out", str(pl), "--clusters", "12", "--bpe-vocab", "40"]) == 0
    rc = main(["pretrain", "--data", str(phone_data), "--pseudo", str(pl), "--dev", str(phone_data), "--out", str(w2s),
               "optim.max_steps=6", "optim.lr=3e-3", "experiment.eval_every=3", "experiment.save_every=3", *FAST])
    assert rc == 0, capsys.readouterr().err
    backbone = load_backbone(w2s)
    language = PseudoLanguage.load(w2s / "pseudo_language")
    assert backbone.vocab_size == language.bpe.vocab_size
    summary = json.loads((w2s / "pretrain.json").read_text())
    assert summary["targets"] == "pseudo" and summary["fingerprint"] == backbone.fingerprint()
    log = [json.loads(x) for x in (w2s / "exp" / "train_log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if "loss" in r]
    assert len(losses) == 6 and losses[-1] < losses[0]  # the model learns the pseudo subwords
    assert (w2s / "exp" / "run.sh").read_text().count("pretrain --data") == 1
    assert (w2s / "exp" / "dev_pseudo" / "pseudo_text").is_file()

    # the pretrained backbone is a starting point for prompt tuning on real transcripts
    exp = tmp_path / "prompt"
    rc = main(["train", f"data.train={phone_data}", f"data.dev={phone_data}", f"backbone.path={w2s}",
               "method.name=prompt", "method.options.num_prompts=3", f"experiment.dir={exp}", "optim.max_steps=3",
               "experiment.eval_every=3", "experiment.best_metric=dev_wer", *FAST])
    out = capsys.readouterr().out
    assert rc == 0 and "trainable parameters" in out
    task = json.loads((exp / "artifact" / "task.json").read_text())
    assert task["backbone"]["fingerprint"] == backbone.fingerprint()
    assert any("dev_wer" in line for line in (exp / "train_log.jsonl").read_text().splitlines())


def test_pretrain_on_transcripts_and_second_iteration(phone_data, tmp_path, capsys):
    sup = tmp_path / "sup"
    rc = main(["pretrain", "--data", str(phone_data), "--targets", "text", "--tokenizer", "char", "--out", str(sup),
               "optim.max_steps=2", *FAST])
    assert rc == 0, capsys.readouterr().err
    assert load_backbone(sup).vocab_size == json.loads((sup / "pretrain.json").read_text())["vocab_size"]
    # iteration 2: cluster a layer of the first model, continue from it with the new vocabulary
    pl2 = tmp_path / "pl2"
    assert main(["pseudo-label", "--data", str(phone_data), "--out", str(pl2), "--feature", "hidden",
                 "--backbone", str(sup), "--layer", "1", "--clusters", "6", "--bpe-vocab", "20"]) == 0
    it2 = tmp_path / "it2"
    assert main(["pretrain", "--data", str(phone_data), "--pseudo", str(pl2), "--init", str(sup), "--out", str(it2),
                 "optim.max_steps=2", *FAST]) == 0
    assert load_backbone(it2).vocab_size == PseudoLanguage.load(pl2).bpe.vocab_size


def test_pretrain_errors_are_clear(phone_data, tmp_path, capsys):
    rc = main(["pretrain", "--data", str(phone_data), "--out", str(tmp_path / "x"), "optim.max_steps=1",
               "optim.warmup_steps=0"])
    assert rc == 2 and "needs --pseudo" in capsys.readouterr().err
    rc = main(["pretrain", "--data", str(phone_data), "--pseudo", str(tmp_path), "--out", str(tmp_path / "y")])
    assert rc == 2 and "not a pseudo-language folder" in capsys.readouterr().err


def test_unlabelled_utterances_are_counted(phone_data, tmp_path, capsys):
    pl = tmp_path / "pl"
    main(["pseudo-label", "--data", str(phone_data), "--out", str(pl), "--clusters", "8", "--bpe-vocab", "30"])
    lines = (pl / "pseudo_text").read_text().splitlines()
    (pl / "pseudo_text").write_text("\n".join(lines[:-2]) + "\n")
    data = pseudo_labelled(phone_data, pl / "pseudo_text")
    assert len(data.utt_ids) == len(lines) - 2
    assert "2 utterance(s)" in capsys.readouterr().out


def test_pseudo_targets_longer_than_the_decoder_are_left_out(phone_data, capsys):
    from speechprompt.pretrain.pretraining import fitting_targets

    data = DataDir.read(phone_data)
    data.text = {u: " ".join(["x"] * (3 + 2 * i)) for i, u in enumerate(data.utt_ids)}  # 3, 5, 7, ... pieces
    kept = fitting_targets(data, 9, "training")
    assert kept.utt_ids == data.utt_ids[:3] and "5 training utterance(s)" in capsys.readouterr().out
    assert fitting_targets(data, None, "training") is data


def test_pretrain_resume_gives_the_same_backbone(phone_data, tmp_path, capsys):
    import shutil

    pl = tmp_path / "pl"
    assert main(["pseudo-label", "--data", str(phone_data), "--out", str(pl), "--clusters", "8", "--bpe-vocab", "30"]) == 0
    args = ["--data", str(phone_data), "--pseudo", str(pl), "optim.max_steps=4", "experiment.save_every=2", *FAST]
    assert main(["pretrain", "--out", str(tmp_path / "full"), *args]) == 0
    cut = tmp_path / "cut"
    assert main(["pretrain", "--out", str(cut), *args]) == 0
    shutil.rmtree(cut / "exp" / "checkpoints" / "step-00000004")
    (cut / "model.safetensors").unlink()
    capsys.readouterr()
    assert main(["pretrain", "--out", str(cut), *args, "--resume"]) == 0
    assert "step-00000002 at step 2" in capsys.readouterr().out  # continued, not started again
    assert load_backbone(cut).fingerprint() == load_backbone(tmp_path / "full").fingerprint()
