"""zero_shot: the untouched backbone as a task artifact (the reference row of a supervised backbone)."""

from __future__ import annotations

import pytest
import torch

from speechprompt.backbones import build_backbone
from speechprompt.tuning import build_tuned_model, load_task
from speechprompt.tuning.config import ConfigError


def test_zero_shot_trains_nothing_and_decodes_like_the_backbone(tmp_path):
    torch.manual_seed(0)
    backbone = build_backbone("wav2vec2", "tiny", 30)
    model = build_tuned_model(backbone, "zero_shot", {})
    assert model.parameter_report().trainable == 0
    waves, lengths = torch.randn(2, 8000), torch.tensor([8000, 6000])
    tasks = torch.zeros(2, dtype=torch.long)
    enc = model.encode(waves, lengths, tasks)
    features, mask = backbone.embed_audio(waves, lengths)
    assert torch.equal(enc.hidden, backbone.run_encoder(features, mask))

    model.save_artifact(tmp_path / "zs")
    again = load_task(tmp_path / "zs", backbone)
    assert torch.equal(again.encode(waves, lengths, tasks).hidden, enc.hidden)


def test_zero_shot_refuses_a_new_vocabulary():
    with pytest.raises(ConfigError, match="backbone's tokenizer"):
        build_tuned_model(build_backbone("wav2vec2", "tiny", 30), "zero_shot", {"vocab_size": 40})
