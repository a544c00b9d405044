"""Houlsby adapters: a bottleneck MLP after the attention and after the feed-forward block.

In each chosen layer, forward hooks on the self-attention module and on the feed-forward module
(the first submodule whose name is in ``attention_modules`` / ``ffn_modules``) replace their
output h by ``h + up(gelu(down(h)))`` before the layer's residual addition. ``up`` starts at zero,
so training starts from the backbone's function. Per adapter: 2*D*m + m + D parameters.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from speechprompt.tuning.base import TuningMethod, replace_output_hook, select_layers
from speechprompt.tuning.config import ConfigError, MethodConfig, check_positive, option


@dataclass
class AdapterConfig(MethodConfig):
    method: ClassVar[str] = "adapter"

    bottleneck: int = option(32, "m: bottleneck width of each adapter")
    encoder_layers: list[int] | None = option(None, "encoder layer indices with adapters; None = all, [] = none")
    decoder_layers: list[int] | None = option([], "decoder layer indices with adapters; None = all, [] = none")
    attention_modules: list[str] = option(
        ["attention", "self_attn"], "candidate names of a layer's self-attention module (the first found is used)"
    )
    ffn_modules: list[str] = option(
        ["feed_forward", "fc2", "mlp"], "candidate names of a layer's feed-forward module (or its output projection)"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, bottleneck=self.bottleneck)
        if self.encoder_layers == [] and self.decoder_layers == []:
            raise ConfigError("adapter: no layers chosen; set encoder_layers and/or decoder_layers (None = all)")


class Bottleneck(nn.Module):
    """h (..., D) -> h + up(gelu(down(h)))."""

    def __init__(self, dim: int, width: int, generator: torch.Generator) -> None:
        super().__init__()
        self.down = nn.Linear(dim, width)
        self.up = nn.Linear(width, dim)
        with torch.no_grad():
            self.down.weight.normal_(0.0, dim**-0.5, generator=generator)
            self.down.bias.zero_()
            self.up.weight.zero_()
            self.up.bias.zero_()

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        # computed in the adapter's dtype (float32 when the frozen backbone runs in bf16/fp16)
        inner = self.up(F.gelu(self.down(hidden.to(self.down.weight.dtype))))
        return hidden + inner.to(hidden.dtype)


def find_submodule(layer: nn.Module, candidates: list[str], what: str, where: str) -> nn.Module:
    children = dict(layer.named_modules())
    for name in candidates:  # the shallowest submodule whose last name component matches
        paths = sorted((p for p in children if p.rsplit(".", 1)[-1] == name), key=lambda p: p.count("."))
        if paths:
            return children[paths[0]]
    raise ConfigError(
        f"adapter: {where} has no {what} module named any of {candidates}; its submodules are "
        f"{sorted(n for n in children if n and '.' not in n)}; set adapter.{what}_modules"
    )


class Adapter(TuningMethod):
    config_class = AdapterConfig

    def __init__(self, config: AdapterConfig, backbone: nn.Module) -> None:
        super().__init__(config, backbone)
        self.adapters = nn.ModuleDict()
        self._targets: dict[str, nn.Module] = {}
        dims = {"encoder": self.encoder_dim, "decoder": self.decoder_dim}
        for side in ("encoder", "decoder"):
            layers = getattr(backbone, f"{side}_layers")
            for index in select_layers(layers, getattr(config, f"{side}_layers"), side, "adapter"):
                for what, names in (("attention", config.attention_modules), ("ffn", config.ffn_modules)):
                    target = find_submodule(layers[index], names, what, f"{side} layer {index}")
                    key = f"{side}-{index}-{what}"
                    self.adapters[key] = Bottleneck(dims[side], config.bottleneck, self.generator)
                    self._targets[key] = target

    def attach(self, backbone: nn.Module) -> None:
        for key, target in self._targets.items():
            # a partial (not a closure) so that copy.deepcopy of the model re-targets the hook
            self.add_hook(target.register_forward_hook(functools.partial(replace_output_hook, self.adapters[key])))
