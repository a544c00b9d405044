"""Pseudo-labelling: deterministic labels, repeats merged, statistics, reuse on another set, CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from speechprompt.cli import main
from speechprompt.pretrain.frame_features import HiddenStateFeatures, MfccFeatures
from speechprompt.pretrain.labelling import pseudo_label, read_pseudo_text
from speechprompt.pretrain.pseudo_language import (
    CHAR_OFFSET,
    PseudoLanguage,
    dedup,
    text_to_units,
    units_to_text,
)


def test_dedup_and_characters():
    assert dedup([5, 5, 5, 2, 2, 5, 7, 7]) == [5, 2, 5, 7]
    assert dedup([]) == []
    text = units_to_text([0, 3, 99])
    assert text == chr(CHAR_OFFSET) + chr(CHAR_OFFSET + 3) + chr(CHAR_OFFSET + 99)
    assert text_to_units(text) == [0, 3, 99]


def test_mfcc_features_shape_and_rate():
    feats = MfccFeatures()(torch.zeros(16000) + 0.01 * torch.randn(16000, generator=torch.Generator().manual_seed(0)))
    assert feats.shape == (98, 39)  # 1 + (16000 - 400) // 160
    assert MfccFeatures()(torch.zeros(300)).shape == (0, 39)


def test_labels_are_deterministic_and_deduplicated(phone_data, tmp_path):
    a = pseudo_label(phone_data, tmp_path / "a", clusters=12, bpe_vocab=40)
    b = pseudo_label(phone_data, tmp_path / "b", clusters=12, bpe_vocab=40)
    text_a, text_b = read_pseudo_text(tmp_path / "a" / "pseudo_text"), read_pseudo_text(tmp_path / "b" / "pseudo_text")
    assert text_a == text_b and len(text_a) == 8
    assert np.array_equal(np.load(tmp_path / "a" / "kmeans_centroids.npy"), np.load(tmp_path / "b" / "kmeans_centroids.npy"))
    for pieces in text_a.values():
        units = text_to_units("".join(pieces.split()))
        assert units == dedup(units)  # no unit repeats itself once pieces are joined
    assert 95 < a["frames_per_second"] < 101
    assert 0 < a["dedup_ratio"] < 0.5  # 60-160 ms segments: many 10 ms frames per unit
    assert a["pseudo_tokens_per_second"] < a["units_per_second"] < a["frames_per_second"]
    assert a == {**b, "wall_seconds": a["wall_seconds"], "feature_wall_seconds": a["feature_wall_seconds"]}

    # features computed twice instead of held in memory: the same sample, centroids and labels
    pseudo_label(phone_data, tmp_path / "lowmem", clusters=12, bpe_vocab=40, memory_mb=0, max_frames=300)
    pseudo_label(phone_data, tmp_path / "himem", clusters=12, bpe_vocab=40, max_frames=300)
    assert read_pseudo_text(tmp_path / "lowmem" / "pseudo_text") == read_pseudo_text(tmp_path / "himem" / "pseudo_text")

    # the saved language applied to the same audio gives the same labels
    lang = PseudoLanguage.load(tmp_path / "a")
    assert lang.clusters == 12 and lang.feature_config["feature"] == "mfcc"
    pseudo_label(phone_data, tmp_path / "again", language_dir=tmp_path / "a")
    assert read_pseudo_text(tmp_path / "again" / "pseudo_text") == text_a
    # targets: each line maps to BPE ids (not <unk>) and back
    tok = lang.tokenizer()
    line = next(iter(text_a.values()))
    ids = tok.encode(line)
    assert all(i > 3 for i in ids) and tok.decode(ids) == line
    with pytest.raises(ValueError, match="not in the BPE vocabulary"):
        tok.encode("NOT-A-PIECE")


def test_cli_prints_statistics(phone_data, tmp_path, capsys):
    rc = main(["pseudo-label", "--data", str(phone_data), "--out", str(tmp_path / "pl"), "--clusters", "10",
               "--bpe-vocab", "30"])
    out = capsys.readouterr().out
    assert rc == 0
    for key in ("clusters", "frames/s", "dedup ratio", "pseudo tokens/s"):
        assert key in out
    assert (tmp_path / "pl" / "kmeans.safetensors").is_file() and (tmp_path / "pl" / "bpe" / "spm.model").is_file()
    rc = main(["pseudo-label", "--data", str(phone_data), "--out", str(tmp_path / "x"), "--clusters", "100000"])
    assert rc == 2 and "clusters must be in" in capsys.readouterr().err
    rc = main(["pseudo-label", "--data", str(phone_data), "--out", str(tmp_path / "y"), "--clusters", "10",
               "--bpe-vocab", "8"])
    assert rc == 2 and "use --bpe-vocab 14 or more" in capsys.readouterr().err


def test_hidden_state_features_of_a_backbone(phone_data, tmp_path):
    from speechprompt.backbones import build_backbone

    torch.manual_seed(0)
    backbone = build_backbone("wav2vec2", "tiny", vocab_size=20)
    backbone.save_pretrained(tmp_path / "bb")
    feats = HiddenStateFeatures(backbone, layer=1)
    assert feats(torch.zeros(16000)).shape[0] == feats.frame_rate
    with pytest.raises(ValueError, match="does not exist"):
        HiddenStateFeatures(backbone, layer=99)
    stats = pseudo_label(phone_data, tmp_path / "it2", clusters=6, bpe_vocab=20, feature="hidden",
                         backbone_dir=str(tmp_path / "bb"), layer=1)
    assert stats["feature"]["feature"] == "hidden" and stats["feature"]["layer"] == 1
    assert abs(stats["frames_per_second"] - feats.frame_rate) < 5
