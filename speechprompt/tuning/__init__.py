"""Tuning methods for frozen speech encoder-decoders, one file per method.

``build_tuned_model(backbone, config)`` wraps a SpeechSeq2Seq backbone with a method from
``registry.METHODS``; ``load_task(artifact_dir, backbone)`` rebuilds one from a saved artifact.
"""

from speechprompt.tuning.artifact import ArtifactError, read_artifact, save_artifact
from speechprompt.tuning.config import ConfigError, MethodConfig
from speechprompt.tuning.model import (
    EncoderOutput,
    ModelOutput,
    ParameterReport,
    TunedModel,
    build_tuned_model,
    load_task,
)
from speechprompt.tuning.registry import METHODS, make_config

__all__ = [
    "METHODS",
    "ArtifactError",
    "ConfigError",
    "EncoderOutput",
    "MethodConfig",
    "ModelOutput",
    "ParameterReport",
    "TunedModel",
    "build_tuned_model",
    "load_task",
    "make_config",
    "read_artifact",
    "save_artifact",
]
