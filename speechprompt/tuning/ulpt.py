"""ULPT: ultra-low-dimensional prompt tuning (arXiv 2502.04501), on speech encoder features.

Each prompt vector lives in r dimensions and is lifted to the model width by a fixed random
up-projection, then scaled and shifted per dimension:

    prompts = (Z @ U) * scale + shift        Z (P, r) trained, U (r, D) fixed, scale/shift (D,) trained

U is never stored: it is regenerated from a saved seed, so a task costs exactly P*r + 2*D numbers.
The prompts are prepended to the encoder features like ``prompt``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from speechprompt.tuning.base import TuningMethod
from speechprompt.tuning.config import MethodConfig, check_positive, option
from speechprompt.tuning.prompt import prepend


@dataclass
class ULPTConfig(MethodConfig):
    method: ClassVar[str] = "ulpt"

    num_prompts: int = option(50, "P: number of prompt vectors prepended to the encoder features")
    rank: int = option(4, "r: dimension of the trained prompt vectors before the fixed up-projection")
    projection_seed: int = option(1234, "seed that regenerates the fixed random up-projection (r x D)")
    init_std: float = option(0.5, "standard deviation of the initial low-dimensional prompts Z")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, num_prompts=self.num_prompts, rank=self.rank, init_std=self.init_std)


def random_projection(seed: int, rank: int, dim: int) -> torch.Tensor:
    """The fixed up-projection (rank, dim), N(0, 1/rank): the same on every machine for a seed."""
    generator = torch.Generator().manual_seed(int(seed))
    return torch.randn(rank, dim, generator=generator) / math.sqrt(rank)


class ULPT(TuningMethod):
    config_class = ULPTConfig
    task_tables = ("latent", "scale", "shift", "projection_seeds")
    supports_tasks = True

    def __init__(self, config: ULPTConfig, backbone: nn.Module) -> None:
        super().__init__(config, backbone)
        tasks, dim = config.num_tasks, self.encoder_dim
        latent = torch.randn(tasks, config.num_prompts, config.rank, generator=self.generator) * config.init_std
        self.latent = nn.Parameter(latent)  # (T, P, r)
        self.scale = nn.Parameter(torch.ones(tasks, dim))  # (T, D)
        self.shift = nn.Parameter(torch.zeros(tasks, dim))  # (T, D)
        self.register_buffer("projection_seeds", torch.full((tasks,), config.projection_seed, dtype=torch.long))
        self.register_buffer("projection", torch.empty(0), persistent=False)
        self._regenerate_projection()

    def _regenerate_projection(self) -> None:
        """projection (T, r, D) from the per-task seeds."""
        rank, dim = self.latent.shape[-1], self.scale.shape[-1]
        tables = [random_projection(seed, rank, dim) for seed in self.projection_seeds.tolist()]
        self.projection = torch.stack(tables).to(self.latent.device)

    def load_exported(self, state: dict[str, torch.Tensor]) -> None:
        super().load_exported(state)
        self._regenerate_projection()

    def append_tasks(self, state: dict[str, torch.Tensor]) -> None:
        super().append_tasks(state)
        self._regenerate_projection()

    def prompts(self, task_ids: torch.Tensor) -> torch.Tensor:
        """(B,) task ids -> prompts (B, P, D)."""
        lifted = torch.bmm(self.latent[task_ids], self.projection[task_ids])  # (B,P,r) @ (B,r,D)
        return lifted * self.scale[task_ids, None, :] + self.shift[task_ids, None, :]

    def extend_encoder_input(self, features, mask, task_ids):
        return prepend(self.prompts(task_ids), features, mask)
