"""Convert a fairseq Wav2Seq checkpoint (HuBERT/wav2vec2 encoder + transformer decoder) into `Wav2Vec2Seq2Seq`.

Wav2Seq (asappresearch/wav2seq, model `wav2vec_seq2seq_v2`) stores a fairseq `HubertModel` or
`Wav2Vec2Model` under `encoder.w2v_model.`, an optional encoder->decoder projection under
`encoder.proj`, and a post-LN fairseq `TransformerDecoder` under `decoder.`. The converted model is a
transformers `SpeechEncoderDecoderModel` (`HubertModel`/`Wav2Vec2Model` + `BartForCausalLM`).

Key mapping (`{i}` = layer index; left: fairseq, right: transformers `SpeechEncoderDecoderModel`):

| fairseq (Wav2Seq)                                            | transformers                                                  |
|--------------------------------------------------------------|---------------------------------------------------------------|
| encoder.w2v_model.feature_extractor.conv_layers.{i}.0.weight | encoder.feature_extractor.conv_layers.{i}.conv.weight (.bias) |
| encoder.w2v_model.feature_extractor.conv_layers.0.2.*        | encoder.feature_extractor.conv_layers.0.layer_norm.* (group)  |
| encoder.w2v_model.feature_extractor.conv_layers.{i}.2.1.*    | encoder.feature_extractor.conv_layers.{i}.layer_norm.* (layer)|
| encoder.w2v_model.layer_norm.*                               | encoder.feature_projection.layer_norm.*                       |
| encoder.w2v_model.post_extract_proj.*                        | encoder.feature_projection.projection.*                       |
| encoder.w2v_model.encoder.pos_conv.0.weight_g (or            | encoder.encoder.pos_conv_embed.conv.parametrizations.weight.  |
|   .parametrizations.weight.original0)                        |   original0 (transformers' weight-norm parametrization)       |
| encoder.w2v_model.encoder.pos_conv.0.weight_v (or original1) | encoder.encoder.pos_conv_embed.conv.parametrizations.weight.original1 |
| encoder.w2v_model.encoder.pos_conv.0.bias                    | encoder.encoder.pos_conv_embed.conv.bias                      |
| encoder.w2v_model.encoder.layer_norm.*                       | encoder.encoder.layer_norm.*                                  |
| encoder.w2v_model.encoder.layers.{i}.self_attn.{q,k,v,out}_proj.* | encoder.encoder.layers.{i}.attention.{q,k,v,out}_proj.*  |
| encoder.w2v_model.encoder.layers.{i}.self_attn_layer_norm.*  | encoder.encoder.layers.{i}.layer_norm.*                       |
| encoder.w2v_model.encoder.layers.{i}.fc1.*                   | encoder.encoder.layers.{i}.feed_forward.intermediate_dense.*  |
| encoder.w2v_model.encoder.layers.{i}.fc2.*                   | encoder.encoder.layers.{i}.feed_forward.output_dense.*        |
| encoder.w2v_model.encoder.layers.{i}.final_layer_norm.*      | encoder.encoder.layers.{i}.final_layer_norm.*                 |
| encoder.w2v_model.mask_emb                                   | encoder.masked_spec_embed                                     |
| encoder.proj.*                                               | enc_to_dec_proj.*                                             |
| decoder.embed_tokens.weight                                  | decoder.model.decoder.embed_tokens.weight                     |
| decoder.embed_positions.weight (learned; row pad+1+p)        | decoder.model.decoder.embed_positions.weight (row 2+p)        |
| (sinusoidal positions: no weights, table recomputed)         | decoder.model.decoder.embed_positions.weight (row 2+p)        |
| decoder.layers.{i}.{self_attn,encoder_attn}.{q,k,v,out}_proj.* | decoder.model.decoder.layers.{i}.(same names)               |
| decoder.layers.{i}.{self_attn,encoder_attn,final}_layer_norm.* | decoder.model.decoder.layers.{i}.(same names)               |
| decoder.layers.{i}.fc1.*, fc2.*                              | decoder.model.decoder.layers.{i}.fc1.*, fc2.*                 |
| decoder.embed_out (unshared output embedding)                | decoder.lm_head.weight (tied to embed_tokens when absent)     |

Dropped (pretraining heads, reported): `label_embs_concat`, `final_proj.*`, `project_q.*`,
`quantizer.*`, `target_glu.*`, `*.version`, `decoder.embed_positions._float_tensor`. Any other key is
an error. Unsupported: pre-LN decoders (`decoder.layer_norm`), `decoder.project_in_dim`.

The fairseq decoder has no layer norm after the embeddings: the converted backbone sets the option
`embedding_layer_norm=False` (BART's `layernorm_embedding` is kept at identity values, unused).
fairseq dictionaries number `<s>`=0, `<pad>`=1, `</s>`=2, `<unk>`=3 and decoding starts from `</s>`,
so the converted options are pad_id=1, bos_id=2, eos_id=2 (until `resize_vocab` replaces the
vocabulary). Architecture values that are not stored in the weights (attention heads, conv strides,
pre/post-LN encoder, activations) come from `Wav2SeqArchitecture`, whose defaults are Wav2Seq's.

Checkpoints are read from safetensors or with `torch.load(weights_only=True)` only. A full fairseq
`.pt` also pickles its training configuration: pickles are refused (loading one can run code); export
the state dict as safetensors with the software that trained the model.

Command line: `python -m speechprompt.backbones.wav2seq_convert model.pt exp/wav2seq_backbone`
"""

from __future__ import annotations

import argparse
import logging
import math
import pickle
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import BartConfig, SpeechEncoderDecoderConfig, SpeechEncoderDecoderModel

from speechprompt.backbones.base import BackboneError
from speechprompt.backbones.wav2vec2_seq2seq import ENCODERS, Wav2Vec2Seq2Seq

logger = logging.getLogger(__name__)

FAIRSEQ_PAD, FAIRSEQ_EOS = 1, 2
BART_POSITION_OFFSET = 2
_DROPPED = re.compile(r"^(label_embs_concat|final_proj\..*|project_q\..*|quantizer\..*|target_glu\..*"
                      r"|(.*\.)?version|embed_positions\._float_tensor)$")
# (fairseq encoder key under encoder.w2v_model., transformers key under encoder.)
_ENCODER_RULES = [
    (r"feature_extractor\.conv_layers\.(\d+)\.0\.(weight|bias)", r"feature_extractor.conv_layers.\1.conv.\2"),
    (r"feature_extractor\.conv_layers\.(\d+)\.2\.1\.(weight|bias)", r"feature_extractor.conv_layers.\1.layer_norm.\2"),
    (r"feature_extractor\.conv_layers\.(\d+)\.2\.(weight|bias)", r"feature_extractor.conv_layers.\1.layer_norm.\2"),
    (r"layer_norm\.(weight|bias)", r"feature_projection.layer_norm.\1"),
    (r"post_extract_proj\.(weight|bias)", r"feature_projection.projection.\1"),
    (r"encoder\.pos_conv\.0\.(weight_g|parametrizations\.weight\.original0)",
     "encoder.pos_conv_embed.conv.parametrizations.weight.original0"),
    (r"encoder\.pos_conv\.0\.(weight_v|parametrizations\.weight\.original1)",
     "encoder.pos_conv_embed.conv.parametrizations.weight.original1"),
    (r"encoder\.pos_conv\.0\.bias", "encoder.pos_conv_embed.conv.bias"),
    (r"encoder\.layer_norm\.(weight|bias)", r"encoder.layer_norm.\1"),
    (r"encoder\.layers\.(\d+)\.self_attn\.(q|k|v|out)_proj\.(weight|bias)", r"encoder.layers.\1.attention.\2_proj.\3"),
    (r"encoder\.layers\.(\d+)\.self_attn_layer_norm\.(weight|bias)", r"encoder.layers.\1.layer_norm.\2"),
    (r"encoder\.layers\.(\d+)\.fc1\.(weight|bias)", r"encoder.layers.\1.feed_forward.intermediate_dense.\2"),
    (r"encoder\.layers\.(\d+)\.fc2\.(weight|bias)", r"encoder.layers.\1.feed_forward.output_dense.\2"),
    (r"encoder\.layers\.(\d+)\.final_layer_norm\.(weight|bias)", r"encoder.layers.\1.final_layer_norm.\2"),
    (r"mask_emb", "masked_spec_embed"),
]
# (fairseq key under decoder., transformers key under decoder.model.decoder.)
_DECODER_RULES = [
    (r"embed_tokens\.weight", "embed_tokens.weight"),
    (r"layers\.(\d+)\.(self_attn|encoder_attn)\.(q|k|v|out)_proj\.(weight|bias)", r"layers.\1.\2.\3_proj.\4"),
    (r"layers\.(\d+)\.(self_attn_layer_norm|encoder_attn_layer_norm|final_layer_norm)\.(weight|bias)",
     r"layers.\1.\2.\3"),
    (r"layers\.(\d+)\.(fc1|fc2)\.(weight|bias)", r"layers.\1.\2.\3"),
]
_STRIDE_FOR_KERNEL = {10: 5, 8: 4, 4: 2, 3: 2, 2: 2}  # fairseq's conv_feature_layers conventions


@dataclass
class Wav2SeqArchitecture:
    """Architecture values a state dict does not store; defaults are Wav2Seq's (HuBERT-base encoder)."""

    encoder_type: str = "hubert"  # or "wav2vec2"
    encoder_attention_heads: int | None = None  # default: hidden_size // 64
    decoder_attention_heads: int = 4  # wav2vec_seq2seq_v2 default
    conv_strides: tuple[int, ...] | None = None  # default: from kernel sizes (10->5, 3->2, 2->2)
    layer_norm_first: bool = False  # fairseq encoder `layer_norm_first` (large models)
    encoder_activation: str = "gelu"
    decoder_activation: str = "relu"
    max_target_positions: int = 1024  # size of the recomputed sinusoidal table
    normalize_waveform: bool = False  # fairseq task.normalize


def load_checkpoint_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict from .safetensors, or a torch file with `weights_only=True` (a `model` entry is used)."""
    path = Path(path)
    if not path.is_file():
        raise BackboneError(f"{path}: checkpoint not found")
    if path.suffix == ".safetensors":
        return load_file(str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise BackboneError(
            f"{path}: the file pickles objects other than tensors (a full fairseq checkpoint with its "
            "configuration), and pickles are refused (loading one can run code); export its state dict "
            "as safetensors with the software that trained it") from err
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BackboneError(f"{path}: expected a dict of tensors (a state dict) or {{'model': state_dict}}")
    return state


def convert_wav2seq(source: str | Path | dict[str, torch.Tensor],
                    arch: Wav2SeqArchitecture | None = None) -> Wav2Vec2Seq2Seq:
    """fairseq Wav2Seq state dict (or checkpoint path) -> `Wav2Vec2Seq2Seq` with identical outputs."""
    arch = arch or Wav2SeqArchitecture()
    if arch.encoder_type not in ("hubert", "wav2vec2"):
        raise BackboneError(f"encoder_type must be 'hubert' or 'wav2vec2', got {arch.encoder_type!r}")
    state = source if isinstance(source, dict) else load_checkpoint_weights(source)
    name = "state dict" if isinstance(source, dict) else str(source)
    encoder, decoder, proj, dropped, unknown = {}, {}, {}, [], []
    for key, value in state.items():
        for prefix, bucket in (("encoder.w2v_model.", encoder), ("encoder.proj.", proj), ("decoder.", decoder)):
            if key.startswith(prefix):
                bucket[key[len(prefix):]] = value
                break
        else:
            (dropped if _DROPPED.match(key) else unknown).append(key)
    if not encoder or not decoder:
        raise BackboneError(f"{name}: expected Wav2Seq keys under 'encoder.w2v_model.' and 'decoder.' "
                            f"(found {len(encoder)} encoder and {len(decoder)} decoder keys)")
    for unsupported in ("layer_norm.weight", "project_in_dim.weight"):
        if unsupported in decoder:
            raise BackboneError(f"{name}: decoder.{unsupported} present: pre-LN decoders and decoder input "
                                "projections are not supported by the BART-style decoder")
    config = _build_config(encoder, decoder, bool(proj), arch, name)
    model = SpeechEncoderDecoderModel(config=config)
    converted = _map_keys(encoder, "encoder.", _ENCODER_RULES, dropped, unknown)
    converted.update(_map_keys(decoder, "decoder.model.decoder.", _DECODER_RULES, dropped, unknown,
                               special={"embed_positions.weight", "embed_out"}))
    converted.update({f"enc_to_dec_proj.{k}": v for k, v in proj.items()})
    if unknown:
        raise BackboneError(f"{name}: {len(unknown)} keys have no mapping: {sorted(unknown)[:10]}")
    converted.update(_decoder_extras(model, decoder, config))
    if "encoder.feature_projection.projection.weight" not in converted:  # fairseq: no projection needed
        hidden = config.encoder.hidden_size
        converted["encoder.feature_projection.projection.weight"] = torch.eye(hidden)
        converted["encoder.feature_projection.projection.bias"] = torch.zeros(hidden)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(converted))
    extra = sorted(set(converted) - set(expected))
    if missing or extra:
        raise BackboneError(f"{name}: conversion left {missing[:10]} unset and {extra[:10]} unused")
    for key, value in converted.items():
        if value.shape != expected[key].shape:
            raise BackboneError(f"{name}: {key} has shape {tuple(value.shape)}, model expects "
                                f"{tuple(expected[key].shape)}; check Wav2SeqArchitecture")
    model.load_state_dict({k: v.float() for k, v in converted.items()}, strict=True)
    if dropped:
        logger.info("%s: dropped %d pretraining-only keys: %s", name, len(dropped), sorted(dropped))
    model.eval()
    options = {"normalize_waveform": arch.normalize_waveform, "embedding_layer_norm": False,
               "pad_id": FAIRSEQ_PAD, "bos_id": FAIRSEQ_EOS, "eos_id": FAIRSEQ_EOS}
    return Wav2Vec2Seq2Seq(model, options)


def _map_keys(weights: dict[str, torch.Tensor], target_prefix: str, rules: list[tuple[str, str]],
              dropped: list[str], unknown: list[str], special: set[str] = frozenset()) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in weights.items():
        if key in special:
            continue
        for pattern, replacement in rules:
            if re.fullmatch(pattern, key):
                out[target_prefix + re.sub(f"^{pattern}$", replacement, key)] = value
                break
        else:
            (dropped if _DROPPED.match(key) else unknown).append(key)
    return out


def _build_config(encoder: dict, decoder: dict, has_proj: bool, arch: Wav2SeqArchitecture,
                  name: str) -> SpeechEncoderDecoderConfig:
    conv_keys = sorted((int(m.group(1)), k) for k in encoder
                       if (m := re.fullmatch(r"feature_extractor\.conv_layers\.(\d+)\.0\.weight", k)))
    convs = [encoder[k] for _, k in conv_keys]
    kernels = tuple(int(w.shape[2]) for w in convs)
    if arch.conv_strides is not None:
        strides = tuple(arch.conv_strides)
    elif all(k in _STRIDE_FOR_KERNEL for k in kernels):
        strides = tuple(_STRIDE_FOR_KERNEL[k] for k in kernels)
    else:
        raise BackboneError(f"{name}: cannot infer conv strides from kernels {kernels}; set conv_strides")
    if "feature_extractor.conv_layers.0.2.1.weight" in encoder:
        norm = "layer"
    elif "feature_extractor.conv_layers.0.2.weight" in encoder:
        norm = "group"
    else:
        raise BackboneError(f"{name}: feature extractor has no group or layer norm; unsupported layout")
    conv_dim = tuple(int(w.shape[0]) for w in convs)
    hidden = int(encoder["post_extract_proj.weight"].shape[0]) if "post_extract_proj.weight" in encoder \
        else conv_dim[-1]
    pos_v = encoder.get("encoder.pos_conv.0.weight_v", encoder.get("encoder.pos_conv.0.parametrizations.weight.original1"))
    if pos_v is None:
        raise BackboneError(f"{name}: no encoder.pos_conv.0 weights found")
    num_layers = 1 + max(int(m.group(1)) for k in encoder if (m := re.match(r"encoder\.layers\.(\d+)\.", k)))
    enc_kwargs = dict(
        conv_dim=conv_dim, conv_kernel=kernels, conv_stride=strides, num_feat_extract_layers=len(conv_dim),
        conv_bias="feature_extractor.conv_layers.0.0.bias" in encoder, feat_extract_norm=norm,
        hidden_size=hidden, num_hidden_layers=num_layers,
        num_attention_heads=arch.encoder_attention_heads or max(1, hidden // 64),
        intermediate_size=int(encoder["encoder.layers.0.fc1.weight"].shape[0]),
        num_conv_pos_embeddings=int(pos_v.shape[2]), num_conv_pos_embedding_groups=hidden // int(pos_v.shape[1]),
        do_stable_layer_norm=arch.layer_norm_first, hidden_act=arch.encoder_activation,
        feat_extract_activation="gelu", layer_norm_eps=1e-5,
        mask_time_prob=0.05 if "mask_emb" in encoder else 0.0,
        hidden_dropout=0.1, attention_dropout=0.1, activation_dropout=0.0, feat_proj_dropout=0.0, layerdrop=0.0)
    if arch.encoder_type == "hubert":
        enc_kwargs["feat_proj_layer_norm"] = "layer_norm.weight" in encoder
    vocab, d_model = (int(n) for n in decoder["embed_tokens.weight"].shape)
    learned = decoder.get("embed_positions.weight")
    max_positions = int(learned.shape[0]) - FAIRSEQ_PAD - 1 if learned is not None else arch.max_target_positions
    dec_layers = 1 + max(int(m.group(1)) for k in decoder if (m := re.match(r"layers\.(\d+)\.", k)))
    dec_kwargs = dict(
        vocab_size=vocab, d_model=d_model, decoder_layers=dec_layers, encoder_layers=0,
        decoder_attention_heads=arch.decoder_attention_heads,
        decoder_ffn_dim=int(decoder["layers.0.fc1.weight"].shape[0]), max_position_embeddings=max_positions,
        activation_function=arch.decoder_activation, scale_embedding=True, pad_token_id=FAIRSEQ_PAD,
        bos_token_id=0, eos_token_id=FAIRSEQ_EOS, decoder_start_token_id=FAIRSEQ_EOS,
        tie_word_embeddings="embed_out" not in decoder, dropout=0.1, attention_dropout=0.1,
        activation_dropout=0.0, is_decoder=True, add_cross_attention=True)
    if has_proj == (hidden == d_model):
        raise BackboneError(f"{name}: encoder.proj {'present' if has_proj else 'absent'} but encoder dim "
                            f"{hidden} {'==' if hidden == d_model else '!='} decoder dim {d_model}")
    config_class, _ = ENCODERS[arch.encoder_type]
    return SpeechEncoderDecoderConfig.from_encoder_decoder_configs(config_class(**enc_kwargs),
                                                                   BartConfig(**dec_kwargs))


def fairseq_sinusoidal_table(rows: int, dim: int, padding_idx: int) -> torch.Tensor:
    """fairseq SinusoidalPositionalEmbedding.get_embedding: (rows, dim), row `padding_idx` zero."""
    half = dim // 2
    scale = math.log(10000) / (half - 1)
    freqs = torch.exp(torch.arange(half, dtype=torch.float) * -scale)
    angles = torch.arange(rows, dtype=torch.float)[:, None] * freqs[None, :]
    table = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
    if dim % 2:
        table = torch.cat([table, torch.zeros(rows, 1)], dim=1)
    table[padding_idx] = 0
    return table


def _decoder_extras(model: SpeechEncoderDecoderModel, decoder: dict, config) -> dict[str, torch.Tensor]:
    """Positions (fairseq row pad+1+p -> BART row 2+p), output layer, identity embedding layer norm."""
    prefix = "decoder.model.decoder."
    table = model.state_dict()[prefix + "embed_positions.weight"]
    positions = table.shape[0] - BART_POSITION_OFFSET
    source = decoder.get("embed_positions.weight")
    if source is None:
        source = fairseq_sinusoidal_table(positions + FAIRSEQ_PAD + 1, table.shape[1], FAIRSEQ_PAD)
    new_table = torch.zeros_like(table)
    new_table[BART_POSITION_OFFSET:] = source[FAIRSEQ_PAD + 1: FAIRSEQ_PAD + 1 + positions]
    d_model = config.decoder.d_model
    out_layer = decoder.get("embed_out", decoder["embed_tokens.weight"])
    return {prefix + "embed_positions.weight": new_table,
            prefix + "layernorm_embedding.weight": torch.ones(d_model),
            prefix + "layernorm_embedding.bias": torch.zeros(d_model),
            "decoder.lm_head.weight": out_layer}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="fairseq Wav2Seq weights (.safetensors, or .pt with a plain state dict)")
    parser.add_argument("out_dir", help="folder for the converted backbone (load with load_backbone)")
    parser.add_argument("--encoder-type", default="hubert", choices=["hubert", "wav2vec2"])
    parser.add_argument("--decoder-attention-heads", type=int, default=4)
    parser.add_argument("--encoder-attention-heads", type=int, default=None)
    parser.add_argument("--layer-norm-first", action="store_true", help="pre-LN encoder (large models)")
    parser.add_argument("--normalize-waveform", action="store_true", help="checkpoint used task.normalize")
    args = parser.parse_args(argv)
    arch = Wav2SeqArchitecture(encoder_type=args.encoder_type, decoder_attention_heads=args.decoder_attention_heads,
                               encoder_attention_heads=args.encoder_attention_heads,
                               layer_norm_first=args.layer_norm_first, normalize_waveform=args.normalize_waveform)
    try:
        backbone = convert_wav2seq(args.checkpoint, arch)
    except BackboneError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    backbone.save_pretrained(args.out_dir)
    print(f"wrote {args.out_dir}: {backbone.num_parameters():,} parameters, fingerprint {backbone.fingerprint()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
