"""Decoder prompts: P trained vectors prepended to the decoder input embeddings.

The decoder sees ``[prompt_1..prompt_P, BOS, y_1, ...]``; the logits of the prompt positions are
dropped. Table: ``prompts (num_tasks, P, Dd)``. During incremental decoding the prompt enters with
the first step and then lives in the self-attention cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from speechprompt.tuning.base import TuningMethod
from speechprompt.tuning.config import MethodConfig, check_positive, option


@dataclass
class DecoderPromptConfig(MethodConfig):
    method: ClassVar[str] = "decoder_prompt"

    num_prompts: int = option(10, "P: number of vectors prepended to the decoder input embeddings")
    init_range: float = option(0.5, "bound of the uniform initialisation")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, num_prompts=self.num_prompts, init_range=self.init_range)


class DecoderPromptTuning(TuningMethod):
    config_class = DecoderPromptConfig
    task_tables = ("prompts",)
    supports_tasks = True

    def __init__(self, config: DecoderPromptConfig, backbone: nn.Module) -> None:
        super().__init__(config, backbone)
        table = self.uniform(config.num_tasks, config.num_prompts, self.decoder_dim, bound=config.init_range)
        self.prompts = nn.Parameter(table)

    @property
    def decoder_prefix_len(self) -> int:
        return self.config.num_prompts

    def extend_decoder_input(self, embeds: torch.Tensor, task_ids: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.prompts[task_ids].to(embeds.dtype), embeds], dim=1)
