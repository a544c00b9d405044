"""The base class of tuning methods and the helpers they share.

A method never subclasses a backbone. It changes the computation at four documented places of the
``SpeechSeq2Seq`` interface and nowhere else:

1. encoder features: ``extend_encoder_input`` may prepend prompt vectors (and extend the mask);
2. encoder layers: hooks on ``backbone.encoder_layers`` (deep prompts, adapters, LoRA);
3. decoder input embeddings: ``extend_decoder_input`` may prepend vectors;
4. decoder layers: hooks on ``backbone.decoder_layers``.

Per-task tables (leading dimension ``num_tasks``) are listed in ``task_tables``; the utterance's
``task_id`` picks its row by indexing, so a mixed-task batch costs one gather.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch import nn

from speechprompt.tuning.config import MethodConfig

# set in a backbone's __dict__ while a method's hooks are on it (names the method)
HOOK_MARK = "_speechprompt_hooks"


class TuningMethod(nn.Module):
    """Base class. Subclasses set ``config_class`` and override the hook points they need."""

    config_class: type[MethodConfig] = MethodConfig
    # names of parameters/buffers whose first dimension is the task (appended by add_task)
    task_tables: tuple[str, ...] = ()
    # True when the method can train on its own a per-task table (several tasks in one model)
    supports_tasks = False

    def __init__(self, config: MethodConfig, backbone: nn.Module) -> None:
        super().__init__()
        self.config = config
        self.encoder_dim, self.decoder_dim = backbone_dims(backbone)
        self._hooks: list[torch.utils.hooks.RemovableHandle] = []
        self._task_ids: torch.Tensor | None = None
        self._decoder_prompt_present = False
        self.generator = torch.Generator().manual_seed(config.seed)

    # ---- hook points (defaults: no change) ----
    def attach(self, backbone: nn.Module) -> None:
        """Install hooks on the backbone (called once by TunedModel)."""

    def extend_encoder_input(
        self, features: torch.Tensor, mask: torch.Tensor, task_ids: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """features (B,T,D), mask (B,T) bool, task_ids (B,) -> (B,T',D), (B,T')."""
        return features, mask

    @property
    def decoder_prefix_len(self) -> int:
        """Number of positions ``extend_decoder_input`` prepends (their logits are dropped)."""
        return 0

    def extend_decoder_input(self, embeds: torch.Tensor, task_ids: torch.Tensor) -> torch.Tensor:
        """embeds (B,L,Dd) -> (B,decoder_prefix_len+L,Dd)."""
        return embeds

    def aux_losses(self) -> dict[str, torch.Tensor]:
        """Extra loss terms of the last forward, already weighted; summed into the loss."""
        return {}

    # ---- saving ----
    def export_state(self) -> dict[str, torch.Tensor]:
        """What the artifact stores: final tables, no training-time reparameterisation."""
        return {name: tensor.detach().clone() for name, tensor in self.state_dict().items()}

    def load_exported(self, state: dict[str, torch.Tensor]) -> None:
        self.load_state_dict(state, strict=True)

    def exported_config(self) -> MethodConfig:
        """The config that rebuilds the exported state (e.g. with reparameterisation folded)."""
        return self.config

    def append_tasks(self, state: dict[str, torch.Tensor]) -> None:
        """Append the task rows of another artifact of the same method (see TunedModel.add_task)."""
        if not self.task_tables:
            raise ValueError(f"method '{self.config.method}' keeps no per-task table, so it holds one task only")
        mine = self.export_state()
        for name, theirs in state.items():
            if name not in self.task_tables and not torch.equal(mine[name], theirs):
                raise ValueError(f"{self.config.method}: shared tensor '{name}' differs between the tasks")
        for name in self.task_tables:
            current = getattr(self, name)
            if current.shape[1:] != state[name].shape[1:]:
                raise ValueError(
                    f"{self.config.method}: table '{name}' has shape {tuple(current.shape[1:])} per task here "
                    f"but {tuple(state[name].shape[1:])} in the added task; train both with the same sizes"
                )
            joined = torch.cat([current.detach(), state[name].to(current.device, current.dtype)], dim=0)
            if isinstance(current, nn.Parameter):
                setattr(self, name, nn.Parameter(joined, requires_grad=current.requires_grad))
            else:
                self.register_buffer(name, joined)

    # ---- helpers for subclasses ----
    def uniform(self, *shape: int, bound: float) -> torch.Tensor:
        """Seeded uniform(-bound, bound) tensor (float32)."""
        return (torch.rand(*shape, generator=self.generator) * 2 - 1) * bound

    @contextlib.contextmanager
    def task_scope(self, task_ids: torch.Tensor, decoder_prompt_present: bool = False) -> Iterator[None]:
        """Make the batch's task ids visible to layer hooks for the duration of a backbone call."""
        self._task_ids, self._decoder_prompt_present = task_ids, decoder_prompt_present
        try:
            yield
        finally:
            self._task_ids, self._decoder_prompt_present = None, False

    def add_hook(self, handle: torch.utils.hooks.RemovableHandle) -> None:
        self._hooks.append(handle)

    def install(self, backbone: nn.Module) -> None:
        """``attach`` with a guard: two methods' hooks on one backbone would silently stack."""
        holder = backbone.__dict__.get(HOOK_MARK)
        if holder is not None:
            raise ValueError(
                f"this backbone already carries the hooks of a '{holder}' TunedModel; call that model's "
                "release() first, or build on copy.deepcopy(backbone)"
            )
        self.attach(backbone)
        if self._hooks:
            backbone.__dict__[HOOK_MARK] = self.config.method
            self._hooked = [backbone]  # a list: not registered as a submodule

    def detach_hooks(self) -> None:
        """Remove this method's hooks from the backbone (the backbone computes as before again)."""
        for handle in self._hooks:
            handle.remove()
        self._hooks.clear()
        for backbone in getattr(self, "_hooked", []):
            backbone.__dict__.pop(HOOK_MARK, None)
        self._hooked = []


def backbone_dims(backbone: nn.Module) -> tuple[int, int]:
    """(encoder feature size D, decoder embedding size Dd) of a SpeechSeq2Seq backbone."""
    enc = getattr(backbone, "encoder_dim", None)
    dec = getattr(backbone, "decoder_dim", None)
    if enc is None or dec is None:
        with torch.no_grad():
            if dec is None:
                dec = backbone.embed_tokens(torch.zeros(1, 1, dtype=torch.long)).shape[-1]
            if enc is None:
                wave = torch.zeros(1, 16000)
                enc = backbone.embed_audio(wave, torch.tensor([16000]))[0].shape[-1]
    return int(enc), int(dec)


def replace_hidden_pre_hook(replacement: Callable[[torch.Tensor], torch.Tensor | None], module: nn.Module,
                            args: tuple, kwargs: dict):
    """Forward pre-hook (with_kwargs=True) passing a layer's hidden states through ``replacement``.

    Register ``functools.partial(replace_hidden_pre_hook, bound_method)``: partials of bound methods
    survive ``copy.deepcopy`` of the model (closures would keep pointing at the original). The
    hidden states are the first positional argument or the ``hidden_states`` keyword, as in every
    transformers layer; ``replacement`` returning None leaves the call unchanged.
    """
    positional = len(args) > 0
    hidden = args[0] if positional else kwargs.get("hidden_states")
    if hidden is None:
        raise TypeError(f"{type(module).__name__}: no hidden states found (first argument or 'hidden_states')")
    new = replacement(hidden)
    if new is None:
        return None
    if positional:
        return (new, *args[1:]), kwargs
    kwargs["hidden_states"] = new
    return args, kwargs


def replace_output_hook(change: Callable[[torch.Tensor], torch.Tensor], module: nn.Module, args: tuple, output):
    """Forward hook changing a module's output tensor (the first element when it is a tuple).

    Register ``functools.partial(replace_output_hook, bound_method_or_module)``.
    """
    if isinstance(output, tuple):
        return (change(output[0]), *output[1:])
    return change(output)


def select_layers(layers: nn.ModuleList, chosen: list[int] | None, what: str, method: str) -> list[int]:
    """Indices of the chosen layers (None = all); negative indices count from the end."""
    count = len(layers)
    if chosen is None:
        return list(range(count))
    picked = []
    for index in chosen:
        if not -count <= index < count:
            raise ValueError(f"{method}: {what} layer {index} does not exist; the backbone has {count} (0..{count - 1})")
        picked.append(index % count)
    return sorted(set(picked))
