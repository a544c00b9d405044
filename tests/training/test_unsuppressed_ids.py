"""A task trained on symbols the checkpoint never generates (slot-filling '_', '|', '[', ':') may write them."""

from __future__ import annotations

from types import SimpleNamespace

from speechprompt.backbones import build_backbone
from speechprompt.training.cli import target_ids_suppressed
from speechprompt.tuning import build_tuned_model


class CharIds:
    def encode(self, text: str) -> list[int]:
        return [ord(c) for c in text]


class Targets:
    tokenizer = CharIds()
    texts = ["a_b", "c|d"]

    def __len__(self) -> int:
        return len(self.texts)

    def tokens_of(self, i: int) -> list[int]:
        return self.tokenizer.encode(self.texts[i])


def test_the_suppressed_ids_the_targets_use_are_found():
    backbone = SimpleNamespace(suppress_ids=[ord("_"), ord("|"), ord("#")])
    assert target_ids_suppressed(Targets(), backbone) == [ord("_"), ord("|")]  # '#' is not in any target
    assert target_ids_suppressed(Targets(), SimpleNamespace(suppress_ids=[])) == []


def test_a_task_does_not_suppress_the_ids_it_was_trained_to_write(tmp_path, monkeypatch):
    backbone = build_backbone("whisper", "tiny", vocab_size=40)
    # the checkpoint's own list, as a released checkpoint names it
    monkeypatch.setattr(type(backbone), "suppress_ids", property(lambda self: [5, 6, 7]))
    plain = build_tuned_model(backbone, "prompt", {"num_prompts": 2})
    assert plain.suppress_ids.tolist() == [5, 6, 7]
    plain.release()
    model = build_tuned_model(backbone, "prompt", {"num_prompts": 2, "unsuppressed_ids": [6]})
    assert model.suppress_ids.tolist() == [5, 7]
    model.save_artifact(tmp_path / "task")  # the artifact keeps the list: a reloaded task decodes the same way
    model.release()
    from speechprompt.tuning.model import load_task

    assert load_task(tmp_path / "task", backbone).suppress_ids.tolist() == [5, 7]
