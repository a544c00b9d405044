"""Prompt tuning: P trained vectors prepended to the speech encoder features.

The encoder input becomes ``[prompt_1..prompt_P, frame_1..frame_T]`` and the mask is extended with
P valid positions; the decoder cross-attends to all of it. One table row per task:
``prompts (num_tasks, P, D)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from speechprompt.tuning.artifact_reader import read_artifact_files
from speechprompt.tuning.base import TuningMethod
from speechprompt.tuning.config import MethodConfig, check_choice, check_positive, option

INITS = ("uniform", "features", "artifact")


@dataclass
class PromptConfig(MethodConfig):
    method: ClassVar[str] = "prompt"

    num_prompts: int = option(50, "P: number of prompt vectors prepended to the encoder features")
    init: str = option(
        "uniform",
        "how the table starts: 'uniform' in [-init_range, init_range]; 'features': frames sampled from "
        "real encoder features of the first training batch (or of init_from_features); 'artifact': "
        "the prompt table of init_artifact",
    )
    init_range: float = option(0.5, "bound of the uniform initialisation")
    init_artifact: str | None = option(None, "task artifact directory whose prompts start training (init='artifact')")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, num_prompts=self.num_prompts, init_range=self.init_range)
        check_choice(self, "init", self.init, INITS)
        if self.init == "artifact" and not self.init_artifact:
            raise ValueError("prompt: init='artifact' needs init_artifact=<task artifact directory>")


def prepend(
    prompts: torch.Tensor, features: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """prompts (B,P,D) before features (B,T,D); mask (B,T) -> (B,P+T) with the prompt positions valid."""
    prompt_mask = torch.ones(prompts.shape[:2], dtype=torch.bool, device=mask.device)
    return torch.cat([prompts.to(features.dtype), features], dim=1), torch.cat([prompt_mask, mask], dim=1)


def sample_positions(valid: int, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` indices into ``valid`` positions: without replacement when there are enough, else with."""
    if valid == 0:
        raise ValueError("init from the first batch: it has no valid positions (all masked)")
    if valid >= count:
        return torch.randperm(valid, generator=generator)[:count]
    return torch.randint(valid, (count,), generator=generator)  # a short batch: with replacement rather than fail


def sample_frames(features: torch.Tensor, mask: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` frames (count, D) drawn from the valid frames of features (B,T,D), mask (B,T) bool."""
    frames = features[mask].float()
    return frames[sample_positions(len(frames), count, generator).to(frames.device)]


def table_from_artifact(directory: str, key: str, shape: tuple[int, ...]) -> torch.Tensor:
    """The table ``key`` of a saved task, checked against the per-task ``shape``; returns (T', *shape)."""
    _, state = read_artifact_files(directory)
    key = f"method.{key}"
    if key not in state:
        raise ValueError(f"{directory}: holds no '{key}' table; initialise from an artifact of the same method")
    table = state[key]
    if tuple(table.shape[1:]) != shape:
        raise ValueError(f"{directory}: '{key}' has per-task shape {tuple(table.shape[1:])}, this model needs {shape}")
    return table


class PromptTuning(TuningMethod):
    config_class = PromptConfig
    task_tables = ("prompts",)
    supports_tasks = True

    def __init__(self, config: PromptConfig, backbone: nn.Module) -> None:
        super().__init__(config, backbone)
        shape = (config.num_prompts, self.encoder_dim)
        table = self.uniform(config.num_tasks, *shape, bound=config.init_range)
        if config.init == "artifact":
            saved = table_from_artifact(config.init_artifact, "prompts", shape)
            table = saved.float().expand(config.num_tasks, *shape).clone() if len(saved) == 1 else saved.float()
            if len(table) != config.num_tasks:
                raise ValueError(f"{config.init_artifact}: holds {len(saved)} tasks, this model {config.num_tasks}")
        self.prompts = nn.Parameter(table)
        # init='features': done once, by the first training forward unless init_from_features ran;
        # a buffer so that a resumed training checkpoint does not initialise again
        self.register_buffer("features_initialised", torch.tensor(config.init != "features"))
        self._check_init = config.init == "features"

    def extend_encoder_input(self, features, mask, task_ids):
        if self._check_init and self.training:
            if not bool(self.features_initialised):
                self.init_from_features(features.detach(), mask)
                if torch.distributed.is_available() and torch.distributed.is_initialized():
                    torch.distributed.broadcast(self.prompts.data, src=0)  # every rank starts from rank 0's frames
            self._check_init = False
        return prepend(self.prompts[task_ids], features, mask)

    def export_state(self) -> dict[str, torch.Tensor]:
        return {"prompts": self.prompts.detach().clone()}

    def load_exported(self, state: dict[str, torch.Tensor]) -> None:
        self.load_state_dict({**state, "features_initialised": torch.tensor(True)}, strict=True)
        self._check_init = False

    @torch.no_grad()
    def init_from_features(self, features: torch.Tensor, mask: torch.Tensor, task_id: int | None = None) -> None:
        """Start the prompts from real encoder features (P frames sampled without replacement).

        features (B,T,D) from ``backbone.embed_audio`` on training audio, mask (B,T) bool;
        ``task_id`` None initialises every task's row.
        """
        rows = range(self.config.num_tasks) if task_id is None else [task_id]
        for row in rows:
            self.prompts[row] = sample_frames(features, mask, self.config.num_prompts, self.generator).to(self.prompts)
        self.features_initialised.fill_(True)
