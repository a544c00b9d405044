"""Deep prompts (P-tuning v2 style): a separate prompt at every encoder and/or decoder layer.

P placeholder positions are prepended to the layer input; a forward pre-hook on each layer of
``backbone.encoder_layers`` / ``decoder_layers`` replaces the hidden states at those positions by
that layer's prompt, so every layer sees trained vectors rather than the previous layer's output.
On the decoder side the prompt positions enter with the first decoding step and then live in the
self-attention cache.

The tables start either uniform in [-init_range, init_range] or, with ``init: hidden``, as hidden
states sampled from the input of their own layer on the first training batch (each layer's prompts are
set in the same forward pass, after the earlier layers' prompts, so every layer starts from vectors of
the size and direction it is used to). On a real checkpoint the uniform start is far from a no-op
(whisper-base: dev loss 13.7 at step 0 against 1.8 untouched), because each layer's norm scales the small
vectors up to full-size hidden states; the hidden-state start is meant to fix that.

Optionally the tables are produced during training by an MLP from a smaller embedding
(``reparam_hidden`` > 0, as in P-tuning v2); ``export_state`` folds the MLP away and the artifact
holds only the final tables: encoder_prompts (T, N_enc, P, D), decoder_prompts (T, N_dec, P, Dd).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from speechprompt.tuning.base import TuningMethod, replace_hidden_pre_hook
from speechprompt.tuning.config import ConfigError, MethodConfig, check_choice, check_positive, option
from speechprompt.tuning.prompt import prepend, sample_positions

INITS = ("uniform", "hidden")


@dataclass
class DeepPromptConfig(MethodConfig):
    method: ClassVar[str] = "deep_prompt"

    num_prompts: int = option(10, "P: prompt positions per layer")
    encoder: bool = option(True, "prompt every encoder layer")
    decoder: bool = option(False, "prompt every decoder layer")
    reparam_hidden: int = option(0, "0: train the tables directly; >0: hidden size of the MLP that produces them")
    init: str = option(
        "uniform",
        "how the tables start: 'uniform' in [-init_range, init_range]; 'hidden': each layer's prompts are "
        "hidden states sampled from that layer's input on the first training batch",
    )
    init_range: float = option(0.5, "bound of the uniform initialisation")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, num_prompts=self.num_prompts, init_range=self.init_range)
        check_choice(self, "init", self.init, INITS)
        if self.init == "hidden" and self.reparam_hidden:
            raise ConfigError("deep_prompt: init='hidden' sets the tables directly; use it with reparam_hidden=0")
        if not (self.encoder or self.decoder):
            raise ConfigError("deep_prompt: encoder and decoder are both off; turn on at least one")
        if self.reparam_hidden < 0:
            raise ConfigError(f"deep_prompt: reparam_hidden={self.reparam_hidden} must be >= 0")


class PromptTable(nn.Module):
    """A (T, N, P, D) table, trained directly or through an MLP from a (T, P, D) embedding."""

    def __init__(self, method: TuningMethod, layers: int, dim: int, config: DeepPromptConfig) -> None:
        super().__init__()
        tasks, count = config.num_tasks, config.num_prompts
        self.layers, self.dim = layers, dim
        if config.reparam_hidden:
            self.embedding = nn.Parameter(method.uniform(tasks, count, dim, bound=config.init_range))
            self.mlp = nn.Sequential(
                nn.Linear(dim, config.reparam_hidden), nn.Tanh(), nn.Linear(config.reparam_hidden, layers * dim)
            )
        else:
            self.table = nn.Parameter(method.uniform(tasks, layers, count, dim, bound=config.init_range))

    def forward(self) -> torch.Tensor:
        if hasattr(self, "table"):
            return self.table
        tasks, count, _ = self.embedding.shape
        return self.mlp(self.embedding).view(tasks, count, self.layers, self.dim).transpose(1, 2)


class DeepPromptTuning(TuningMethod):
    config_class = DeepPromptConfig
    supports_tasks = True

    def __init__(self, config: DeepPromptConfig, backbone: nn.Module) -> None:
        super().__init__(config, backbone)
        if config.encoder:
            self.encoder_prompts = PromptTable(self, len(backbone.encoder_layers), self.encoder_dim, config)
        if config.decoder:
            self.decoder_prompts = PromptTable(self, len(backbone.decoder_layers), self.decoder_dim, config)
        # this call's per-utterance prompts (B, N, P, D) per side, gathered once by extend_*_input
        self._rows: dict[str, torch.Tensor] = {}
        if config.init == "hidden":
            # a buffer, so that a resumed training checkpoint does not initialise again
            self.register_buffer("hidden_initialised", torch.tensor(False))
        # side -> valid positions (B, T) of the batch whose hidden states start that side's tables
        self._init_masks: dict[str, torch.Tensor] = {}
        self._sides_initialised: set[str] = set()
        self._init_positions: dict[str, list[torch.Tensor]] = {}  # side -> per task, the P sampled positions

    @property
    def sides(self) -> dict[str, PromptTable]:
        """{"encoder": table, "decoder": table} for the sides that are prompted."""
        return {side: getattr(self, f"{side}_prompts") for side in ("encoder", "decoder") if getattr(self.config, side)}

    def attach(self, backbone: nn.Module) -> None:
        for side in self.sides:
            for index, layer in enumerate(getattr(backbone, f"{side}_layers")):
                hook = functools.partial(replace_hidden_pre_hook, functools.partial(self._replace, side, index))
                self.add_hook(layer.register_forward_pre_hook(hook, with_kwargs=True))

    def _replace(self, side: str, index: int, hidden: torch.Tensor) -> torch.Tensor | None:
        """hidden (B, P+T, D) -> the same with positions :P set to layer ``index``'s prompts."""
        active = self._task_ids is not None and (side == "encoder" or self._decoder_prompt_present)
        if not active:
            return None
        if side in self._init_masks:
            prompt = self._init_layer(side, index, hidden)
        else:
            prompt = self._rows[side][:, index].to(hidden.dtype)  # (B, P, D)
        return torch.cat([prompt, hidden[:, self.config.num_prompts :]], dim=1)

    def _start_init(self, side: str, mask: torch.Tensor) -> None:
        """Mark ``side`` for the hidden-state start in this forward pass (training, not yet initialised)."""
        if self.config.init == "hidden" and self.training and not bool(self.hidden_initialised):
            self._init_masks[side] = mask

    def _init_layer(self, side: str, index: int, hidden: torch.Tensor) -> torch.Tensor:
        """Set layer ``index``'s prompts of every task from this layer's input; returns this batch's (B, P, D)."""
        count = self.config.num_prompts
        mask = self._init_masks[side]
        if hidden.shape[1] != count + mask.shape[1]:
            raise ValueError(
                f"deep_prompt init='hidden': {side} layer {index} sees {hidden.shape[1]} positions, expected "
                f"{count} prompts + {mask.shape[1]} inputs"
            )
        table = self.sides[side].table
        states = hidden[:, count:][mask].detach().float()  # (N, D): this layer's input at the valid positions
        if index == 0:  # the same positions at every layer: each prompt follows one real frame or token up
            self._init_positions[side] = [sample_positions(len(states), count, self.generator) for _ in table]
        with torch.no_grad():
            for task, positions in enumerate(self._init_positions[side]):
                table[task, index] = states[positions.to(states.device)].to(table)
        if index == table.shape[1] - 1:  # the side's last layer: its tables are complete
            del self._init_masks[side]
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                torch.distributed.broadcast(table.data, src=0)  # every rank starts from rank 0's states
            self._sides_initialised.add(side)
            if self._sides_initialised == set(self.sides):
                self.hidden_initialised.fill_(True)
        return table[self._task_ids, index].to(hidden.dtype)

    def extend_encoder_input(self, features, mask, task_ids):
        if not self.config.encoder:
            return features, mask
        self._start_init("encoder", mask)
        self._rows["encoder"] = self.encoder_prompts()[task_ids]
        placeholder = features.new_zeros(len(features), self.config.num_prompts, features.shape[-1])
        return prepend(placeholder, features, mask)

    @property
    def decoder_prefix_len(self) -> int:
        return self.config.num_prompts if self.config.decoder else 0

    def extend_decoder_input(self, embeds, task_ids):
        if not self.config.decoder:
            return embeds
        # every decoder position counts as valid here: in training the padding is the end-of-text token
        self._start_init("decoder", torch.ones(embeds.shape[:2], dtype=torch.bool, device=embeds.device))
        self._rows["decoder"] = self.decoder_prompts()[task_ids]
        placeholder = embeds.new_zeros(len(embeds), self.config.num_prompts, embeds.shape[-1])
        return torch.cat([placeholder, embeds], dim=1)

    # ---- saving: final tables only ----
    @property
    def task_tables(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(f"{side}_prompts" for side in self.sides)

    def export_state(self) -> dict[str, torch.Tensor]:
        return {f"{side}_prompts": table().detach().clone() for side, table in self.sides.items()}

    def load_exported(self, state: dict[str, torch.Tensor]) -> None:
        if self.config.reparam_hidden:
            raise ValueError("deep_prompt: saved tables load into a model built with reparam_hidden=0")
        tables = {f"{key}.table": value for key, value in state.items()}
        if self.config.init == "hidden":
            tables["hidden_initialised"] = torch.tensor(True)
        self.load_state_dict(tables, strict=True)

    def exported_config(self) -> DeepPromptConfig:
        return dataclasses.replace(self.config, reparam_hidden=0)

    def append_tasks(self, state: dict[str, torch.Tensor]) -> None:
        for side, table in self.sides.items():
            if not hasattr(table, "table"):
                raise ValueError("deep_prompt: add tasks to a model with folded tables (reparam_hidden=0)")
            theirs = state[f"{side}_prompts"]
            if theirs.shape[1:] != table.table.shape[1:]:
                raise ValueError(f"deep_prompt: {side} table per task {tuple(theirs.shape[1:])} != {tuple(table.table.shape[1:])}")
            joined = torch.cat([table.table.detach(), theirs.to(table.table)], dim=0)
            table.table = nn.Parameter(joined, requires_grad=table.table.requires_grad)
