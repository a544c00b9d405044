"""Configuration shared by every tuning method.

Each method has a dataclass config deriving from :class:`MethodConfig`. Every field carries its
help text in ``metadata["help"]`` (the command line and ``describe_config`` show it) and
``__post_init__`` checks say what to fix.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar


def option(default: Any, help: str, **kwargs: Any) -> Any:
    """A dataclass field with help text; list defaults are copied per instance."""
    if isinstance(default, list | dict):
        return field(default_factory=lambda d=default: type(d)(d), metadata={"help": help}, **kwargs)
    return field(default=default, metadata={"help": help}, **kwargs)


class ConfigError(ValueError):
    """A method configuration that cannot work; the message says which field and what to fix."""


@dataclass
class MethodConfig:
    """Fields every method understands."""

    method: ClassVar[str] = ""
    # Fields that must agree between task artifacts held by one TunedModel (besides tensor shapes).
    task_compatible_fields: ClassVar[tuple[str, ...]] = ()

    tasks: list[str] = option(
        ["default"],
        "names of the task prompts this model holds; an utterance's task_id indexes this list "
        "(prompt-type methods only may hold more than one)",
    )
    vocab_size: int | None = option(
        None,
        "target vocabulary size; when it differs from the backbone's, the decoder token embedding and "
        "output layer are re-initialised, trained and saved with the task",
    )
    label_smoothing: float = option(0.0, "label smoothing of the teacher-forced cross-entropy (0 = none)")
    ctc_weight: float = option(
        0.0,
        "weight w of the CTC loss on the encoder output: loss = (1-w) cross-entropy + w CTC (0 = attention only); "
        "a backbone without a CTC head gets a fresh one, trained and saved with the task",
    )
    seed: int = option(0, "seed of the random initialisation of the method's parameters")
    bos_id: int | None = option(None, "decoder start token id; None = the backbone's (speechprompt tokenizers: 1)")
    eos_id: int | None = option(None, "end-of-sentence token id; None = the backbone's (speechprompt tokenizers: 2)")
    pad_id: int | None = option(None, "padding id of the targets, ignored by the loss; None = the backbone's (0)")
    task_prefix: list[int] | None = option(
        None, "decoder input before the text, e.g. a Whisper checkpoint's <|startoftranscript|><|lang|><|transcribe|>"
        "<|notimestamps|> ids (set from its tokenizer); None = [bos_id]")
    suppress_specials: bool = option(
        False, "never generate an id above eos_id (a released checkpoint's special and timestamp tokens)")
    unsuppressed_ids: list[int] | None = option(
        None, "ids the training targets use that the checkpoint's own list suppresses (set at training): a task "
        "may write them, e.g. the '_', '|', '[', ':' of slot-filling targets, which Whisper never generates")

    def __post_init__(self) -> None:
        if not self.tasks:
            raise ConfigError(f"{self.method}: 'tasks' is empty; give at least one task name, e.g. ['default']")
        if len(set(self.tasks)) != len(self.tasks):
            raise ConfigError(f"{self.method}: task names repeat in {self.tasks}; make them unique")
        if self.vocab_size is not None and self.vocab_size < 4:
            raise ConfigError(f"{self.method}: vocab_size={self.vocab_size} is too small (the 4 special ids need room)")
        if not 0.0 <= self.ctc_weight < 1.0:
            raise ConfigError(f"{self.method}: ctc_weight={self.ctc_weight} must be in [0, 1) (the decoder must train too)")
        if self.task_prefix is not None and not self.task_prefix:
            raise ConfigError(f"{self.method}: task_prefix is empty; give at least the start token or null")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"{self.method}: label_smoothing={self.label_smoothing} must be in [0, 1)")

    @property
    def num_tasks(self) -> int:
        return len(self.tasks)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> MethodConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{cls.method}: unknown option(s) {unknown}; known options are {sorted(known)}")
        return cls(**values)

    @classmethod
    def describe(cls) -> str:
        """One line per option: name, default and help text."""
        lines = [f"{cls.method} options:"]
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            lines.append(f"  {f.name} (default {default!r}): {f.metadata.get('help', '')}")
        return "\n".join(lines)


def check_positive(config: MethodConfig, **values: int | float) -> None:
    for name, value in values.items():
        if value <= 0:
            raise ConfigError(f"{config.method}: {name}={value} must be positive")


def check_choice(config: MethodConfig, name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{config.method}: {name}={value!r} is not one of {list(choices)}")
