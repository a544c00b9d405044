"""Import a CTranslate2 (faster-whisper) Whisper folder into a transformers Whisper backbone folder.

```python
from speechprompt.backbones.ct2_import import import_ct2
backbone = import_ct2("faster-whisper-tiny.en/", "exp/whisper-tiny.en", checkpoint="whisper-tiny.en")
```

The source folder holds `model.bin` (see `ct2_model_bin`), `config.json` (suppress ids, language
ids, alignment heads), `tokenizer.json` and a vocabulary file (`vocabulary.txt` or `.json`). The
output folder is what `load_backbone` and transformers read: `config.json` + float32 safetensors
(`WhisperForConditionalGeneration.save_pretrained`), `generation_config.json` with Whisper's
special ids, the checkpoint's tokenizer (`AutoTokenizer.from_pretrained(out)` works) and
`speechprompt_backbone.json`.

Conversion facts:
- the geometry (width, layers, heads, FFN width, mel bins, positions, vocabulary) is read from the
  tensors and the `num_heads` scalars, never from a table of known sizes;
- float16 / bfloat16 weights are widened to float32, which is exact;
- int8 folders (`*/weight_scale` beside an int8 `*/weight`) are dequantised: CTranslate2 stores
  `round(weight * scale)` with `scale = 127 / max|row|` per output row, so `weight = int8 / scale`
  (int16 folders use one scale for the whole matrix: the same division). ctranslate2 4.8 running an
  int8 file with compute_type float32 (it dequantises at load) gives the encoder output of the
  imported model to 3e-6. The int8 rounding is lost for good: an int8 import is close to, never
  equal to, the float checkpoint;
- the key projections of Whisper have no bias; CTranslate2 stacks a zero bias for them, which is
  dropped (a key bias adds the same amount to every attention score of a query: softmax ignores it);
- layer norms use epsilon 1e-5 in OpenAI's Whisper, CTranslate2 and transformers alike;
- the output projection is tied to the token embedding when `decoder/projection/weight` is an alias
  of (or equal to) `decoder/embeddings/weight`.
transformers' `config.json` keeps OpenAI's special ids (pad = eos), as the hub checkpoints do; the
toolkit's own options pad with `<|startoflm|>`, a token that is never a target, so EOS stays in the loss.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

import torch
from transformers import GenerationConfig, WhisperConfig, WhisperForConditionalGeneration

from speechprompt.backbones.ct2_model_bin import CT2ModelBin, read_model_bin
from speechprompt.backbones.errors import BackboneError
from speechprompt.backbones.whisper import WhisperSeq2Seq

SPEC_NAME, SPEC_REVISION = "WhisperSpec", 3
GELU = 3  # CTranslate2's ActivationType::GELU (erf form), transformers' "gelu"
# scalar flags -> the only value this importer maps onto transformers' Whisper
REQUIRED_FLAGS = {"decoder/activation": GELU, "decoder/pre_norm": 1, "decoder/alibi": 0,
                  "decoder/start_from_zero_embedding": 0}
# scalars that carry nothing transformers needs (alignment heads also come from config.json)
IGNORED_FLAGS = {"decoder/alignment_heads", "decoder/alignment_layer", "decoder/alibi_use_positive_positions",
                 "decoder/scale_alibi"}


class CT2ImportError(BackboneError):
    """A CTranslate2 folder this importer cannot turn into a transformers Whisper."""


def import_ct2(source: str | Path, out: str | Path, checkpoint: str | None = None) -> WhisperSeq2Seq:
    """Convert the CTranslate2 Whisper folder `source` into the backbone folder `out` (must be new or
    empty) and return the backbone. `checkpoint` names it in `speechprompt_backbone.json`
    (default: the source folder's name)."""
    source, out = Path(source), Path(out)
    for name in ("model.bin", "config.json", "tokenizer.json"):
        if not (source / name).is_file():
            raise CT2ImportError(f"{source / name}: missing; a CTranslate2 Whisper folder needs model.bin, "
                                 "config.json and tokenizer.json")
    if out.exists() and any(out.iterdir()):
        raise CT2ImportError(f"{out}: exists and is not empty; remove it or choose another output folder")
    ct2_config = json.loads((source / "config.json").read_text())
    model_bin = read_model_bin(source / "model.bin")
    embedding = model_bin.variables.get("decoder/embeddings/weight")
    if embedding is None or embedding.dim() != 2:
        raise CT2ImportError(f"{source / 'model.bin'}: no 2-D decoder/embeddings/weight; not a Whisper model")
    tokenizer = whisper_tokenizer(source, embedding.shape[0])
    special = _special_ids(tokenizer, source)
    model = whisper_from_model_bin(model_bin, source / "model.bin", special["<|endoftext|>"],
                                   special["<|startoftranscript|>"])
    model.generation_config = whisper_generation_config(model.config, ct2_config, tokenizer, special)
    backbone = WhisperSeq2Seq(model, {"pad_id": special["<|startoflm|>"], "bos_id": special["<|startoftranscript|>"],
                                      "eos_id": special["<|endoftext|>"],
                                      "checkpoint": checkpoint or source.name})
    backbone.save_pretrained(out)
    tokenizer.save_pretrained(str(out))
    return backbone


# ---- weights ------------------------------------------------------------------------------
def whisper_from_model_bin(model_bin: CT2ModelBin, path: Path, eos: int, start: int
                           ) -> WhisperForConditionalGeneration:
    """A float32 `WhisperForConditionalGeneration` holding the weights of a parsed WhisperSpec file;
    `eos` / `start` are the ids of <|endoftext|> / <|startoftranscript|>."""
    if model_bin.spec != SPEC_NAME or model_bin.revision != SPEC_REVISION:
        raise CT2ImportError(f"{path}: spec {model_bin.spec!r} revision {model_bin.revision}, expected "
                             f"{SPEC_NAME!r} revision {SPEC_REVISION}; only CTranslate2 Whisper models import")
    variables = _dequantised(model_bin, path)
    used: set[str] = set()

    def take(name: str) -> torch.Tensor:
        if name not in variables:
            raise CT2ImportError(f"{path}: missing variable {name}; the file is incomplete or not a Whisper model")
        used.add(name)
        return variables[name]

    def scalar(name: str) -> int:
        return int(take(name).reshape(()).item())

    for name, value in REQUIRED_FLAGS.items():
        if scalar(name) != value:
            raise CT2ImportError(f"{path}: {name} = {scalar(name)}, but transformers' Whisper needs {value}")
    used.update(IGNORED_FLAGS & variables.keys())
    config = _whisper_config(take, scalar, variables, path, eos, start)
    state = _state_dict(take, config)
    untied = variables.get("decoder/projection/weight")
    used.update({"decoder/projection/weight", "decoder/projection/weight_scale"} & variables.keys())
    config.tie_word_embeddings = untied is None or torch.equal(untied.float(), state["model.decoder.embed_tokens.weight"])
    if not config.tie_word_embeddings:
        state["proj_out.weight"] = untied.float()
    unknown = sorted(set(variables) - used)
    if unknown:
        more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
        raise CT2ImportError(f"{path}: unknown variables {unknown[:3]}{more}; not a Whisper layout this importer knows")
    model = WhisperForConditionalGeneration(config)
    if config.tie_word_embeddings:
        state["proj_out.weight"] = state["model.decoder.embed_tokens.weight"]
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        detail = " ".join(str(err).split())[:300]
        raise CT2ImportError(f"{path}: weights do not fit the geometry read from the file: {detail}") from err
    return model.eval()


def _dequantised(model_bin: CT2ModelBin, path: Path) -> dict[str, torch.Tensor]:
    """name -> float32 tensor (integer scalars kept as they are); `X/weight_scale` folded into `X/weight`.

    Aliases are resolved after dequantising, so an alias of a quantised weight (the tied output
    projection) gets its target's float weight."""
    variables = {name: t for name, t in model_bin.variables.items() if name not in model_bin.aliases}
    for name in [n for n in variables if n.endswith("/weight_scale")]:
        scale = variables.pop(name).float()
        weight_name = name[: -len("_scale")]
        weight = variables.get(weight_name)
        if weight is None or weight.dtype not in (torch.int8, torch.int16):
            raise CT2ImportError(f"{path}: {name} has no int8/int16 {weight_name} beside it")
        if scale.dim() == 1:  # int8: one scale per output row (convolutions: per output channel)
            scale = scale.reshape(-1, *[1] * (weight.dim() - 1))
        variables[weight_name] = weight.float() / scale
    for name, tensor in variables.items():
        if tensor.dim() > 0:
            if not tensor.is_floating_point():
                raise CT2ImportError(f"{path}: {name} is {tensor.dtype} without a weight_scale; "
                                     "cannot dequantise it")
            variables[name] = tensor.float()
    for alias, target in model_bin.aliases.items():
        if target in variables:  # an alias of a scale was folded with it
            variables[alias] = variables[target]
    return variables


def _layer_count(variables: dict[str, torch.Tensor], stack: str) -> int:
    pattern = re.compile(rf"{stack}/layer_(\d+)/")
    indices = {int(m.group(1)) for name in variables if (m := pattern.match(name))}
    if indices != set(range(len(indices))):
        raise CT2ImportError(f"{stack} layers {sorted(indices)} are not numbered 0..N-1")
    return len(indices)


def _whisper_config(take, scalar, variables, path: Path, eos: int, start: int) -> WhisperConfig:
    conv1 = variables.get("encoder/conv1/weight")
    embedding = variables.get("decoder/embeddings/weight")
    encoder_positions = variables.get("encoder/position_encodings/encodings")
    decoder_positions = variables.get("decoder/position_encodings/encodings")
    ffn = {stack: variables.get(f"{stack}/layer_0/ffn/linear_0/weight") for stack in ("encoder", "decoder")}
    for name, tensor in [("encoder/conv1/weight", conv1), ("decoder/embeddings/weight", embedding),
                         ("encoder/position_encodings/encodings", encoder_positions),
                         ("decoder/position_encodings/encodings", decoder_positions),
                         ("encoder/layer_0/ffn/linear_0/weight", ffn["encoder"]),
                         ("decoder/layer_0/ffn/linear_0/weight", ffn["decoder"])]:
        if tensor is None:
            raise CT2ImportError(f"{path}: missing variable {name}; the file is incomplete or not a Whisper model")
    d_model = conv1.shape[0]
    return WhisperConfig(
        vocab_size=embedding.shape[0], num_mel_bins=conv1.shape[1], d_model=d_model,
        encoder_layers=_layer_count(variables, "encoder"), decoder_layers=_layer_count(variables, "decoder"),
        encoder_attention_heads=scalar("encoder/num_heads"), decoder_attention_heads=scalar("decoder/num_heads"),
        encoder_ffn_dim=ffn["encoder"].shape[0], decoder_ffn_dim=ffn["decoder"].shape[0],
        max_source_positions=encoder_positions.shape[0], max_target_positions=decoder_positions.shape[0],
        scale_embedding=bool(scalar("decoder/scale_embeddings")), activation_function="gelu",
        dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
        # OpenAI's special ids (pad = bos = eos), as transformers' hub checkpoints carry them; the
        # suppress lists live in the generation config only (transformers warns when both carry them)
        pad_token_id=eos, bos_token_id=eos, eos_token_id=eos, decoder_start_token_id=start,
        suppress_tokens=None, begin_suppress_tokens=None)


def _state_dict(take, config: WhisperConfig) -> dict[str, torch.Tensor]:
    """transformers parameter name -> tensor, for every weight except `proj_out`."""
    state: dict[str, torch.Tensor] = {}

    def linear(ct2: str, hf: str, bias: bool = True) -> None:
        state[f"{hf}.weight"] = take(f"{ct2}/weight")
        if bias:
            state[f"{hf}.bias"] = take(f"{ct2}/bias")

    def norm(ct2: str, hf: str) -> None:
        state[f"{hf}.weight"], state[f"{hf}.bias"] = take(f"{ct2}/gamma"), take(f"{ct2}/beta")

    def stacked(ct2: str, hf: str, parts: tuple[str, ...]) -> None:
        """Split a fused (len(parts)*D, D) projection; the key's (zero) bias has no transformers slot."""
        weights, biases = take(f"{ct2}/weight").chunk(len(parts)), take(f"{ct2}/bias").chunk(len(parts))
        for part, weight, bias in zip(parts, weights, biases, strict=True):
            state[f"{hf}.{part}.weight"] = weight.contiguous()
            if part != "k_proj":
                state[f"{hf}.{part}.bias"] = bias.contiguous()

    for name in ("conv1", "conv2"):
        linear(f"encoder/{name}", f"model.encoder.{name}")
    state["model.encoder.embed_positions.weight"] = take("encoder/position_encodings/encodings")
    state["model.decoder.embed_positions.weight"] = take("decoder/position_encodings/encodings")
    state["model.decoder.embed_tokens.weight"] = take("decoder/embeddings/weight")
    for stack, count in (("encoder", config.encoder_layers), ("decoder", config.decoder_layers)):
        norm(f"{stack}/layer_norm", f"model.{stack}.layer_norm")
        for i in range(count):
            ct2, hf = f"{stack}/layer_{i}", f"model.{stack}.layers.{i}"
            stacked(f"{ct2}/self_attention/linear_0", f"{hf}.self_attn", ("q_proj", "k_proj", "v_proj"))
            linear(f"{ct2}/self_attention/linear_1", f"{hf}.self_attn.out_proj")
            norm(f"{ct2}/self_attention/layer_norm", f"{hf}.self_attn_layer_norm")
            if stack == "decoder":
                linear(f"{ct2}/attention/linear_0", f"{hf}.encoder_attn.q_proj")
                stacked(f"{ct2}/attention/linear_1", f"{hf}.encoder_attn", ("k_proj", "v_proj"))
                linear(f"{ct2}/attention/linear_2", f"{hf}.encoder_attn.out_proj")
                norm(f"{ct2}/attention/layer_norm", f"{hf}.encoder_attn_layer_norm")
            linear(f"{ct2}/ffn/linear_0", f"{hf}.fc1")
            linear(f"{ct2}/ffn/linear_1", f"{hf}.fc2")
            norm(f"{ct2}/ffn/layer_norm", f"{hf}.final_layer_norm")
    return state


# ---- tokenizer and special ids ------------------------------------------------------------
def _read_vocabulary(source: Path) -> list[str] | None:
    """The CTranslate2 vocabulary (token per id), from vocabulary.json or vocabulary.txt, if any."""
    if (source / "vocabulary.json").is_file():
        return json.loads((source / "vocabulary.json").read_text(encoding="utf-8"))
    if (source / "vocabulary.txt").is_file():
        lines = (source / "vocabulary.txt").read_text(encoding="utf-8").split("\n")
        return lines[:-1] if lines and lines[-1] == "" else lines
    return None


def whisper_tokenizer(source: Path, vocab_size: int):
    """A transformers WhisperTokenizerFast from `source/tokenizer.json`, completed with the tokens of the
    CTranslate2 vocabulary it lacks (English-only tokenizer.json files stop before the timestamps)."""
    from transformers import WhisperTokenizerFast

    data = json.loads((source / "tokenizer.json").read_text(encoding="utf-8"))
    known = {token: index for token, index in data["model"]["vocab"].items()}
    known.update({added["content"]: added["id"] for added in data.get("added_tokens", [])})
    vocabulary = _read_vocabulary(source)
    if vocabulary is not None:
        if len(vocabulary) != vocab_size:
            raise CT2ImportError(f"{source}: the vocabulary file has {len(vocabulary)} tokens but the token "
                                 f"embedding has {vocab_size} rows")
        for index, token in enumerate(vocabulary):
            if token in known and known[token] != index and token != "":
                raise CT2ImportError(f"{source / 'tokenizer.json'}: token {token!r} has id {known[token]}, "
                                     f"the vocabulary file gives {index}")
            if token not in known and token != "":
                special = token.startswith("<|") and token.endswith("|>") and not _is_timestamp(token)
                data.setdefault("added_tokens", []).append(
                    {"id": index, "content": token, "single_word": False, "lstrip": False, "rstrip": False,
                     "normalized": not special, "special": special})
                known[token] = index
    if max(known.values()) + 1 != vocab_size:
        raise CT2ImportError(f"{source / 'tokenizer.json'}: ids reach {max(known.values())} but the token "
                             f"embedding has {vocab_size} rows; add the vocabulary file of the checkpoint")
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "tokenizer.json"
        path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        return WhisperTokenizerFast(tokenizer_file=str(path), unk_token="<|endoftext|>", bos_token="<|endoftext|>",
                                    eos_token="<|endoftext|>", pad_token="<|endoftext|>")


def _is_timestamp(token: str) -> bool:
    return re.fullmatch(r"<\|\d+\.\d\d\|>", token) is not None


SPECIAL_TOKENS = ("<|endoftext|>", "<|startoftranscript|>", "<|translate|>", "<|transcribe|>", "<|startoflm|>",
                  "<|startofprev|>", "<|notimestamps|>", "<|0.00|>")


def _special_ids(tokenizer, source: Path) -> dict[str, int]:
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}
    eos = ids["<|endoftext|>"]
    missing = [token for token, index in ids.items() if index is None or (index == eos and token != "<|endoftext|>")]
    if missing:
        raise CT2ImportError(f"{source / 'tokenizer.json'}: lacks the Whisper special tokens {missing}")
    return ids


def whisper_generation_config(config: WhisperConfig, ct2_config: dict[str, Any], tokenizer,
                              special: dict[str, int]) -> GenerationConfig:
    """Whisper's generation settings: special ids, suppressed tokens, languages, alignment heads."""
    eos, sot = special["<|endoftext|>"], special["<|startoftranscript|>"]
    # Whisper's multilingual vocabulary has one more token (<|yue|> etc. come later), as CTranslate2 decides it
    multilingual = config.vocab_size >= 51865
    suppress = list(ct2_config.get("suppress_ids", []))
    begin_suppress = list(ct2_config.get("suppress_ids_begin", []))
    generation = GenerationConfig(
        decoder_start_token_id=sot, bos_token_id=eos, eos_token_id=eos, pad_token_id=eos,
        no_timestamps_token_id=special["<|notimestamps|>"], prev_sot_token_id=special["<|startofprev|>"],
        suppress_tokens=suppress, begin_suppress_tokens=begin_suppress, max_length=config.max_target_positions,
        alignment_heads=[list(head) for head in ct2_config.get("alignment_heads", [])],
        is_multilingual=multilingual, max_initial_timestamp_index=50, return_timestamps=False)
    if multilingual:
        tokens = tokenizer.convert_ids_to_tokens(list(ct2_config.get("lang_ids", [])))
        generation.lang_to_id = dict(zip(tokens, ct2_config.get("lang_ids", []), strict=True))
        generation.task_to_id = {"transcribe": special["<|transcribe|>"], "translate": special["<|translate|>"]}
    return generation
