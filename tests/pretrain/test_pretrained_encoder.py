"""Wav2Seq on a released checkpoint's encoder (a tiny random Whisper imported from the CTranslate2 format):
hidden-layer pseudo labels on the true length, pretraining with the encoder fixed then trained (or fixed
throughout), resume, and every tuning method on the result with a new character vocabulary."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from backbones.ct2_writer import released_stand_in

from speechprompt.backbones import load_backbone
from speechprompt.cli import main
from speechprompt.data.text import train_tokenizer
from speechprompt.pretrain.labelling import make_featurizer
from speechprompt.pretrain.pseudo_language import PseudoLanguage
from speechprompt.training.checkpoint import load_checkpoint, step_dir
from speechprompt.tuning import build_tuned_model, load_task
from speechprompt.tuning.registry import TRAINED_METHODS

FAST = ["optim.warmup_steps=1", "optim.schedule=constant", "optim.lr=3e-3", "optim.precision=fp32",
        "experiment.progress=false", "data.max_batch_seconds=3", "experiment.log_every=1", "experiment.keep_last=10"]
ENCODER = "backbone.model.model.encoder."


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A folder like a fetched released checkpoint: a tiny random Whisper written as CTranslate2 and imported."""
    return released_stand_in(tmp_path_factory.mktemp("released"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from pretrain.conftest import make_phone_data

    return make_phone_data(tmp_path_factory.mktemp("corpus"), n=6, seconds=1.2)


@pytest.fixture(scope="module")
def pseudo(checkpoint, corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("pl") / "pl"
    assert main(["pseudo-label", "--data", str(corpus), "--out", str(out), "--feature", "hidden", "--backbone",
                 str(checkpoint), "--layer", "1", "--clusters", "8", "--bpe-vocab", "24"]) == 0
    return out


def encoder_state(backbone) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in backbone.model.model.encoder.state_dict().items()}


def encoder_tensors(checkpoint_dir) -> dict[str, torch.Tensor]:
    tensors, _, _ = load_checkpoint(checkpoint_dir)
    return {k.removeprefix(ENCODER): v for k, v in tensors.items() if k.startswith(ENCODER)}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    """Every tensor of ``b`` (e.g. the trained ones in a checkpoint) equals ``a``'s of the same name."""
    assert len(b) > 4
    return all(torch.equal(a[k], b[k]) for k in b)


def pretrain(corpus, pseudo, out, *extra) -> int:
    return main(["pretrain", "--data", str(corpus), "--pseudo", str(pseudo), "--out", str(out), *FAST, *extra])


# ---- pseudo labels ------------------------------------------------------------------------------
def test_hidden_features_of_a_released_checkpoint_cover_the_true_length_only(checkpoint):
    featurizer = make_featurizer("hidden", str(checkpoint), 2)
    backbone = featurizer.backbone
    assert backbone.is_released_checkpoint and not backbone.pad_to_window  # no 10 s window of 500 frames
    assert featurizer.frame_rate == 50.0
    rng = np.random.default_rng(1)
    short, long = (torch.from_numpy(rng.normal(0, 0.1, n).astype(np.float32)) for n in (12000, 20000))
    alone = featurizer(short)
    assert alone.shape == (38, backbone.encoder_dim)  # 12000 // 160 = 75 mel frames -> 38 encoder frames
    # the same utterance inside a padded batch gives the same layer-2 states on its own frames
    captured = {}
    handle = backbone.encoder_layers[1].register_forward_hook(lambda m, a, out: captured.update(h=out))
    with torch.no_grad():
        waves = torch.nn.utils.rnn.pad_sequence([short, long], batch_first=True)
        backbone.encode(waves, torch.tensor([12000, 20000]))
    handle.remove()
    torch.testing.assert_close(captured["h"][0, :38], alone, rtol=1e-4, atol=1e-5)
    both = featurizer.layers(short, [0, 1, 2])  # several layers in one pass, the deepest equal to the lone one
    assert torch.equal(both[2], alone) and both[0].shape == alone.shape


def test_audio_longer_than_the_window_is_encoded_piece_by_piece(checkpoint):
    from speechprompt.decoding.long_form import split

    featurizer = make_featurizer("hidden", str(checkpoint), 1)
    limit = featurizer.max_samples
    assert limit is not None  # a released Whisper's encoder has a fixed number of positions
    rng = np.random.default_rng(2)
    wave = rng.normal(0, 0.1, limit + limit // 2).astype(np.float32)
    wave[limit - 8000:limit - 4000] *= 0.01  # a pause to cut in
    with pytest.raises(Exception, match="segment the audio first"):  # what a single pass would do
        featurizer._piece_layers(torch.from_numpy(wave), [1])
    pieces = split(wave, limit)
    assert len(pieces) == 2 and sum(map(len, pieces)) == len(wave)
    joined = featurizer(torch.from_numpy(wave))
    by_hand = torch.cat([featurizer(torch.from_numpy(piece)) for piece in pieces])
    assert torch.equal(joined, by_hand) and len(joined) > featurizer.frame_rate * limit / 16000


def test_pseudo_label_from_a_released_checkpoint_records_its_backbone(checkpoint, corpus, pseudo, tmp_path):
    language = PseudoLanguage.load(pseudo)
    assert language.feature_config["backbone"] == str(checkpoint) and language.feature_config["layer"] == 1
    stats = json.loads((pseudo / "stats.json").read_text())
    assert abs(stats["frames_per_second"] - 50) < 2
    # another data dir labelled with the same language finds the backbone by itself
    assert main(["pseudo-label", "--data", str(corpus), "--out", str(tmp_path / "dev"), "--language", str(pseudo)]) == 0
    assert (tmp_path / "dev" / "pseudo_text").read_text() == (pseudo / "pseudo_text").read_text()


# ---- pretraining --------------------------------------------------------------------------------
def test_encoder_fixed_for_the_first_steps_then_trained(checkpoint, corpus, pseudo, tmp_path, capsys):
    source = encoder_state(load_backbone(checkpoint))
    out = tmp_path / "w2s"
    rc = pretrain(corpus, pseudo, out, "--encoder-from", str(checkpoint), "--dev", str(corpus),
                  "optim.max_steps=4", "optim.freeze_encoder_steps=2", "experiment.save_every=1",
                  "experiment.eval_every=4", "backbone.overrides.decoder_layers=1")
    assert rc == 0, capsys.readouterr().err
    assert "fixed until step 2" in capsys.readouterr().out
    steps = out / "exp" / "checkpoints"
    assert same(source, encoder_tensors(step_dir(steps, 2)))  # bit-identical while fixed
    assert not same(source, encoder_tensors(step_dir(steps, 3)))  # trained after
    backbone = load_backbone(out)
    assert not same(source, encoder_state(backbone))
    # a backbone made here: pseudo vocabulary, fresh 1-layer decoder, Whisper's own log-mel, true length
    assert backbone.vocab_size == PseudoLanguage.load(pseudo).bpe.vocab_size and len(backbone.decoder_layers) == 1
    assert backbone.options["encoder_from"] == "tiny-test" and not backbone.is_released_checkpoint
    assert not backbone.pad_to_window and not backbone.options.get("utterance_cmn")
    assert backbone.suppress_ids == [] and (backbone.bos_id, backbone.eos_id) == (1, 2)
    summary = json.loads((out / "pretrain.json").read_text())
    assert summary["encoder_from"] == str(checkpoint) and summary["freeze_encoder_steps"] == 2
    log = (out / "exp" / "train_log.jsonl").read_text()
    assert '"dev_loss"' in log  # the dev set was labelled with the language's recorded backbone


def test_encoder_fixed_throughout_with_the_checkpoint_decoder(checkpoint, corpus, pseudo, tmp_path, capsys):
    source = load_backbone(checkpoint)
    out = tmp_path / "w2s"
    rc = pretrain(corpus, pseudo, out, "--encoder-from", str(checkpoint), "--decoder", "checkpoint",
                  "optim.max_steps=3", "optim.freeze_encoder_steps=-1")
    assert rc == 0, capsys.readouterr().err
    backbone = load_backbone(out)
    assert same(encoder_state(source), encoder_state(backbone))
    decoder = source.model.model.decoder.state_dict()
    after = backbone.model.model.decoder.state_dict()
    assert decoder["layers.0.fc1.weight"].shape == after["layers.0.fc1.weight"].shape
    assert not torch.equal(decoder["layers.0.fc1.weight"], after["layers.0.fc1.weight"])  # the decoder trained
    assert after["embed_tokens.weight"].shape[0] == PseudoLanguage.load(pseudo).bpe.vocab_size


def test_resume_continues_as_the_uninterrupted_run(checkpoint, corpus, pseudo, tmp_path, capsys):
    common = ["--encoder-from", str(checkpoint), "optim.freeze_encoder_steps=3", "experiment.save_every=1",
              "backbone.overrides.decoder_layers=1"]
    assert pretrain(corpus, pseudo, tmp_path / "whole", *common, "optim.max_steps=5") == 0
    # stopped after 2 steps (before the encoder is trained), then continued to 5
    assert pretrain(corpus, pseudo, tmp_path / "parts", *common, "optim.max_steps=2") == 0
    capsys.readouterr()
    assert pretrain(corpus, pseudo, tmp_path / "parts", *common, "optim.max_steps=5", "--resume",
                    "--allow-changes") == 0
    assert "resumed from" in capsys.readouterr().out
    whole, parts = load_backbone(tmp_path / "whole"), load_backbone(tmp_path / "parts")
    for (name, a), b in zip(whole.model.state_dict().items(), parts.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_wrong_decoder_overrides_are_refused(checkpoint, corpus, pseudo, tmp_path, capsys):
    rc = pretrain(corpus, pseudo, tmp_path / "x", "--encoder-from", str(checkpoint), "optim.max_steps=1",
                  "backbone.overrides.d_model=64")
    assert rc == 2 and "only the decoder can change" in capsys.readouterr().err


# ---- adaptation ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def wav2seq(checkpoint, corpus, pseudo, tmp_path_factory):
    out = tmp_path_factory.mktemp("w2s") / "w2s"
    assert pretrain(corpus, pseudo, out, "--encoder-from", str(checkpoint), "optim.max_steps=2",
                    "backbone.overrides.decoder_layers=1") == 0
    return out


@pytest.mark.parametrize("method", TRAINED_METHODS)
def test_every_method_learns_a_new_vocabulary_on_the_pretrained_backbone(wav2seq, method, tmp_path):
    tok = train_tokenizer("char", ["ab ba", "abc"], tmp_path / "tok")
    backbone = load_backbone(wav2seq)
    assert backbone.vocab_size != tok.vocab_size
    pristine = {k: v.clone() for k, v in backbone.model.state_dict().items()}
    model = build_tuned_model(backbone, method, {"vocab_size": tok.vocab_size, "seed": 1})
    report = model.parameter_report()
    vocab = model.vocab_parameter_names
    assert vocab and report.parts["vocabulary"] == sum(p.numel() for n, p in backbone.named_parameters() if n in vocab)
    assert all(p.requires_grad for n, p in backbone.named_parameters() if n in vocab)
    rng = np.random.default_rng(0)
    waves = [torch.from_numpy(rng.normal(0, 0.1, int(16000 * s)).astype(np.float32)) for s in (0.8, 1.2)]
    targets = [tok.encode(t) + [tok.eos_id] for t in ("ab", "ba ab")]
    target = torch.full((2, max(map(len, targets))), tok.pad_id)
    for row, ids in enumerate(targets):
        target[row, : len(ids)] = torch.tensor(ids)
    batch = type("Batch", (), dict(waveforms=torch.nn.utils.rnn.pad_sequence(waves, batch_first=True),
                                   wave_lengths=torch.tensor([len(w) for w in waves]), targets=target,
                                   task_ids=torch.zeros(2, dtype=torch.long)))
    embedding = backbone.model.model.decoder.embed_tokens.weight.detach().clone()
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    model(batch).loss.backward()
    optimiser.step()
    model.eval()
    assert not torch.equal(embedding, backbone.model.model.decoder.embed_tokens.weight)  # the new vocabulary trains
    if method != "finetune":  # everything else of the backbone stays as pretrained
        state = backbone.model.state_dict()
        assert all(torch.equal(v, state[k]) for k, v in pristine.items() if "embed_tokens" not in k
                   and "proj_out" not in k)
    model.save_artifact(tmp_path / "artifact", tmp_path / "tok")
    meta = json.loads((tmp_path / "artifact" / "task.json").read_text())
    assert meta["pad_to_window"] is False  # decoding encodes the true length, as training did
    with torch.no_grad():
        before = model(batch).logits
        after = load_task(tmp_path / "artifact", load_backbone(wav2seq))(batch).logits
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)


def test_prompt_tuning_run_on_the_pretrained_backbone(wav2seq, corpus, tmp_path, capsys):
    exp = tmp_path / "prompt"
    rc = main(["train", f"data.train={corpus}", f"backbone.path={wav2seq}", "data.tokenizer_kind=char",
               "method.name=prompt", "method.options.num_prompts=3", f"experiment.dir={exp}", "optim.max_steps=2",
               *FAST])
    out = capsys.readouterr().out
    assert rc == 0 and "vocabulary" in out and "checkpoint's own" not in out


# ---- measuring a pseudo language ------------------------------------------------------------------
def test_label_quality_scores_layers_against_the_transcripts(checkpoint, corpus, tmp_path, capsys):
    from speechprompt.pretrain.label_quality import frame_letters
    from speechprompt.pretrain.label_quality import main as quality

    # letters spread evenly over the speech span, silence outside it
    assert frame_letters("ab c", 8, 4.0, (0.5, 1.25)) == ["<sil>", "<sil>", "a", "b", "c", "<sil>", "<sil>", "<sil>"]
    out = tmp_path / "quality.json"
    rc = quality(["--data", str(corpus), "--backbone", str(checkpoint), "--layers", "1,2", "--mfcc", "--clusters", "4,6",
                  "--bpe-vocab", "30", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    rows = json.loads(out.read_text())
    assert [(r["feature"], r["clusters"]) for r in rows] == [
        ("mfcc", 4), ("mfcc", 6), ("layer 1", 4), ("layer 1", 6), ("layer 2", 4), ("layer 2", 6)]
    for row in rows:
        assert 0 <= row["letter_nmi"] <= 1 and 0 < row["letter_purity"] <= 1 and row["clusters_used"] <= row["clusters"]
        assert row["tokens_per_second"] <= row["units_per_second"]  # subwords join units
    layer = next(r for r in rows if r["feature"] == "layer 1")
    assert layer["units_per_second"] <= 50  # at most one unit per 20 ms frame: the true length, not the window
    assert "letter NMI" in capsys.readouterr().out
    assert quality(["--data", str(corpus), "--layers", "1"]) == 2
