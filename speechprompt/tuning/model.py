"""TunedModel: a frozen SpeechSeq2Seq backbone plus one tuning method.

The backbone's weights never change (except what the method trains on purpose: a re-initialised
vocabulary, or the parts named by ``finetune``). Everything the decoder, the trainer and the
transcriber need goes through ``forward``, ``encode`` and ``decode_step``.
``build_tuned_model`` makes one; ``load_task`` rebuilds one from a saved task artifact.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from speechprompt.tuning.artifact import (
    ArtifactError,
    add_task,
    backbone_name,
    check_fingerprint,
    load_vocab,
    read_artifact,
    save_artifact,
    split_state,
)
from speechprompt.tuning.artifact_reader import META, TENSORS
from speechprompt.tuning.base import TuningMethod
from speechprompt.tuning.config import MethodConfig
from speechprompt.tuning.registry import make_config, method_entry


@dataclass
class EncoderOutput:
    """hidden (B,T',D) encoder output (prompt positions included), mask (B,T') bool, True = valid."""

    hidden: torch.Tensor
    mask: torch.Tensor

    def index_select(self, index: torch.Tensor) -> EncoderOutput:
        return EncoderOutput(self.hidden.index_select(0, index), self.mask.index_select(0, index))


@dataclass
class ModelOutput:
    """loss (scalar) = cross-entropy + the method's weighted terms; logits (B,L,V); aux: named terms."""

    loss: torch.Tensor
    logits: torch.Tensor
    aux: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class ParameterReport:
    method: str
    trainable: int
    backbone: int
    parts: dict[str, int]

    @property
    def share(self) -> float:
        """Trainable parameters as a fraction of the backbone's."""
        return self.trainable / self.backbone

    def __str__(self) -> str:
        parts = ", ".join(f"{name} {count:,}" for name, count in self.parts.items())
        return (
            f"{self.method}: {self.trainable:,} trainable parameters = {100 * self.share:.4f}% of the "
            f"backbone's {self.backbone:,} ({parts})"
        )



def suppressed_among(ids: Iterable[int], backbone) -> list[int]:
    """The ids among ``ids`` that the backbone's checkpoint list suppresses (sorted): what a task that writes
    them needs as its ``unsuppressed_ids``."""
    return sorted(set(ids) & set(getattr(backbone, "suppress_ids", ())))

class TunedModel(nn.Module):
    def __init__(
        self, backbone: nn.Module, method_class: type[TuningMethod], config: MethodConfig, fingerprint: str | None = None
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.config = config
        self.method_name = config.method
        self.task_names = list(config.tasks)
        self.backbone_fingerprint = fingerprint or backbone.fingerprint()  # hashes every weight: pass it if known
        self.backbone_parameters = sum(p.numel() for p in backbone.parameters())
        backbone.requires_grad_(False)
        self.vocab_parameter_names = self._resize_vocab(config.vocab_size) + self._add_ctc_head(config.ctc_weight)
        # special ids: the config's when given, else the backbone's (read after a vocabulary resize)
        self.bos_id, self.eos_id, self.pad_id = (
            getattr(backbone, name) if getattr(config, name) is None else getattr(config, name)
            for name in ("bos_id", "eos_id", "pad_id")
        )
        self.method = method_class(config, backbone)
        self.method.install(backbone)
        # decoder input before the text, one per task (a Whisper checkpoint's language differs per task)
        prefix = list(config.task_prefix) if config.task_prefix else [self.bos_id]
        self.task_prefixes = [list(prefix) for _ in self.task_names]
        # buffers, so that model.to(device) moves them once instead of a copy at every decoding step
        never, first = self._suppressed_ids(config.suppress_specials)
        self.register_buffer("suppress_ids", never, persistent=False)
        self.register_buffer("begin_suppress_ids", first, persistent=False)
        self.encoder_cache = None  # training.encoder_cache.EncoderOutputCache, set while training may use it

    def _suppressed_ids(self, suppress_specials: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(never generated, not generated as the first token): long tensors of token ids.

        The backbone names its checkpoint's own lists (Whisper's generation config); a released
        checkpoint's tokenizer adds every id above EOS (special and timestamp tokens).
        """
        vocab = int(getattr(self.backbone, "vocab_size", 0))
        # the checkpoint's list, less what this task was trained to write
        never = set(getattr(self.backbone, "suppress_ids", ())) - set(self.config.unsuppressed_ids or ())
        if suppress_specials:
            never.update(range(self.eos_id + 1, vocab))
        first = set(getattr(self.backbone, "begin_suppress_ids", ()))
        return (torch.tensor(sorted(i for i in never if i < vocab), dtype=torch.long),
                torch.tensor(sorted(i for i in first if i < vocab), dtype=torch.long))

    @property
    def prefix_len(self) -> int:
        """Length P of every task's decoder prefix (they must agree: one batch, one tensor)."""
        return len(self.task_prefixes[0])

    def prefix_ids(self, task_ids: torch.Tensor) -> torch.Tensor:
        """task_ids (B,) -> (B,P) the decoder prefix of each row's task."""
        table = torch.tensor(self.task_prefixes, dtype=torch.long, device=task_ids.device)
        return table[task_ids]

    def set_task_prefix(self, task: str, prefix: list[int]) -> None:
        """Give one task another decoder prefix (e.g. another language token) of the same length."""
        if len(prefix) != self.prefix_len:
            raise ValueError(f"task '{task}': a decoder prefix of {len(prefix)} ids cannot join tasks whose prefixes "
                             f"have {self.prefix_len}")
        self.task_prefixes[self.task_id(task)] = list(prefix)

    def _resize_vocab(self, vocab_size: int | None) -> list[str]:
        """Re-initialise the decoder vocabulary when the target one differs; returns the new parameter names."""
        current = getattr(self.backbone, "vocab_size", None)
        if vocab_size is None or vocab_size == current:
            return []
        # hold the old parameters while resizing: compared by id() alone, a new tensor could take a freed old
        # one's address (and id) and be left out of the saved artifact (seen in 1 run of 21)
        before = dict(self.backbone.named_parameters())
        self.backbone.resize_vocab(vocab_size)
        names = [name for name, p in self.backbone.named_parameters() if before.get(name) is not p]
        del before
        if not names:
            raise RuntimeError(f"backbone.resize_vocab({vocab_size}) created no new parameters")
        params = dict(self.backbone.named_parameters())
        for name in names:
            params[name].requires_grad_(True)
        return names

    def _add_ctc_head(self, ctc_weight: float) -> list[str]:
        """A fresh CTC head when CTC is trained and the backbone has none; returns its parameter names."""
        if ctc_weight <= 0 or getattr(self.backbone, "ctc_head", True) is not None:
            return []
        head = self.backbone.add_ctc_head().requires_grad_(True)
        return [f"ctc_head.{name}" for name, _ in head.named_parameters()]

    # ---- the model ----
    def encode(self, waveforms: torch.Tensor, wave_lengths: torch.Tensor, task_ids: torch.Tensor) -> EncoderOutput:
        """waveforms (B,S) float, wave_lengths (B,) long, task_ids (B,) long -> EncoderOutput."""
        if len(task_ids) and not 0 <= int(task_ids.min()) <= int(task_ids.max()) < len(self.task_names):
            raise ValueError(f"task ids {task_ids.tolist()} out of range: this model holds tasks {self.task_names}")
        features, mask = self.backbone.embed_audio(waveforms, wave_lengths)
        features, mask = self.method.extend_encoder_input(features, mask, task_ids)
        with self.method.task_scope(task_ids):
            hidden = self.backbone.run_encoder(features, mask)
        return EncoderOutput(hidden, mask)

    def decode(self, enc: EncoderOutput, input_ids: torch.Tensor, cache, task_ids: torch.Tensor):
        """input_ids (B,L): the whole prefix when cache is None, else the new tokens -> logits (B,L,V), cache."""
        embeds = self.backbone.embed_tokens(input_ids)
        prompt_len = 0
        if cache is None:
            embeds = self.method.extend_decoder_input(embeds, task_ids)
            prompt_len = self.method.decoder_prefix_len
        with self.method.task_scope(task_ids, decoder_prompt_present=prompt_len > 0):
            logits, cache = self.backbone.run_decoder(embeds, enc.hidden, enc.mask, cache)
        return logits[:, prompt_len:], cache

    def forward(self, batch) -> ModelOutput:
        """Teacher forcing: decoder input = BOS + targets[:, :-1]; batch is a data.dataset.Batch."""
        if self.encoder_cache is not None:
            enc = self.encoder_cache.encode(self, batch)
        else:
            enc = self.encode(batch.waveforms, batch.wave_lengths, batch.task_ids)
        targets = batch.targets
        logits = self.teacher_forced_logits(enc, targets, batch.task_ids)
        ce = F.cross_entropy(
            logits.float().transpose(1, 2),
            targets,
            ignore_index=self.pad_id,
            label_smoothing=self.config.label_smoothing,
        )
        aux = {"ce": ce.detach()}
        loss = ce
        weight = self.config.ctc_weight
        if weight > 0:
            ctc = self.ctc_loss(enc, targets)
            loss = (1 - weight) * ce + weight * ctc
            aux["ctc"] = ctc.detach()
        extra = self.method.aux_losses()
        loss = loss + sum(extra.values()) if extra else loss
        return ModelOutput(loss=loss, logits=logits, aux={**aux, **extra})

    def teacher_forced_logits(self, enc: EncoderOutput, targets: torch.Tensor, task_ids: torch.Tensor) -> torch.Tensor:
        """targets (B,L) (EOS included) -> logits (B,L,V) with decoder input prefix (B,P) + targets[:, :-1].

        Only the text and EOS are predicted: the logits of the first P-1 prefix positions are dropped.
        """
        prefix = self.prefix_ids(task_ids)
        logits, _ = self.decode(enc, torch.cat([prefix, targets[:, :-1]], dim=1), None, task_ids)
        return logits[:, prefix.shape[1] - 1:]

    def ctc_loss(self, enc: EncoderOutput, targets: torch.Tensor) -> torch.Tensor:
        """Mean per-token CTC loss of targets (B,L) (EOS and padding dropped) over the encoder output.

        Prompt positions stay in the encoder sequence: CTC learns to emit blanks there.
        """
        log_probs = self.backbone.ctc_log_probs(enc.hidden)  # (B,T',V) float32
        tokens = (targets != self.pad_id) & (targets != self.eos_id)
        return F.ctc_loss(
            log_probs.transpose(0, 1),
            targets[tokens],
            enc.mask.sum(1),
            tokens.sum(1),
            blank=self.pad_id,
            reduction="mean",
            zero_infinity=True,  # a target longer than its frames contributes no gradient instead of inf
        )

    def decode_step(self, enc: EncoderOutput, prefix_ids: torch.Tensor, cache, task_ids: torch.Tensor):
        """prefix_ids (B,L) starting with the task prefix -> log-probabilities of the next token (B,V), new cache.

        Suppressed ids get -inf before the softmax (``begin_suppress_ids`` only at the first text position).
        """
        new_ids = prefix_ids if cache is None else prefix_ids[:, -1:]
        logits, cache = self.decode(enc, new_ids, cache, task_ids)
        logits = logits[:, -1].float()
        if self.suppress_ids.numel():
            logits[:, self.suppress_ids] = float("-inf")
        if self.begin_suppress_ids.numel() and prefix_ids.shape[1] == self.prefix_len:
            logits[:, self.begin_suppress_ids] = float("-inf")
        return logits.log_softmax(-1), cache

    def reorder_cache(self, cache, index: torch.Tensor, cross: bool = True):
        """Select rows ``index`` (N,) of every cached tensor (beam search); ``cross=False``: only the decoder's
        self-attention (see ``Backbone.reorder_cache``)."""
        if hasattr(self.backbone, "reorder_cache"):
            return self.backbone.reorder_cache(cache, index, cross=cross)
        if hasattr(cache, "reorder_cache"):  # transformers Cache objects reorder in place
            cache.reorder_cache(index)
            return cache
        if isinstance(cache, torch.Tensor):
            return cache.index_select(0, index)
        if isinstance(cache, list | tuple):
            return type(cache)(self.reorder_cache(item, index) for item in cache)
        if cache is None:
            return None
        raise TypeError(f"cannot reorder a decoder cache of type {type(cache).__name__}")

    def release(self) -> nn.Module:
        """Take the method's hooks off the backbone and return it (e.g. to wrap it with another method)."""
        self.method.detach_hooks()
        return self.backbone

    # ---- bookkeeping ----
    def task_id(self, name: str) -> int:
        if name not in self.task_names:
            raise KeyError(f"task '{name}' is not loaded; loaded tasks: {self.task_names}")
        return self.task_names.index(name)

    def init_from_features(self, features: torch.Tensor, mask: torch.Tensor, task_id: int | None = None) -> None:
        """Start prompts from real encoder features (methods that support it: prompt)."""
        if not hasattr(self.method, "init_from_features"):
            raise ValueError(f"method '{self.method_name}' has no initialisation from features")
        self.method.init_from_features(features, mask, task_id)

    def encoder_parameter_names(self) -> list[str]:
        """The backbone encoder's weights, named as in ``self.named_parameters()`` (optim.freeze_encoder_steps)."""
        return [f"backbone.{name}" for name in self.backbone.encoder_parameter_names()]

    def parameter_report(self) -> ParameterReport:
        parts: dict[str, int] = {}
        vocab = set(self.vocab_parameter_names)
        for name, param in self.named_parameters():
            if not param.requires_grad:
                continue
            short = name.removeprefix("backbone.")
            part = "vocabulary" if short in vocab else ("backbone" if name.startswith("backbone.") else self.method_name)
            parts[part] = parts.get(part, 0) + param.numel()
        return ParameterReport(self.method_name, sum(parts.values()), self.backbone_parameters, parts)

    def save_artifact(self, directory, tokenizer_dir=None, output=None) -> None:
        """Write safetensors + task.json to ``directory`` (see artifact.py); ``output``: "asr" or "slu"."""
        save_artifact(self, directory, tokenizer_dir, output)

    def add_task(self, name: str, artifact_dir) -> int:
        """Load another saved task of the same method next to the ones held; returns its task id."""
        return add_task(self, name, artifact_dir)


def build_tuned_model(
    backbone: nn.Module,
    method: str | MethodConfig,
    config: MethodConfig | dict | None = None,
    fingerprint: str | None = None,
) -> TunedModel:
    """``build_tuned_model(backbone, PromptConfig(...))`` or ``build_tuned_model(backbone, "prompt", {...})``."""
    if isinstance(method, MethodConfig):
        config, method = method, method.method
    if not isinstance(config, MethodConfig):
        config = make_config(method, config)
    config_class, method_class = method_entry(method)
    if not isinstance(config, config_class):
        raise TypeError(f"method '{method}' needs a {config_class.__name__}, got {type(config).__name__}")
    if config.num_tasks > 1 and not method_class.supports_tasks:
        raise ValueError(f"method '{method}' holds one task only; got tasks={config.tasks}")
    return TunedModel(backbone, method_class, config, fingerprint)


def load_task(artifact_dir: str | Path, backbone, trainable: bool = False) -> TunedModel:
    """Rebuild a TunedModel from an artifact; ``trainable=True`` continues training from it."""
    directory = Path(artifact_dir)
    meta, state = read_artifact(directory)
    fingerprint = backbone.fingerprint()
    check_fingerprint(directory, meta, backbone_name(backbone), fingerprint)
    values = dict(meta["config"])
    if "init" in values:  # the saved table replaces any initialisation
        values["init"] = "uniform"
        if "init_artifact" in values:
            values["init_artifact"] = None
    try:
        model = build_tuned_model(backbone, make_config(meta["method"], values), fingerprint=fingerprint)
    except ValueError as err:  # ConfigError and the methods' own checks
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ArtifactError(f"{directory / META}: its '{meta['method']}' settings do not build a model: {first}") from err
    method_state, vocab_state = split_state(state)
    try:
        load_vocab(model, vocab_state, directory)
        model.method.load_exported(method_state)
    except ArtifactError:
        model.method.detach_hooks()
        raise
    except (RuntimeError, KeyError, ValueError) as err:
        model.method.detach_hooks()
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ArtifactError(f"{directory / TENSORS}: its tables do not fit the '{meta['method']}' model that "
                            f"{META} describes ({first}); the two files come from different artifacts") from err
    model.artifact_meta = meta
    if not trainable:
        model.requires_grad_(False)
        model.eval()
    return model
