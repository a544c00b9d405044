"""Zero-shot: the backbone exactly as pretrained, nothing trained.

The reference row for a backbone that already speaks the target vocabulary (e.g. one pretrained
with transcripts): it shows what adaptation adds. Its artifact holds no tensors, only the config,
the backbone fingerprint and the tokenizer, so it decodes through the same commands as every method.
A target vocabulary other than the backbone's would need a new, untrained output layer: refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import nn

from speechprompt.tuning.base import TuningMethod
from speechprompt.tuning.config import ConfigError, MethodConfig


@dataclass
class ZeroShotConfig(MethodConfig):
    method: ClassVar[str] = "zero_shot"


class ZeroShot(TuningMethod):
    """Holds no parameters and changes nothing."""

    config_class = ZeroShotConfig

    def __init__(self, config: ZeroShotConfig, backbone: nn.Module) -> None:
        # TunedModel re-initialises (and unfreezes) the vocabulary before building the method when
        # the target vocabulary differs from the backbone's: an untrained output layer decodes nothing.
        if any(p.requires_grad for p in backbone.parameters()):
            raise ConfigError(
                f"zero_shot: the target vocabulary ({config.vocab_size} ids) is not the backbone's own; "
                "zero-shot decoding needs the backbone's tokenizer (e.g. <backbone>/tokenizer)"
            )
        super().__init__(config, backbone)
