"""The fairseq Wav2Seq key mapping, checked against a plain-torch forward of the fairseq layout."""

from __future__ import annotations

import argparse
import math

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from speechprompt.backbones import BackboneError, load_backbone
from speechprompt.backbones.wav2seq_convert import Wav2SeqArchitecture, convert_wav2seq, main

CONV = [(16, 10, 5), (16, 3, 2), (16, 3, 2), (16, 2, 2)]  # (channels, kernel, stride)
HIDDEN, FFN, HEADS, LAYERS, POS_K, POS_G = 32, 64, 4, 2, 16, 4
DEC, DEC_FFN, DEC_HEADS, DEC_LAYERS, VOCAB, PAD = 24, 48, 4, 2, 30, 1
# heads are not stored in weights; the default (hidden // 64) suits real models, not this tiny one
ARCH = Wav2SeqArchitecture(encoder_attention_heads=HEADS, decoder_attention_heads=DEC_HEADS)


def fairseq_state_dict(norm: str = "group", shared_output: bool = True, seed: int = 0) -> dict:
    """Random weights named as fairseq's HubertModel + wav2seq TransformerDecoder name them."""
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape, scale=0.2):
        return scale * torch.randn(*shape, generator=gen)

    def linear(prefix, out_dim, in_dim):
        return {f"{prefix}.weight": rand(out_dim, in_dim), f"{prefix}.bias": rand(out_dim, scale=0.05)}

    def norm_params(prefix, dim):
        return {f"{prefix}.weight": 1 + rand(dim, scale=0.1), f"{prefix}.bias": rand(dim, scale=0.05)}

    enc, sd = "encoder.w2v_model.", {}
    in_ch = 1
    for i, (ch, k, _) in enumerate(CONV):
        sd[f"{enc}feature_extractor.conv_layers.{i}.0.weight"] = rand(ch, in_ch, k, scale=0.5)
        if norm == "group" and i == 0:
            sd.update(norm_params(f"{enc}feature_extractor.conv_layers.0.2", ch))
        elif norm == "layer":
            sd.update(norm_params(f"{enc}feature_extractor.conv_layers.{i}.2.1", ch))
        in_ch = ch
    sd.update(norm_params(f"{enc}layer_norm", in_ch))
    sd.update(linear(f"{enc}post_extract_proj", HIDDEN, in_ch))
    sd[f"{enc}encoder.pos_conv.0.weight_g"] = 1 + rand(1, 1, POS_K, scale=0.1)
    sd[f"{enc}encoder.pos_conv.0.weight_v"] = rand(HIDDEN, HIDDEN // POS_G, POS_K)
    sd[f"{enc}encoder.pos_conv.0.bias"] = rand(HIDDEN, scale=0.05)
    sd.update(norm_params(f"{enc}encoder.layer_norm", HIDDEN))
    for i in range(LAYERS):
        p = f"{enc}encoder.layers.{i}"
        for name in ("q", "k", "v", "out"):
            sd.update(linear(f"{p}.self_attn.{name}_proj", HIDDEN, HIDDEN))
        sd.update(norm_params(f"{p}.self_attn_layer_norm", HIDDEN))
        sd.update(linear(f"{p}.fc1", FFN, HIDDEN))
        sd.update(linear(f"{p}.fc2", HIDDEN, FFN))
        sd.update(norm_params(f"{p}.final_layer_norm", HIDDEN))
    # pretraining-only entries a real checkpoint carries
    sd[f"{enc}mask_emb"] = rand(HIDDEN)
    sd[f"{enc}label_embs_concat"] = rand(10, 8)
    sd.update(linear(f"{enc}final_proj", 8, HIDDEN))
    sd.update(linear("encoder.proj", DEC, HIDDEN))
    sd["decoder.embed_tokens.weight"] = rand(VOCAB, DEC)
    sd["decoder.embed_positions._float_tensor"] = torch.zeros(1)
    sd["decoder.version"] = torch.tensor([3.0])
    for i in range(DEC_LAYERS):
        p = f"decoder.layers.{i}"
        for attn in ("self_attn", "encoder_attn"):
            for name in ("q", "k", "v", "out"):
                sd.update(linear(f"{p}.{attn}.{name}_proj", DEC, DEC))
            sd.update(norm_params(f"{p}.{attn}_layer_norm", DEC))
        sd.update(linear(f"{p}.fc1", DEC_FFN, DEC))
        sd.update(linear(f"{p}.fc2", DEC, DEC_FFN))
        sd.update(norm_params(f"{p}.final_layer_norm", DEC))
    if not shared_output:
        sd["decoder.embed_out"] = rand(VOCAB, DEC)
    return sd


# ---- reference forward written from fairseq's module definitions, plain torch ops ---------------
def _mha(x, kv, sd, p, heads, causal=False):
    q = F.linear(x, sd[f"{p}.q_proj.weight"], sd[f"{p}.q_proj.bias"]) * (x.shape[-1] // heads) ** -0.5
    k = F.linear(kv, sd[f"{p}.k_proj.weight"], sd[f"{p}.k_proj.bias"])
    v = F.linear(kv, sd[f"{p}.v_proj.weight"], sd[f"{p}.v_proj.bias"])
    split = lambda t: t.view(t.shape[0], heads, -1).transpose(0, 1)  # noqa: E731  (H,T,dh)
    scores = split(q) @ split(k).transpose(1, 2)
    if causal:
        scores = scores + torch.triu(torch.full(scores.shape[-2:], float("-inf")), 1)
    out = (scores.softmax(-1) @ split(v)).transpose(0, 1).reshape(x.shape)
    return F.linear(out, sd[f"{p}.out_proj.weight"], sd[f"{p}.out_proj.bias"])


def _ln(x, sd, p):
    return F.layer_norm(x, x.shape[-1:], sd[f"{p}.weight"], sd[f"{p}.bias"], eps=1e-5)


def reference_encoder(sd, wave, norm):
    """fairseq HubertModel.extract_features + Wav2VecEncoder.proj for one utterance: (S,) -> (T, DEC)."""
    enc = "encoder.w2v_model."
    x = wave[None, None]
    for i, (ch, _, stride) in enumerate(CONV):
        x = F.conv1d(x, sd[f"{enc}feature_extractor.conv_layers.{i}.0.weight"], stride=stride)
        if norm == "group" and i == 0:
            p = f"{enc}feature_extractor.conv_layers.0.2"
            x = F.group_norm(x, ch, sd[f"{p}.weight"], sd[f"{p}.bias"], eps=1e-5)
        elif norm == "layer":
            x = _ln(x.transpose(1, 2), sd, f"{enc}feature_extractor.conv_layers.{i}.2.1").transpose(1, 2)
        x = F.gelu(x)
    x = _ln(x[0].T, sd, f"{enc}layer_norm")
    x = F.linear(x, sd[f"{enc}post_extract_proj.weight"], sd[f"{enc}post_extract_proj.bias"])
    g, v = sd[f"{enc}encoder.pos_conv.0.weight_g"], sd[f"{enc}encoder.pos_conv.0.weight_v"]
    weight = g * v / v.norm(dim=(0, 1), keepdim=True)  # torch weight_norm with dim=2
    pos = F.conv1d(x.T[None], weight, sd[f"{enc}encoder.pos_conv.0.bias"], padding=POS_K // 2, groups=POS_G)
    pos = F.gelu(pos[..., :-1] if POS_K % 2 == 0 else pos)  # SamePad drops one frame for even kernels
    x = _ln(x + pos[0].T, sd, f"{enc}encoder.layer_norm")
    for i in range(LAYERS):
        p = f"{enc}encoder.layers.{i}"
        x = _ln(x + _mha(x, x, sd, f"{p}.self_attn", HEADS), sd, f"{p}.self_attn_layer_norm")
        ffn = F.linear(F.gelu(F.linear(x, sd[f"{p}.fc1.weight"], sd[f"{p}.fc1.bias"])),
                       sd[f"{p}.fc2.weight"], sd[f"{p}.fc2.bias"])
        x = _ln(x + ffn, sd, f"{p}.final_layer_norm")
    return F.linear(x, sd["encoder.proj.weight"], sd["encoder.proj.bias"])


def reference_decoder(sd, tokens, enc_out):
    """wav2seq TransformerDecoder (post-LN, sinusoidal positions, relu) on (L,) ids -> (L, V) logits."""
    half = DEC // 2
    freqs = torch.exp(torch.arange(half, dtype=torch.float) * -(math.log(10000) / (half - 1)))
    positions = torch.arange(PAD + 1, PAD + 1 + len(tokens), dtype=torch.float)[:, None] * freqs
    x = math.sqrt(DEC) * sd["decoder.embed_tokens.weight"][tokens]
    x = x + torch.cat([positions.sin(), positions.cos()], 1)
    for i in range(DEC_LAYERS):
        p = f"decoder.layers.{i}"
        x = _ln(x + _mha(x, x, sd, f"{p}.self_attn", DEC_HEADS, causal=True), sd, f"{p}.self_attn_layer_norm")
        x = _ln(x + _mha(x, enc_out, sd, f"{p}.encoder_attn", DEC_HEADS), sd, f"{p}.encoder_attn_layer_norm")
        ffn = F.linear(F.relu(F.linear(x, sd[f"{p}.fc1.weight"], sd[f"{p}.fc1.bias"])),
                       sd[f"{p}.fc2.weight"], sd[f"{p}.fc2.bias"])
        x = _ln(x + ffn, sd, f"{p}.final_layer_norm")
    return x @ sd.get("decoder.embed_out", sd["decoder.embed_tokens.weight"]).T


@pytest.mark.parametrize("norm,shared", [("group", True), ("layer", False)])
@torch.no_grad()
def test_converted_model_matches_fairseq_reference(norm, shared):
    sd = fairseq_state_dict(norm, shared)
    backbone = convert_wav2seq(sd, ARCH).eval()
    assert backbone.model.config.encoder.feat_extract_norm == norm
    wave = 0.3 * torch.randn(6000, generator=torch.Generator().manual_seed(1))
    hidden, mask = backbone.encode(wave[None], torch.tensor([6000]))
    tokens = torch.tensor([backbone.bos_id, 5, 9, 17, 4])
    logits, _ = backbone.run_decoder(backbone.embed_tokens(tokens[None]), hidden, mask)

    ref_enc = reference_encoder(sd, wave, norm)
    projected = backbone.model.enc_to_dec_proj(hidden[0])
    assert projected.shape == ref_enc.shape
    torch.testing.assert_close(projected, ref_enc, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(logits[0], reference_decoder(sd, tokens, ref_enc), atol=1e-4, rtol=1e-4)
    assert (backbone.pad_id, backbone.bos_id, backbone.eos_id) == (1, 2, 2)


@torch.no_grad()
def test_checkpoint_files_and_saved_backbone(tmp_path):
    sd = fairseq_state_dict()
    torch.save({"model": sd}, tmp_path / "model.pt")
    save_file(sd, str(tmp_path / "model.safetensors"))
    from_pt = convert_wav2seq(tmp_path / "model.pt")
    from_st = convert_wav2seq(tmp_path / "model.safetensors")
    assert from_pt.fingerprint() == from_st.fingerprint()
    assert main([str(tmp_path / "model.pt"), str(tmp_path / "converted")]) == 0
    loaded = load_backbone(tmp_path / "converted")
    assert loaded.fingerprint() == from_pt.fingerprint()
    assert loaded.options["embedding_layer_norm"] is False and loaded.pad_id == 1


def test_unsafe_pickle_is_refused_with_instructions(tmp_path):
    # older fairseq checkpoints pickle their argparse.Namespace, newer ones omegaconf objects
    torch.save({"model": fairseq_state_dict(), "args": argparse.Namespace(arch="hubert")}, tmp_path / "full.pt")
    with pytest.raises(BackboneError, match="pickles are refused"):
        convert_wav2seq(tmp_path / "full.pt")


def test_unknown_keys_and_wrong_heads_are_errors():
    sd = fairseq_state_dict()
    sd["encoder.w2v_model.encoder.layers.0.mystery.weight"] = torch.zeros(3)
    with pytest.raises(BackboneError, match="no mapping"):
        convert_wav2seq(sd)
    sd = fairseq_state_dict()
    sd["decoder.layer_norm.weight"] = torch.ones(DEC)
    with pytest.raises(BackboneError, match="pre-LN"):
        convert_wav2seq(sd)
    with pytest.raises(BackboneError, match="cannot infer conv strides"):
        bad = fairseq_state_dict()
        bad["encoder.w2v_model.feature_extractor.conv_layers.1.0.weight"] = torch.zeros(16, 16, 7)
        convert_wav2seq(bad)
    assert convert_wav2seq(fairseq_state_dict(), Wav2SeqArchitecture(decoder_attention_heads=2)) is not None
