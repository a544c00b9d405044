"""LoRA: low-rank updates of chosen linear projections in chosen encoder/decoder layers.

For each chosen ``nn.Linear`` W (out x in) a forward hook adds ``(alpha / r) * B(A(dropout(x)))``
with A (r x in) random and B (out x r) zero, so training starts from the backbone's function. The
backbone's modules and weights stay untouched (hooks, not module replacement), which keeps its
state dict and fingerprint unchanged. Trainable count: sum over targets of r * (in + out).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from speechprompt.tuning.base import TuningMethod, select_layers
from speechprompt.tuning.config import ConfigError, MethodConfig, check_positive, option


@dataclass
class LoRAConfig(MethodConfig):
    method: ClassVar[str] = "lora"

    rank: int = option(8, "r: rank of each update")
    alpha: float = option(16.0, "scaling numerator: the update is multiplied by alpha / rank")
    dropout: float = option(0.0, "dropout on the input of the update")
    target_modules: list[str] = option(
        ["q_proj", "v_proj"], "names (last component) of the nn.Linear projections to adapt in each chosen layer"
    )
    encoder_layers: list[int] | None = option(None, "encoder layer indices to adapt; None = all, [] = none")
    decoder_layers: list[int] | None = option(None, "decoder layer indices to adapt; None = all, [] = none")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, rank=self.rank, alpha=self.alpha)
        if not self.target_modules:
            raise ConfigError("lora: target_modules is empty; name projections such as ['q_proj', 'v_proj']")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"lora: dropout={self.dropout} must be in [0, 1)")
        if self.encoder_layers == [] and self.decoder_layers == []:
            raise ConfigError("lora: no layers chosen; set encoder_layers and/or decoder_layers (None = all)")


class LowRankUpdate(nn.Module):
    """x (..., in) -> scale * B(A(x)) (..., out)."""

    def __init__(self, linear: nn.Linear, rank: int, scale: float, dropout: float, generator: torch.Generator):
        super().__init__()
        self.down = nn.Parameter(torch.empty(rank, linear.in_features))
        self.up = nn.Parameter(torch.zeros(linear.out_features, rank))
        bound = 1.0 / math.sqrt(linear.in_features)  # kaiming-uniform(a=sqrt(5)) as in nn.Linear / PEFT
        with torch.no_grad():
            self.down.uniform_(-bound, bound, generator=generator)
        self.scale = scale
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(x)
        return (x @ self.down.to(x.dtype).T) @ self.up.to(x.dtype).T * self.scale


def matching_linears(layer: nn.Module, names: list[str]) -> dict[str, nn.Linear]:
    """{path inside the layer: module} for the nn.Linear modules whose last name component is in names."""
    return {
        path: module
        for path, module in layer.named_modules()
        if isinstance(module, nn.Linear) and path.rsplit(".", 1)[-1] in names
    }


class LoRA(TuningMethod):
    config_class = LoRAConfig

    def __init__(self, config: LoRAConfig, backbone: nn.Module) -> None:
        super().__init__(config, backbone)
        self.updates = nn.ModuleDict()
        self._targets: dict[str, nn.Linear] = {}
        self._called: set[str] = set()  # targets whose hook ran (checked once, see aux_losses)
        self._verified = False
        found: set[str] = set()
        for side in ("encoder", "decoder"):
            layers = getattr(backbone, f"{side}_layers")
            for index in select_layers(layers, getattr(config, f"{side}_layers"), side, "lora"):
                for path, linear in matching_linears(layers[index], config.target_modules).items():
                    key = f"{side}-{index}-{path}".replace(".", "-")  # ModuleDict keys cannot hold dots
                    update = LowRankUpdate(linear, config.rank, config.alpha / config.rank, config.dropout, self.generator)
                    self.updates[key] = update
                    self._targets[key] = linear
                    found.add(path.rsplit(".", 1)[-1])
        missing = sorted(set(config.target_modules) - found)
        if missing:
            example = sorted({p for p, m in backbone.encoder_layers[0].named_modules() if isinstance(m, nn.Linear)})
            raise ConfigError(f"lora: no nn.Linear named {missing} in the chosen layers; this backbone's encoder layer has {example}")

    def attach(self, backbone: nn.Module) -> None:
        for key, linear in self._targets.items():
            # a partial of a bound method (not a closure) so that copy.deepcopy re-targets it
            self.add_hook(linear.register_forward_hook(functools.partial(self._add_update, key)))

    def _add_update(self, key: str, module: nn.Linear, args: tuple, output: torch.Tensor) -> torch.Tensor:
        self._called.add(key)
        return output + self.updates[key](args[0])

    def aux_losses(self) -> dict[str, torch.Tensor]:
        """After the first full forward: fail if some target was never called as a module.

        Some attention implementations (WavLM's) pass the projection weights to a functional
        kernel instead of calling the nn.Linear, so a hook there would silently do nothing.
        Checked per (side, projection name) so that layerdrop cannot raise a false alarm.
        """
        if not self._verified:
            groups: dict[str, bool] = {}
            for key in self.updates:
                side, _, path = key.split("-", 2)
                group = f"{side} {path.rsplit('-', 1)[-1]}"
                groups[group] = groups.get(group, False) or key in self._called
            silent = sorted(group for group, called in groups.items() if not called)
            if silent:
                raise ConfigError(
                    f"lora: the {silent} projections are never called as modules by this backbone (its attention "
                    "uses their weights directly), so LoRA cannot reach them; choose other target_modules, "
                    "e.g. the feed-forward projections"
                )
            self._verified = True
        return {}
