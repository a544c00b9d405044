"""optim.freeze_encoder_steps: the encoder's trained weights held fixed for the first N steps (fairseq's
freeze_finetune_updates), e.g. while a fresh decoder learns to read a pretrained encoder."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import nn


def encoder_freeze(model: nn.Module, params: Sequence[tuple[str, nn.Parameter]], steps: int, ddp_strict: bool
                   ) -> Callable[[int, Callable], None]:
    """``f(step, log)``, called before each step: the encoder's trained weights take no gradient (so no
    update, no weight decay, no backward pass through the encoder) while ``step < steps`` (always for
    -1). They stay in the optimizer and in every checkpoint, so a resumed run continues either side."""
    if steps == 0:
        return lambda step, log: None
    if not hasattr(model, "encoder_parameter_names"):
        raise ValueError("optim.freeze_encoder_steps: this model does not name its encoder's parameters")
    encoder = set(model.encoder_parameter_names())
    frozen = [p for n, p in params if n in encoder]
    if not frozen:
        return lambda step, log: None  # the method trains nothing in the encoder
    if ddp_strict:
        raise ValueError("optim.freeze_encoder_steps under torchrun needs experiment.ddp_find_unused=true "
                         "(the encoder's weights get no gradient while frozen)")
    state = {"trained": None}

    def apply(step: int, log) -> None:
        trained = steps >= 0 and step >= steps
        if trained != state["trained"]:
            for p in frozen:
                p.requires_grad_(trained)
            count = sum(p.numel() for p in frozen)
            until = "throughout" if steps < 0 else f"until step {steps}"
            log(f"step {step + 1}: the encoder's {count:,} weights are "
                + ("trained from now on" if trained else f"fixed {until}"))
            state["trained"] = trained

    return apply
