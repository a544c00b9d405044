"""Write a transformers Whisper as a CTranslate2 folder, the way CTranslate2's converter lays it out.

Only for tests: it lets the importer be checked on tiny random models, with no download.
Variables are written sorted by name with the scalar flags CTranslate2 writes for Whisper; `int8`
quantises every `*/weight` (linear, convolution, embedding) per output row exactly like
`ctranslate2.specs.model_spec` (`scale = 127 / max|row|`, `round(weight * scale)`), other floats stay
float32; the tied output projection is an alias of the token embedding.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import torch
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
from transformers import WhisperForConditionalGeneration

from speechprompt.backbones.ct2_model_bin import DTYPE_CODES

PER_LANGUAGE = ("<|en|>", "<|fr|>")
NON_LANGUAGE_SPECIALS = ("<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nospeech|>",
                         "<|notimestamps|>")


def _string(text: str) -> bytes:
    raw = text.encode("utf-8") + b"\0"
    return struct.pack("<H", len(raw)) + raw


def write_model_bin(path: Path, variables: dict[str, torch.Tensor], aliases: dict[str, str] | None = None,
                    spec: str = "WhisperSpec", revision: int = 3, version: int = 6) -> None:
    """Serialise `variables` (name -> tensor) in CTranslate2's binary layout."""
    out = [struct.pack("<I", version), _string(spec), struct.pack("<II", revision, len(variables))]
    for name in sorted(variables):
        tensor = variables[name].contiguous()
        out += [_string(name), struct.pack("<B", tensor.dim()), struct.pack(f"<{tensor.dim()}I", *tensor.shape),
                struct.pack("<B", DTYPE_CODES[tensor.dtype])]
        data = tensor.reshape(-1).view(torch.uint8).numpy().tobytes()
        out += [struct.pack("<I", len(data)), data]
    aliases = aliases or {}
    out.append(struct.pack("<I", len(aliases)))
    for alias, target in aliases.items():
        out += [_string(alias), _string(target)]
    path.write_bytes(b"".join(out))


def ct2_variables(model: WhisperForConditionalGeneration) -> dict[str, torch.Tensor]:
    """CTranslate2 Whisper variable name -> float32 tensor (or integer scalar), no projection."""
    state = {name: t.detach().float().clone() for name, t in model.state_dict().items()}
    config = model.config
    out: dict[str, torch.Tensor] = {
        "decoder/activation": torch.tensor(3, dtype=torch.int8), "decoder/alibi": torch.tensor(0, dtype=torch.int8),
        "decoder/alignment_heads": torch.tensor(1, dtype=torch.int16),
        "decoder/alignment_layer": torch.tensor(-1, dtype=torch.int16),
        "decoder/alibi_use_positive_positions": torch.tensor(0, dtype=torch.int8),
        "decoder/scale_alibi": torch.tensor(0, dtype=torch.int8),
        "decoder/pre_norm": torch.tensor(1, dtype=torch.int8),
        "decoder/scale_embeddings": torch.tensor(0, dtype=torch.int8),
        "decoder/start_from_zero_embedding": torch.tensor(0, dtype=torch.int8),
        "encoder/num_heads": torch.tensor(config.encoder_attention_heads, dtype=torch.int16),
        "decoder/num_heads": torch.tensor(config.decoder_attention_heads, dtype=torch.int16),
        "decoder/embeddings/weight": state["model.decoder.embed_tokens.weight"],
    }

    def linear(ct2: str, hf: str) -> None:
        out[f"{ct2}/weight"], out[f"{ct2}/bias"] = state[f"{hf}.weight"], state[f"{hf}.bias"]

    def norm(ct2: str, hf: str) -> None:
        out[f"{ct2}/gamma"], out[f"{ct2}/beta"] = state[f"{hf}.weight"], state[f"{hf}.bias"]

    def fused(ct2: str, hf: str, parts: tuple[str, ...]) -> None:
        out[f"{ct2}/weight"] = torch.cat([state[f"{hf}.{p}.weight"] for p in parts])
        biases = [state.get(f"{hf}.{p}.bias", torch.zeros(config.d_model)) for p in parts]  # key: zero bias
        out[f"{ct2}/bias"] = torch.cat(biases)

    for name in ("conv1", "conv2"):
        linear(f"encoder/{name}", f"model.encoder.{name}")
    for stack, count in (("encoder", config.encoder_layers), ("decoder", config.decoder_layers)):
        out[f"{stack}/position_encodings/encodings"] = state[f"model.{stack}.embed_positions.weight"]
        norm(f"{stack}/layer_norm", f"model.{stack}.layer_norm")
        for i in range(count):
            ct2, hf = f"{stack}/layer_{i}", f"model.{stack}.layers.{i}"
            fused(f"{ct2}/self_attention/linear_0", f"{hf}.self_attn", ("q_proj", "k_proj", "v_proj"))
            linear(f"{ct2}/self_attention/linear_1", f"{hf}.self_attn.out_proj")
            norm(f"{ct2}/self_attention/layer_norm", f"{hf}.self_attn_layer_norm")
            if stack == "decoder":
                linear(f"{ct2}/attention/linear_0", f"{hf}.encoder_attn.q_proj")
                fused(f"{ct2}/attention/linear_1", f"{hf}.encoder_attn", ("k_proj", "v_proj"))
                linear(f"{ct2}/attention/linear_2", f"{hf}.encoder_attn.out_proj")
                norm(f"{ct2}/attention/layer_norm", f"{hf}.encoder_attn_layer_norm")
            linear(f"{ct2}/ffn/linear_0", f"{hf}.fc1")
            linear(f"{ct2}/ffn/linear_1", f"{hf}.fc2")
            norm(f"{ct2}/ffn/layer_norm", f"{hf}.final_layer_norm")
    return out


def quantise_int8(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """float (out, ...) -> int8 values and float32 (out,) scales, as CTranslate2's converter does."""
    rows = weight.reshape(weight.shape[0], -1).float()
    amax = rows.abs().amax(dim=1)
    amax[amax == 0] = 127.0
    scale = torch.full_like(amax, 127.0) / amax  # a true division: `127.0 / amax` multiplies by a reciprocal
    return torch.round(rows * scale[:, None]).to(torch.int8).reshape(weight.shape), scale


def convert(variables: dict[str, torch.Tensor], quantization: str) -> dict[str, torch.Tensor]:
    """float32 / float16 / int8 (weights int8, other floats float32) versions of `variables`."""
    out = {}
    for name, tensor in variables.items():
        if not tensor.is_floating_point():
            out[name] = tensor
        elif quantization == "int8" and name.endswith("/weight"):
            out[name], out[f"{name}_scale"] = quantise_int8(tensor)
        else:
            out[name] = tensor.to(torch.float16 if quantization == "float16" else torch.float32)
    return out


def whisper_vocabulary(vocab_size: int, languages: tuple[str, ...] = PER_LANGUAGE, timestamps: int = 30) -> list[str]:
    """Token per id in Whisper's layout: byte-level tokens, fillers, <|endoftext|>, <|startoftranscript|>,
    languages, the other specials, then `timestamps` timestamp tokens."""
    byte_tokens = [_BYTE_CHARS[b] for b in range(256)]
    specials = ["<|endoftext|>", "<|startoftranscript|>", *languages, *NON_LANGUAGE_SPECIALS]
    fillers = vocab_size - 256 - len(specials) - timestamps
    assert fillers >= 0, "vocab_size too small for Whisper's special tokens"
    return [*byte_tokens, *(f"Ġw{i}" for i in range(fillers)), *specials,
            *(f"<|{i * 0.02:.2f}|>" for i in range(timestamps))]


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table (what byte-level BPE vocabularies are written in)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


_BYTE_CHARS = _bytes_to_unicode()


def write_tokenizer(folder: Path, vocabulary: list[str], with_timestamps: bool = False) -> None:
    """A byte-level BPE tokenizer.json for `vocabulary` (specials as added tokens); like tiny.en's
    file it stops before the timestamps unless `with_timestamps`."""
    first_special = vocabulary.index("<|endoftext|>")
    tokenizer = Tokenizer(models.BPE(vocab={token: i for i, token in enumerate(vocabulary[:first_special])},
                                     merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    added = [token for token in vocabulary[first_special:] if with_timestamps or not token[2:3].isdigit()]
    tokenizer.add_tokens([AddedToken(token, special=not token[2:3].isdigit(), normalized=False) for token in added])
    tokenizer.save(str(folder / "tokenizer.json"))


def write_ct2_folder(model: WhisperForConditionalGeneration, folder: Path, quantization: str = "float32",
                     vocabulary: list[str] | None = None, vocabulary_format: str = "txt") -> Path:
    """`folder`/{model.bin, config.json, tokenizer.json, vocabulary.txt|json} for `model` (an untied
    output projection is written as a variable of its own, a tied one as an alias)."""
    folder.mkdir(parents=True, exist_ok=True)
    vocabulary = vocabulary or whisper_vocabulary(model.config.vocab_size)
    assert len(vocabulary) == model.config.vocab_size
    variables, aliases = ct2_variables(model), {"decoder/projection/weight": "decoder/embeddings/weight"}
    if not torch.equal(model.proj_out.weight, model.model.decoder.embed_tokens.weight):
        variables["decoder/projection/weight"] = model.proj_out.weight.detach().float().clone()
        aliases = {}
    write_model_bin(folder / "model.bin", convert(variables, quantization), aliases)
    languages = [i for i, token in enumerate(vocabulary)
                 if token.startswith("<|") and len(token) <= 7 and token[2:-2].isalpha()]
    config = {"alignment_heads": [[1, 0]], "lang_ids": languages,
              "suppress_ids": [1, 2, 3], "suppress_ids_begin": [220 % len(vocabulary), vocabulary.index("<|endoftext|>")]}
    (folder / "config.json").write_text(json.dumps(config))
    write_tokenizer(folder, vocabulary)
    if vocabulary_format == "json":
        (folder / "vocabulary.json").write_text(json.dumps(vocabulary, ensure_ascii=False))
    else:
        (folder / "vocabulary.txt").write_text("\n".join(vocabulary) + "\n", encoding="utf-8")
    return folder


def released_stand_in(root: Path, vocab_size: int = 400) -> Path:
    """A folder like a fetched released checkpoint: a tiny random Whisper written as CTranslate2 and imported."""
    import torch

    from speechprompt.backbones import build_backbone
    from speechprompt.backbones.ct2_import import import_ct2

    torch.manual_seed(0)
    model = build_backbone("whisper", "tiny", vocab_size=vocab_size).model
    write_ct2_folder(model, root / "ct2", vocabulary=whisper_vocabulary(vocab_size))
    import_ct2(root / "ct2", root / "imported", checkpoint="tiny-test")
    return root / "imported"
