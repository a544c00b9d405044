"""Decoder prompts: P trained vectors prepended to the decoder input embeddings.

The decoder sees ``[prompt_1..prompt_P, BOS, y_1, ...]``; the logits of the prompt positions are
dropped. Table: ``prompts (num_tasks, P, Dd)``. During incremental decoding the prompt enters with
the first step and then lives in the self-attention cache.

The table starts uniform in [-init_range, init_range] or, with ``init: tokens``, as token embeddings
sampled from the decoder input of the first training batch (its task prefix and transcripts), so that
the decoder starts from vectors of the kind it reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from speechprompt.tuning.base import TuningMethod
from speechprompt.tuning.config import MethodConfig, check_choice, check_positive, option
from speechprompt.tuning.prompt import sample_frames

INITS = ("uniform", "tokens")
INIT_FLAG = "tokens_initialised"


@dataclass
class DecoderPromptConfig(MethodConfig):
    method: ClassVar[str] = "decoder_prompt"

    num_prompts: int = option(10, "P: number of vectors prepended to the decoder input embeddings")
    init: str = option(
        "uniform",
        "how the table starts: 'uniform' in [-init_range, init_range]; 'tokens': token embeddings sampled "
        "from the decoder input of the first training batch",
    )
    init_range: float = option(0.5, "bound of the uniform initialisation")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, num_prompts=self.num_prompts, init_range=self.init_range)
        check_choice(self, "init", self.init, INITS)


class DecoderPromptTuning(TuningMethod):
    config_class = DecoderPromptConfig
    task_tables = ("prompts",)
    supports_tasks = True

    def __init__(self, config: DecoderPromptConfig, backbone: nn.Module) -> None:
        super().__init__(config, backbone)
        table = self.uniform(config.num_tasks, config.num_prompts, self.decoder_dim, bound=config.init_range)
        self.prompts = nn.Parameter(table)
        if config.init == "tokens":
            # a buffer, so that a resumed training checkpoint does not initialise again
            self.register_buffer(INIT_FLAG, torch.tensor(False))

    @property
    def decoder_prefix_len(self) -> int:
        return self.config.num_prompts

    @torch.no_grad()
    def init_from_tokens(self, embeds: torch.Tensor) -> None:
        """Start every task's prompts from P token embeddings sampled from embeds (B, L, Dd)."""
        every = torch.ones(embeds.shape[:2], dtype=torch.bool, device=embeds.device)
        for row in range(self.config.num_tasks):
            self.prompts[row] = sample_frames(embeds, every, self.config.num_prompts, self.generator).to(self.prompts)
        getattr(self, INIT_FLAG).fill_(True)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.broadcast(self.prompts.data, src=0)  # every rank starts from rank 0's tokens

    def extend_decoder_input(self, embeds: torch.Tensor, task_ids: torch.Tensor) -> torch.Tensor:
        if self.training and hasattr(self, INIT_FLAG) and not bool(getattr(self, INIT_FLAG)):
            self.init_from_tokens(embeds.detach())
        return torch.cat([self.prompts[task_ids].to(embeds.dtype), embeds], dim=1)

    # the initialisation flag is training state, not part of the artifact
    def export_state(self) -> dict[str, torch.Tensor]:
        return {"prompts": self.prompts.detach().clone()}

    def load_exported(self, state: dict[str, torch.Tensor]) -> None:
        flag = {INIT_FLAG: torch.tensor(True)} if hasattr(self, INIT_FLAG) else {}
        self.load_state_dict({**state, **flag}, strict=True)
