"""MEPT: a mixture of expert prompts chosen per utterance by a router.

E experts of L prompt vectors each. A router reads the masked mean of the utterance's encoder
features, keeps the top-k experts and mixes them with their renormalised router probabilities:

    p = softmax(W^T mean(features) + b)            (E,)
    prompt = sum_{e in topk(p)} p_e / sum_topk(p) * expert_e      (L, D)

An optional shared expert (L more vectors) is always prepended. A Switch-Transformer load-balancing
loss ``E * sum_e f_e * P_e`` (f_e: share of routing slots, P_e: mean probability) keeps the experts
in use; it is returned in ``aux`` and added to the loss with ``balance_weight``.
Tables per task: experts (T,E,L,D), router_weight (T,D,E), router_bias (T,E), shared (T,L,D).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from speechprompt.tuning.base import TuningMethod
from speechprompt.tuning.config import ConfigError, MethodConfig, check_choice, check_positive, option
from speechprompt.tuning.prompt import prepend, sample_frames

INITS = ("uniform", "features")
INIT_FLAG = "features_initialised"


@dataclass
class MEPTConfig(MethodConfig):
    method: ClassVar[str] = "mept"
    task_compatible_fields: ClassVar[tuple[str, ...]] = ("top_k",)

    num_experts: int = option(4, "E: number of expert prompts")
    expert_len: int = option(10, "L: prompt vectors per expert")
    top_k: int = option(1, "experts mixed per utterance")
    shared_expert: bool = option(False, "also prepend an always-on shared expert of L vectors")
    balance_weight: float = option(0.01, "weight of the load-balancing loss")
    init: str = option(
        "uniform",
        "how the experts start: 'uniform' in [-init_range, init_range]; 'features': each expert (and the shared "
        "one) as frames sampled from the real encoder features of the first training batch",
    )
    init_range: float = option(0.5, "bound of the uniform initialisation of the experts")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, num_experts=self.num_experts, expert_len=self.expert_len, top_k=self.top_k)
        check_choice(self, "init", self.init, INITS)
        if self.top_k > self.num_experts:
            raise ConfigError(f"mept: top_k={self.top_k} exceeds num_experts={self.num_experts}; lower top_k")
        if self.balance_weight < 0:
            raise ConfigError(f"mept: balance_weight={self.balance_weight} must be >= 0")


class MEPT(TuningMethod):
    config_class = MEPTConfig
    supports_tasks = True

    def __init__(self, config: MEPTConfig, backbone: nn.Module) -> None:
        super().__init__(config, backbone)
        tasks, experts, length, dim = config.num_tasks, config.num_experts, config.expert_len, self.encoder_dim
        self.experts = nn.Parameter(self.uniform(tasks, experts, length, dim, bound=config.init_range))
        self.router_weight = nn.Parameter(self.uniform(tasks, dim, experts, bound=dim**-0.5))
        self.router_bias = nn.Parameter(torch.zeros(tasks, experts))
        self.task_tables = ("experts", "router_weight", "router_bias")
        if config.shared_expert:
            self.shared = nn.Parameter(self.uniform(tasks, length, dim, bound=config.init_range))
            self.task_tables += ("shared",)
        if config.init == "features":
            # a buffer, so that a resumed training checkpoint does not initialise again
            self.register_buffer(INIT_FLAG, torch.tensor(False))
        self._aux: dict[str, torch.Tensor] = {}
        self.last_choice: torch.Tensor | None = None  # (B, k) experts chosen in the last forward

    def route(self, features: torch.Tensor, mask: torch.Tensor, task_ids: torch.Tensor):
        """features (B,T,D), mask (B,T) -> router probabilities (B,E), top-k weights (B,k), indices (B,k)."""
        valid = mask.to(torch.float32).unsqueeze(-1)
        pooled = (features.float() * valid).sum(1) / valid.sum(1).clamp(min=1.0)  # masked mean (B, D)
        weight = self.router_weight[task_ids].float()  # (B, D, E)
        logits = torch.bmm(pooled.unsqueeze(1), weight).squeeze(1) + self.router_bias[task_ids]
        probs = logits.softmax(-1)
        top_p, top_i = probs.topk(self.config.top_k, dim=-1)
        return probs, top_p / top_p.sum(-1, keepdim=True), top_i

    @torch.no_grad()
    def init_from_features(self, features: torch.Tensor, mask: torch.Tensor, task_id: int | None = None) -> None:
        """Start every expert (and the shared one) from real frames: features (B,T,D), mask (B,T) bool.

        On a real checkpoint the uniform start is far from the features' scale (whisper-base: training loss
        5.5-6.0 at step 10 against 1.9 for prompts started from features, and one seed in three never recovered).
        """
        rows = range(self.config.num_tasks) if task_id is None else [task_id]
        length = self.config.expert_len
        for row in rows:
            for expert in range(self.config.num_experts):
                self.experts[row, expert] = sample_frames(features, mask, length, self.generator).to(self.experts)
            if self.config.shared_expert:
                self.shared[row] = sample_frames(features, mask, length, self.generator).to(self.shared)
        if hasattr(self, INIT_FLAG):
            getattr(self, INIT_FLAG).fill_(True)

    def extend_encoder_input(self, features, mask, task_ids):
        if self.training and hasattr(self, INIT_FLAG) and not bool(getattr(self, INIT_FLAG)):
            self.init_from_features(features.detach(), mask)
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                for table in (self.experts, getattr(self, "shared", None)):
                    if table is not None:
                        torch.distributed.broadcast(table.data, src=0)  # every rank starts from rank 0's frames
        probs, weights, chosen = self.route(features, mask, task_ids)
        picked = self.experts[task_ids.unsqueeze(1), chosen]  # (B, k, L, D)
        prompt = torch.einsum("bk,bkld->bld", weights, picked)
        if self.config.shared_expert:
            prompt = torch.cat([self.shared[task_ids], prompt], dim=1)
        experts = self.config.num_experts
        slot_share = F.one_hot(chosen, experts).float().sum(1).mean(0) / self.config.top_k  # f_e (E,)
        balance = experts * (slot_share * probs.mean(0)).sum()
        self._aux = {"load_balance": self.config.balance_weight * balance}
        self.last_choice = chosen.detach()
        return prepend(prompt, features, mask)

    def aux_losses(self) -> dict[str, torch.Tensor]:
        return self._aux

    # the initialisation flag is training state, not part of the artifact
    def export_state(self) -> dict[str, torch.Tensor]:
        return {name: value for name, value in super().export_state().items() if name != INIT_FLAG}

    def load_exported(self, state: dict[str, torch.Tensor]) -> None:
        flag = {INIT_FLAG: torch.tensor(True)} if hasattr(self, INIT_FLAG) else {}
        self.load_state_dict({**state, **flag}, strict=True)
