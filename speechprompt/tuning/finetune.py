"""Fine-tuning: train all backbone parameters, or named parts of them.

``parts`` names what to train: ``all``, ``encoder_layers``, ``decoder_layers``, a prefix of the
backbone's parameter names, or a component of them: ``decoder`` picks every parameter whose dotted
name contains ``decoder`` (layers, embeddings, positions, norms; on every backbone family). The artifact stores the trained parameters
under their backbone names; loading writes them into the given backbone. Weights a backbone declares
fixed (``fixed_parameter_names``: Whisper's sinusoidal encoder positions) are never trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from speechprompt.tuning.base import TuningMethod
from speechprompt.tuning.config import ConfigError, MethodConfig, option


@dataclass
class FinetuneConfig(MethodConfig):
    method: ClassVar[str] = "finetune"

    parts: list[str] = option(
        ["all"], "what to train: 'all', 'encoder_layers', 'decoder_layers', or a prefix or dotted component of backbone "
        "parameter names (e.g. 'decoder', 'encoder')"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.parts:
            raise ConfigError("finetune: parts is empty; use ['all'] or name parts such as ['decoder']")


def selected_parameter_names(backbone: nn.Module, parts: list[str]) -> list[str]:
    names = [name for name, _ in backbone.named_parameters()]
    chosen: set[str] = set()
    for part in parts:
        if part == "all":
            matched = names
        elif part in ("encoder_layers", "decoder_layers"):
            layer_params = {id(p) for p in getattr(backbone, part).parameters()}
            matched = [name for name, p in backbone.named_parameters() if id(p) in layer_params]
        else:  # a name prefix, else a dotted name component ("decoder" finds model.model.decoder.*)
            matched = [name for name in names if name == part or name.startswith(part + ".")]
            matched = matched or [name for name in names if f".{part}." in f".{name}."]
        if not matched:
            tops = sorted({name.split(".")[0] for name in names})
            raise ConfigError(f"finetune: part '{part}' matches no backbone parameter; top-level names are {tops}")
        chosen.update(matched)
    fixed = set(getattr(backbone, "fixed_parameter_names", ()))
    return [name for name in names if name in chosen and name not in fixed]


class Finetune(TuningMethod):
    """Holds no parameters of its own: it marks backbone parameters trainable."""

    config_class = FinetuneConfig

    def __init__(self, config: FinetuneConfig, backbone: nn.Module) -> None:
        super().__init__(config, backbone)
        self._backbone = [backbone]  # a list: not registered as a submodule (TunedModel owns it)
        self.parameter_names = selected_parameter_names(backbone, config.parts)

    def attach(self, backbone: nn.Module) -> None:
        params = dict(backbone.named_parameters())
        for name in self.parameter_names:
            params[name].requires_grad_(True)

    def trained_parameters(self) -> dict[str, nn.Parameter]:
        params = dict(self._backbone[0].named_parameters())
        return {name: params[name] for name in self.parameter_names}

    def export_state(self) -> dict[str, torch.Tensor]:
        return {name: p.detach().clone() for name, p in self.trained_parameters().items()}

    @torch.no_grad()
    def load_exported(self, state: dict[str, torch.Tensor]) -> None:
        params = self.trained_parameters()
        if set(state) != set(params):
            raise ValueError(
                f"finetune: the artifact holds {len(state)} parameters, this model trains {len(params)}; "
                f"missing {sorted(set(params) - set(state))[:5]}, unexpected {sorted(set(state) - set(params))[:5]}"
            )
        for name, value in state.items():
            params[name].copy_(value)
