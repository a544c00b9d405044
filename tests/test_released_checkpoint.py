"""A released Whisper checkpoint end to end, on a tiny random stand-in imported from the CTranslate2 format:
its own tokenizer and task prefix, loss on the text only, suppression, the 30 s window, every method."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from backbones.ct2_writer import released_stand_in
from released_checkpoint_check import check_method_round_trip

from speechprompt.backbones import load_backbone
from speechprompt.data.text import load_tokenizer
from speechprompt.data.whisper_tokenizer import TokenizerError
from speechprompt.decoding.search import greedy_search, loop_start
from speechprompt.tuning import build_tuned_model
from speechprompt.tuning.registry import TRAINED_METHODS

VOCAB = 400


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny random Whisper written as a CTranslate2 folder and imported: a folder like a fetched checkpoint."""
    return released_stand_in(tmp_path_factory.mktemp("released"), VOCAB)


def multilingual_copy(checkpoint, tmp_path):
    folder = tmp_path / "multi"
    folder.mkdir()
    for path in checkpoint.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    config = json.loads((folder / "generation_config.json").read_text())
    (folder / "generation_config.json").write_text(json.dumps({**config, "is_multilingual": True}))
    return folder


def waves(seconds=(1.0, 0.6, 1.4), seed=0):
    rng = np.random.default_rng(seed)
    return [torch.from_numpy(rng.normal(0, 0.1, int(16000 * s)).astype(np.float32)) for s in seconds]


def padded(batch):
    lengths = torch.tensor([len(w) for w in batch])
    return torch.nn.utils.rnn.pad_sequence(batch, batch_first=True), lengths


def test_english_only_prefix_and_text_encoding(checkpoint):
    tok = load_tokenizer(checkpoint)
    ids = {name: tok.hf.token_to_id(name) for name in ("<|startoftranscript|>", "<|notimestamps|>", "<|endoftext|>")}
    assert tok.kind == "whisper" and not tok.multilingual
    assert tok.prefix_ids == [ids["<|startoftranscript|>"], ids["<|notimestamps|>"]]
    assert tok.eos_id == ids["<|endoftext|>"] and tok.pad_id not in (tok.eos_id, tok.bos_id)
    assert tok.encode("ab") == tok.hf.encode(" ab", add_special_tokens=False).ids  # leading space, as Whisper writes
    assert tok.decode(tok.encode("ab ba") + [tok.eos_id] + tok.encode("zz")) == "ab ba"
    with pytest.raises(TokenizerError, match="English-only"):
        load_tokenizer(checkpoint, language="fr")


def test_multilingual_prefix_needs_a_language_and_saves_it(checkpoint, tmp_path):
    folder = multilingual_copy(checkpoint, tmp_path)
    with pytest.raises(TokenizerError, match="needs a language"):
        load_tokenizer(folder)
    tok = load_tokenizer(folder, language="fr")
    hf = tok.hf
    assert tok.prefix_ids == [hf.token_to_id(t) for t in ("<|startoftranscript|>", "<|fr|>", "<|transcribe|>",
                                                           "<|notimestamps|>")]
    saved = load_tokenizer(tok.save(tmp_path / "saved"))
    assert saved.language == "fr" and saved.prefix_ids == tok.prefix_ids
    assert load_tokenizer(tmp_path / "saved", language="en").prefix_ids[1] == hf.token_to_id("<|en|>")
    with pytest.raises(TokenizerError, match="not one of"):
        tok.with_language("xx")
    english = tok.with_language("en")  # another prefix on the same parsed vocabulary
    assert english.hf is tok.hf and english.prefix_ids[1] == hf.token_to_id("<|en|>") and tok.language == "fr"


def test_loss_covers_the_text_and_eos_only(checkpoint):
    """Teacher forcing = the stock model's forward on prefix + text; the prefix positions are not predicted."""
    tok = load_tokenizer(checkpoint)
    backbone = load_backbone(checkpoint)
    model = build_tuned_model(backbone, "zero_shot", tok.method_options()).eval()
    assert model.vocab_parameter_names == [] and backbone.vocab_size == VOCAB  # no vocabulary resize
    batch_waves, lengths = padded(waves(seconds=(1.0,)))
    text = tok.encode("ab ab") + [tok.eos_id]
    batch = type("B", (), dict(waveforms=batch_waves, wave_lengths=lengths, targets=torch.tensor([text]),
                               task_ids=torch.zeros(1, dtype=torch.long)))
    with torch.no_grad():
        out = model(batch)
        enc = backbone.encode(batch_waves, lengths)[0]
        full = backbone.model(encoder_outputs=(enc,), decoder_input_ids=torch.tensor([tok.prefix_ids + text[:-1]])).logits
    expected = full[:, len(tok.prefix_ids) - 1:]
    torch.testing.assert_close(out.logits, expected, rtol=1e-4, atol=1e-5)
    manual = torch.nn.functional.cross_entropy(expected[0], torch.tensor(text))
    torch.testing.assert_close(out.loss, manual, rtol=1e-5, atol=1e-6)


def test_decoding_never_emits_suppressed_ids(checkpoint):
    tok = load_tokenizer(checkpoint)
    backbone = load_backbone(checkpoint)
    model = build_tuned_model(backbone, "zero_shot", tok.method_options()).eval()
    never = set(model.suppress_ids.tolist())
    assert set(range(tok.eos_id + 1, VOCAB)) <= never and set(backbone.suppress_ids) <= never
    batch_waves, lengths = padded(waves())
    tasks = torch.zeros(3, dtype=torch.long)
    with torch.no_grad():
        enc = model.encode(batch_waves, lengths, tasks)
        first, _ = model.decode_step(enc, model.prefix_ids(tasks), None, tasks)
    assert torch.isinf(first[:, sorted(never | set(backbone.begin_suppress_ids))]).all()
    hyps = greedy_search(model, batch_waves, lengths, tasks, max_len=30, max_repeats=0)
    assert all(token < tok.eos_id and token not in never for hyp in hyps for token in hyp)


def test_window_padding_matches_the_stock_encoder_on_extracted_features(checkpoint):
    """--pad-to-window: the encoder output of transformers' own feature extractor + encoder, bit for bit."""
    from transformers import WhisperFeatureExtractor

    backbone = load_backbone(checkpoint)
    backbone.pad_to_window = True
    window_seconds = backbone.window_samples // 16000
    extractor = WhisperFeatureExtractor(feature_size=80, chunk_length=window_seconds)
    batch = waves()
    features = extractor([w.numpy() for w in batch], sampling_rate=16000, return_tensors="pt").input_features
    with torch.no_grad():
        ours, mask = backbone.encode(*padded(batch))
        stock = backbone.model.model.encoder(features).last_hidden_state
    assert mask.all() and ours.shape == stock.shape
    torch.testing.assert_close(ours, stock, rtol=1e-4, atol=2e-5)


def test_loop_guard_keeps_one_copy():
    assert loop_start([7, 1, 1, 1, 1, 1], max_repeats=4) == 2
    assert loop_start([7, 1, 1, 1, 1], max_repeats=4) is None
    assert loop_start([9, 3, 4, 3, 4, 3, 4, 3, 4, 3, 4], max_repeats=4) == 3
    phrase = list(range(20, 33))  # a long phrase twice is a loop
    assert loop_start([5, *phrase, *phrase], max_repeats=4) == 1 + len(phrase)
    assert loop_start([1, 1, 1, 1, 1, 1], max_repeats=0) is None


@pytest.mark.parametrize("method", TRAINED_METHODS)
def test_every_method_trains_saves_and_reloads_on_a_released_checkpoint(checkpoint, tmp_path, method):
    check_method_round_trip(checkpoint, method, tmp_path)


def test_a_task_artifact_names_the_checkpoint_vocabulary_instead_of_copying_it(checkpoint, tmp_path):
    from speechprompt.decoding.transcriber import Transcriber, load_backbone
    from speechprompt.tuning.artifact_check import ArtifactError

    tok = load_tokenizer(checkpoint)
    model = build_tuned_model(load_backbone(checkpoint), "prompt", {**tok.method_options(), "seed": 3}).eval()
    tok.save(tmp_path / "tok")
    model.save_artifact(tmp_path / "artifact", tmp_path / "tok")
    files = {p.name: p.stat().st_size for p in (tmp_path / "artifact").rglob("*") if p.is_file()}
    assert "tokenizer.json" not in files and sum(files.values()) < 50_000  # settings + the prompt table only

    transcriber = Transcriber(load_backbone(checkpoint), max_len=6, pad_to_window=False)
    transcriber.add_task("t", tmp_path / "artifact")
    new_format = [r.text for r in transcriber.transcribe(waves(), tasks="t")]

    # a backbone folder whose tokenizer.json differs is refused, naming both files
    other = multilingual_copy(checkpoint, tmp_path)
    (other / "tokenizer.json").write_text((other / "tokenizer.json").read_text().replace('"<|en|>"', '"<|xx|>"'))
    with pytest.raises((ArtifactError, TokenizerError), match="differs"):
        Transcriber(load_backbone(other)).add_task("t", tmp_path / "artifact")

    # an artifact written before (with its own copy of the vocabulary) still loads
    old = tmp_path / "old"
    model.save_artifact(old, None)
    tok.save(old / "tokenizer")
    meta = json.loads((old / "task.json").read_text())
    meta["tokenizer"] = "tokenizer"
    (old / "task.json").write_text(json.dumps(meta))
    transcriber = Transcriber(load_backbone(checkpoint), max_len=6, pad_to_window=False)
    assert transcriber.add_task("o", old) == ["o"]
    assert [r.text for r in transcriber.transcribe(waves(), tasks="o")] == new_format
