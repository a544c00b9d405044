"""One training step of a method on a released checkpoint, then save and reload (shared by the tests on a
tiny imported stand-in and on the real whisper-tiny.en)."""

from __future__ import annotations

import copy
import json

import numpy as np
import torch

from speechprompt.backbones import load_backbone
from speechprompt.data.text import load_tokenizer
from speechprompt.tuning import build_tuned_model, load_task


def check_method_round_trip(checkpoint, method: str, tmp_path, language: str | None = None) -> None:
    """One AdamW step with the checkpoint's own tokenizer: the frozen backbone stays bit-identical (except what
    finetune trains), the artifact records tokenizer, language and prefix, and reloads to the same outputs."""
    tok = load_tokenizer(checkpoint, language)
    backbone = load_backbone(checkpoint)
    pristine = copy.deepcopy(backbone.model.state_dict())
    model = build_tuned_model(backbone, method, {**tok.method_options(), "seed": 1})
    rng = np.random.default_rng(0)
    waves = [torch.from_numpy(rng.normal(0, 0.1, int(16000 * s)).astype(np.float32)) for s in (0.8, 1.2)]
    lengths = torch.tensor([len(w) for w in waves])
    targets = [tok.encode(t) + [tok.eos_id] for t in ("ab", "ba ab")]
    target = torch.full((2, max(map(len, targets))), tok.pad_id)
    for row, ids in enumerate(targets):
        target[row, : len(ids)] = torch.tensor(ids)
    batch = type("Batch", (), dict(waveforms=torch.nn.utils.rnn.pad_sequence(waves, batch_first=True),
                                   wave_lengths=lengths, targets=target, task_ids=torch.zeros(2, dtype=torch.long)))
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    model(batch).loss.backward()
    optimiser.step()
    model.eval()
    if method != "finetune":
        assert all(torch.equal(pristine[k], v) for k, v in backbone.model.state_dict().items())
    tok.save(tmp_path / "tok")
    model.save_artifact(tmp_path / "artifact", tmp_path / "tok")
    meta = json.loads((tmp_path / "artifact" / "task.json").read_text())
    assert meta["tokenizer_kind"] == "whisper" and meta["language"] == tok.language
    assert meta["config"]["task_prefix"] == tok.prefix_ids and meta["config"].get("vocab_size") is None
    with torch.no_grad():
        before = model(batch).logits
        after = load_task(tmp_path / "artifact", load_backbone(checkpoint))(batch).logits
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)
    # the checkpoint's vocabulary is named by sha256, not copied: it is read from the backbone's folder
    assert not (tmp_path / "artifact" / "tokenizer" / "tokenizer.json").exists()
    assert load_tokenizer(tmp_path / "artifact" / "tokenizer", vocabulary_dir=checkpoint).prefix_ids == tok.prefix_ids
