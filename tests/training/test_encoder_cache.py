"""The encoder-output cache: used only when no trained parameter reaches the encoder and it is deterministic;
training with it gives the same losses and weights as without; a recipe run with it trains the same prompt."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from backbones.ct2_writer import released_stand_in
from safetensors.torch import load_file

from recipes import adapt
from speechprompt.backbones import build_backbone
from speechprompt.training.encoder_cache import EncoderOutputCache, why_not_cacheable
from speechprompt.tuning import build_tuned_model
from tests.recipes.test_adapt_jobs import CONF
from tests.recipes.test_adapt_untrained_rows import data_dir

VOCAB = 30


def without_dropout(module: torch.nn.Module) -> torch.nn.Module:
    for sub in module.modules():
        for name in ("dropout", "activation_dropout", "attention_dropout"):
            if isinstance(getattr(sub, name, None), float):
                setattr(sub, name, 0.0)
    return module


def whisper(dropout: bool = False, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    backbone = build_backbone("whisper", "tiny", vocab_size=VOCAB)
    return backbone if dropout else without_dropout(backbone)


def batch(rows, seed=1):
    """Utterances u<i> (i in rows) of 0.3-0.5 s, the same audio and targets whatever batch they are in."""
    waves, targets = [], []
    for i in rows:
        generator = torch.Generator().manual_seed(seed * 100 + i)
        waves.append(torch.randn(4800 + 800 * i, generator=generator) * 0.1)
        targets.append(torch.cat([torch.randint(4, VOCAB, (3 + i % 2,), generator=generator), torch.tensor([2])]))
    return SimpleNamespace(
        utt_ids=[f"u{i}" for i in rows],
        waveforms=torch.nn.utils.rnn.pad_sequence(waves, batch_first=True),
        wave_lengths=torch.tensor([len(w) for w in waves]),
        targets=torch.nn.utils.rnn.pad_sequence(targets, batch_first=True, padding_value=0),
        task_ids=torch.zeros(len(rows), dtype=torch.long),
    )


def test_only_a_deterministic_encoder_untouched_by_training_is_cached():
    decoder_side = build_tuned_model(whisper(), "decoder_prompt", {"num_prompts": 3})
    first = batch([0, 1, 2])
    rng = torch.get_rng_state()
    assert why_not_cacheable(decoder_side, first, freeze_encoder_steps=0) is None
    assert torch.equal(torch.get_rng_state(), rng)  # the check leaves the run's random state alone
    assert "freeze_encoder_steps is 5" in why_not_cacheable(decoder_side, first, freeze_encoder_steps=5)
    encoder_side = build_tuned_model(whisper(), "prompt", {"num_prompts": 3})
    assert why_not_cacheable(encoder_side, first, 0) == "trained parameters reach the encoder output"
    lora = build_tuned_model(whisper(), "lora", {"rank": 2})
    assert why_not_cacheable(lora, first, 0) == "trained parameters reach the encoder output"
    with_dropout = build_tuned_model(whisper(dropout=True), "decoder_prompt", {"num_prompts": 3})
    assert "not deterministic" in why_not_cacheable(with_dropout, first, 0)
    assert torch.equal(torch.get_rng_state(), rng)


def train(model, batches, cache):
    model.encoder_cache = EncoderOutputCache() if cache else None
    model.train()
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    losses = []
    for b in batches:
        optimiser.zero_grad()
        loss = model(b).loss
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    return losses, model.encoder_cache


def test_training_with_the_cache_equals_training_without():
    # the same utterances come back in other batches with other padding, as in later epochs
    batches = [batch([0, 1, 2]), batch([2, 0]), batch([1]), batch([3, 1])]
    runs = [train(build_tuned_model(whisper(), "decoder_prompt", {"num_prompts": 3, "seed": 4}), batches, cache)
            for cache in (False, True)]
    (plain, _), (cached, cache) = runs
    assert cached == pytest.approx(plain, rel=1e-5)
    assert (cache.hits, cache.misses, len(cache.frames)) == (4, 4, 4)  # u0-u3 encoded once each
    # the valid frames only: u2 (6400 samples) has fewer frames than u3 (7200)
    assert cache.frames[("u2", 6400, True)].shape[0] < cache.frames[("u3", 7200, True)].shape[0]


def test_a_full_cache_still_encodes_what_it_cannot_keep():
    model = build_tuned_model(whisper(), "decoder_prompt", {"num_prompts": 3})
    model.encoder_cache = EncoderOutputCache(max_bytes=1)
    model.eval()
    with torch.no_grad():
        cached = model(batch([0, 1])).loss
        model.encoder_cache = None
        plain = model(batch([0, 1])).loss
    assert float(cached) == pytest.approx(float(plain), rel=1e-5)


def test_a_recipe_run_with_the_cache_trains_the_same_decoder_prompt(tmp_path, capsys):
    (tmp_path / "conf" / "method").mkdir(parents=True)
    (tmp_path / "conf" / "adapt.yaml").write_text(CONF.replace("max_steps: 3", "max_steps: 4"))
    (tmp_path / "conf" / "method" / "decoder_prompt.yaml").write_text(
        "method: {name: decoder_prompt, options: {num_prompts: 4, init_range: 0.05}}\n")
    data_dir(tmp_path / "train", 3, 1)
    data_dir(tmp_path / "test", 2, 3)
    checkpoint = released_stand_in(tmp_path / "released")
    prompts = {}
    for cache in ("true", "false"):
        exp = tmp_path / f"exp_{cache}"
        assert adapt.main(["--backbone", str(checkpoint), "--backbone-name", "tiny", "--size", "10min",
                           "--train", str(tmp_path / "train"), "--dev", str(tmp_path / "test"),
                           "--test", str(tmp_path / "test"), "--conf", str(tmp_path / "conf"),
                           "--methods", "decoder_prompt", "--seeds", "1", "--exp", str(exp),
                           "--override", f"optim.encoder_cache={cache}"]) == 0
        run = exp / "tiny" / "10min" / "decoder_prompt" / "seed1"
        out = capsys.readouterr().out
        assert ("encoder outputs are kept per utterance" in out) == (cache == "true")
        assert ("encoder cache: 5 utterances" in out) == (cache == "true")  # 3 training, 2 dev utterances
        prompts[cache] = load_file(run / "train" / "artifact" / "task.safetensors")
        log = [json.loads(line) for line in (run / "train" / "train_log.jsonl").read_text().splitlines()]
        assert all(torch.isfinite(torch.tensor(r["loss"])) for r in log if "loss" in r)
    for name, tensor in prompts["false"].items():
        torch.testing.assert_close(prompts["true"][name], tensor, rtol=1e-4, atol=1e-6)
