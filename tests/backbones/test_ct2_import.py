"""CTranslate2 Whisper folders -> transformers backbones: exact logits, special ids, one-line refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from backbones.ct2_writer import convert, ct2_variables, whisper_vocabulary, write_ct2_folder, write_model_bin
from transformers import AutoTokenizer, GenerationConfig, WhisperForConditionalGeneration

from speechprompt.backbones import BackboneError, build_backbone, load_backbone
from speechprompt.backbones.ct2_import import import_ct2
from speechprompt.backbones.ct2_model_bin import CT2FormatError, read_model_bin
from speechprompt.cli import main

VOCAB = 400


def _random_whisper(vocab_size: int = VOCAB, seed: int = 0) -> WhisperForConditionalGeneration:
    """A tiny Whisper whose every weight (layer norms and biases included) is random."""
    torch.manual_seed(seed)
    model = build_backbone("whisper", "tiny", vocab_size=vocab_size).model.eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return model


def _logits(model: WhisperForConditionalGeneration) -> torch.Tensor:
    """(1, 7, V) logits on fixed random log-mels (1, 80, 1000) and decoder ids."""
    generator = torch.Generator().manual_seed(1)
    features = torch.randn(1, model.config.num_mel_bins, 2 * model.config.max_source_positions, generator=generator)
    ids = torch.randint(0, model.config.vocab_size, (1, 7), generator=generator)
    with torch.no_grad():
        return model(input_features=features, decoder_input_ids=ids).logits


@pytest.fixture(scope="module")
def source():
    return _random_whisper()


@pytest.fixture(scope="module")
def imported(source, tmp_path_factory):
    folder = write_ct2_folder(source, tmp_path_factory.mktemp("ct2") / "tiny-ct2")
    out = tmp_path_factory.mktemp("out") / "backbone"
    import_ct2(folder, out)
    return folder, out


def test_float32_import_gives_identical_logits(source, imported):
    _, out = imported
    model = WhisperForConditionalGeneration.from_pretrained(out).eval()
    assert model.config.tie_word_embeddings and model.proj_out.weight is model.model.decoder.embed_tokens.weight
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert torch.equal(_logits(model), _logits(source))


def test_an_untied_output_projection_stays_untied(tmp_path):
    torch.manual_seed(0)
    source = build_backbone("whisper", "tiny", vocab_size=VOCAB, tie_word_embeddings=False).model.eval()
    with torch.no_grad():
        source.proj_out.weight.normal_()
    import_ct2(write_ct2_folder(source, tmp_path / "ct2"), tmp_path / "out")
    model = WhisperForConditionalGeneration.from_pretrained(tmp_path / "out").eval()
    assert not model.config.tie_word_embeddings
    assert torch.equal(model.proj_out.weight, source.proj_out.weight)
    assert torch.equal(_logits(model), _logits(source))


def test_float16_import_equals_the_rounded_original(source, tmp_path):
    folder = write_ct2_folder(source, tmp_path / "ct2", quantization="float16")
    import_ct2(folder, tmp_path / "out")
    rounded = _random_whisper()
    with torch.no_grad():
        for parameter in rounded.parameters():
            parameter.copy_(parameter.half().float())
    model = WhisperForConditionalGeneration.from_pretrained(tmp_path / "out").eval()
    assert torch.equal(_logits(model), _logits(rounded))


def test_int8_import_dequantises_per_output_row(source, tmp_path):
    folder = write_ct2_folder(source, tmp_path / "ct2", quantization="int8")
    stored = read_model_bin(folder / "model.bin").variables
    assert stored["encoder/conv1/weight"].dtype == torch.int8 and "encoder/conv1/weight_scale" in stored
    import_ct2(folder, tmp_path / "out")
    model = WhisperForConditionalGeneration.from_pretrained(tmp_path / "out").eval()
    fc1 = model.model.encoder.layers[0].fc1.weight
    scale = stored["encoder/layer_0/ffn/linear_0/weight_scale"]
    assert torch.equal(fc1, stored["encoder/layer_0/ffn/linear_0/weight"].float() / scale[:, None])
    assert (fc1 - source.model.encoder.layers[0].fc1.weight).abs().max() <= 0.5 / scale.min()
    conv = model.model.encoder.conv1.weight  # (out, mel, 3): one scale per output channel
    assert (conv - source.model.encoder.conv1.weight).abs().max() <= 0.5 / stored["encoder/conv1/weight_scale"].min()
    assert model.proj_out.weight is model.model.decoder.embed_tokens.weight
    reference = _logits(source)
    assert (_logits(model) - reference).abs().max() < 0.05 * reference.abs().max()


def test_backbone_options_tokenizer_and_generation_config(imported):
    folder, out = imported
    vocabulary = whisper_vocabulary(VOCAB)
    backbone = load_backbone(out)
    assert backbone.options == {"pad_id": vocabulary.index("<|startoflm|>"),
                                "bos_id": vocabulary.index("<|startoftranscript|>"),
                                "eos_id": vocabulary.index("<|endoftext|>"), "checkpoint": "tiny-ct2"}
    assert not backbone.options.get("utterance_cmn")
    config = backbone.model.config  # OpenAI's ids, as transformers' hub checkpoints carry them
    assert config.pad_token_id == config.eos_token_id == vocabulary.index("<|endoftext|>")
    assert config.decoder_start_token_id == vocabulary.index("<|startoftranscript|>")
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert len(tokenizer) == VOCAB
    # the timestamps were only in vocabulary.txt: they are added with the vocabulary's ids
    for token in ("<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>", "<|endoftext|>",
                  "<|0.00|>", "<|0.58|>"):
        assert tokenizer.convert_tokens_to_ids(token) == vocabulary.index(token), token
    generation = GenerationConfig.from_pretrained(out)
    ct2_config = json.loads((folder / "config.json").read_text())
    assert generation.suppress_tokens == ct2_config["suppress_ids"]
    assert generation.begin_suppress_tokens == ct2_config["suppress_ids_begin"]
    assert generation.no_timestamps_token_id == vocabulary.index("<|notimestamps|>")
    assert generation.alignment_heads == [[1, 0]] and generation.is_multilingual is False


def test_multilingual_vocabulary_gets_language_and_task_ids(tmp_path):
    model = _random_whisper(vocab_size=51865)
    vocabulary = whisper_vocabulary(51865, timestamps=1501)
    folder = write_ct2_folder(model, tmp_path / "ct2", vocabulary=vocabulary, vocabulary_format="json")
    import_ct2(folder, tmp_path / "out", checkpoint="whisper-multi")
    generation = GenerationConfig.from_pretrained(tmp_path / "out")
    assert generation.is_multilingual is True
    assert generation.lang_to_id == {"<|en|>": vocabulary.index("<|en|>"), "<|fr|>": vocabulary.index("<|fr|>")}
    assert generation.task_to_id == {"transcribe": vocabulary.index("<|transcribe|>"),
                                     "translate": vocabulary.index("<|translate|>")}


# ---- refusals: one line, naming the file and what is wrong --------------------------------
def _refusal(folder: Path, out: Path, match: str) -> str:
    with pytest.raises(BackboneError, match=match) as caught:
        import_ct2(folder, out)
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.fixture
def ct2_copy(imported, tmp_path):
    folder = Path(shutil.copytree(imported[0], tmp_path / "ct2"))
    return folder, read_model_bin(folder / "model.bin")


def test_refuses_another_spec_or_binary_version(ct2_copy, tmp_path):
    folder, parsed = ct2_copy
    plain = {n: t for n, t in parsed.variables.items() if n not in parsed.aliases}
    write_model_bin(folder / "model.bin", plain, parsed.aliases, spec="TransformerSpec")
    assert str(folder / "model.bin") in _refusal(folder, tmp_path / "a", "spec 'TransformerSpec'")
    write_model_bin(folder / "model.bin", plain, parsed.aliases, version=5)
    with pytest.raises(CT2FormatError, match="binary version 5"):
        import_ct2(folder, tmp_path / "b")


def test_refuses_a_folder_without_tokenizer(ct2_copy, tmp_path):
    folder, _ = ct2_copy
    (folder / "tokenizer.json").unlink()
    assert "tokenizer.json: missing" in _refusal(folder, tmp_path / "out", "tokenizer.json")


def test_refuses_a_truncated_model_bin(ct2_copy, tmp_path):
    folder, _ = ct2_copy
    data = (folder / "model.bin").read_bytes()
    (folder / "model.bin").write_bytes(data[: len(data) // 2])
    message = _refusal(folder, tmp_path / "out", "truncated")
    assert str(folder / "model.bin") in message and "file ends at" in message
    assert not (tmp_path / "out").exists()


def test_refuses_missing_and_unknown_variables(ct2_copy, tmp_path):
    folder, parsed = ct2_copy
    plain = {n: t for n, t in parsed.variables.items() if n not in parsed.aliases}
    missing = dict(plain)
    del missing["decoder/layer_1/ffn/linear_1/bias"]
    write_model_bin(folder / "model.bin", missing, parsed.aliases)
    _refusal(folder, tmp_path / "a", "missing variable decoder/layer_1/ffn/linear_1/bias")
    extra = dict(plain, **{"decoder/layer_0/adapter/weight": torch.zeros(2, 2)})
    write_model_bin(folder / "model.bin", extra, parsed.aliases)
    _refusal(folder, tmp_path / "b", r"unknown variables \['decoder/layer_0/adapter/weight'\]")


def test_refuses_a_non_gelu_decoder_and_a_wrong_vocabulary(ct2_copy, tmp_path):
    folder, parsed = ct2_copy
    plain = {n: t for n, t in parsed.variables.items() if n not in parsed.aliases}
    write_model_bin(folder / "model.bin", dict(plain, **{"decoder/activation": torch.tensor(0, dtype=torch.int8)}),
                    parsed.aliases)
    _refusal(folder, tmp_path / "a", "decoder/activation = 0")
    write_model_bin(folder / "model.bin", plain, parsed.aliases)
    (folder / "vocabulary.txt").write_text("\n".join(whisper_vocabulary(VOCAB)[:-5]) + "\n")
    _refusal(folder, tmp_path / "b", "vocabulary file has 395 tokens")


def test_refuses_a_non_empty_output_folder(imported):
    folder, out = imported
    _refusal(folder, out, "not empty")


def test_float_variables_stay_float_without_scales(source, tmp_path):
    variables = convert(ct2_variables(source), "float32")
    variables["encoder/conv1/weight"] = variables["encoder/conv1/weight"].to(torch.int8)  # no weight_scale
    folder = write_ct2_folder(source, tmp_path / "ct2")
    write_model_bin(folder / "model.bin", variables, {"decoder/projection/weight": "decoder/embeddings/weight"})
    _refusal(folder, tmp_path / "out", "encoder/conv1/weight is torch.int8 without a weight_scale")


# ---- the command line ----------------------------------------------------------------------
def test_cli_import_and_error(imported, tmp_path, capsys):
    folder, _ = imported
    assert main(["backbone", "import-ct2", str(folder), str(tmp_path / "out"), "--checkpoint", "mine"]) == 0
    assert load_backbone(tmp_path / "out").options["checkpoint"] == "mine"
    assert main(["backbone", "import-ct2", str(tmp_path / "nowhere"), str(tmp_path / "out2")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("speechprompt backbone: ") and "model.bin: missing" in err and "Traceback" not in err
