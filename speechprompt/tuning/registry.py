"""The one place where method names map to their config and implementation."""

from __future__ import annotations

from typing import Any

from speechprompt.tuning.adapter import Adapter, AdapterConfig
from speechprompt.tuning.base import TuningMethod
from speechprompt.tuning.config import ConfigError, MethodConfig
from speechprompt.tuning.decoder_prompt import DecoderPromptConfig, DecoderPromptTuning
from speechprompt.tuning.deep_prompt import DeepPromptConfig, DeepPromptTuning
from speechprompt.tuning.finetune import Finetune, FinetuneConfig
from speechprompt.tuning.lora import LoRA, LoRAConfig
from speechprompt.tuning.mept import MEPT, MEPTConfig
from speechprompt.tuning.prompt import PromptConfig, PromptTuning
from speechprompt.tuning.ulpt import ULPT, ULPTConfig
from speechprompt.tuning.zero_shot import ZeroShot, ZeroShotConfig

METHODS: dict[str, tuple[type[MethodConfig], type[TuningMethod]]] = {
    "prompt": (PromptConfig, PromptTuning),
    "deep_prompt": (DeepPromptConfig, DeepPromptTuning),
    "decoder_prompt": (DecoderPromptConfig, DecoderPromptTuning),
    "ulpt": (ULPTConfig, ULPT),
    "mept": (MEPTConfig, MEPT),
    "lora": (LoRAConfig, LoRA),
    "adapter": (AdapterConfig, Adapter),
    "finetune": (FinetuneConfig, Finetune),
    "zero_shot": (ZeroShotConfig, ZeroShot),
}
# methods that train something (zero_shot is the untouched backbone, a reference row)
TRAINED_METHODS: tuple[str, ...] = tuple(name for name in METHODS if name != "zero_shot")


def method_entry(name: str) -> tuple[type[MethodConfig], type[TuningMethod]]:
    if name not in METHODS:
        raise ConfigError(f"unknown tuning method '{name}'; choose one of {sorted(METHODS)}")
    return METHODS[name]


def make_config(name: str, values: dict[str, Any] | None = None) -> MethodConfig:
    """The config of method ``name`` from a plain dict (e.g. a YAML section); unknown keys are errors."""
    config_class, _ = method_entry(name)
    return config_class.from_dict(dict(values or {}))
