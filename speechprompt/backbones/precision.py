"""Numeric formats a frozen backbone serves in: float32, bfloat16 autocast, int8 dynamic quantisation.

- ``fp32``: as trained.
- ``bf16``: the ops autocast lowers (matmuls, linear layers, convolutions) run in bfloat16 under
  ``torch.autocast``; every weight and every task table (prompts, LoRA, adapters) stays float32 in
  memory and is cast where it is used, so one artifact file serves every precision.
- ``int8``: the backbone's own ``nn.Linear`` layers (attention projections, feed-forward layers,
  the output projection) are replaced by dynamically quantised ones
  (``torch.ao.quantization.quantize_dynamic``: int8 weights with one scale per output row,
  activations quantised per call); CPU only. What a task adds lives outside ``backbone.model``
  (prompt tables, deep prompts, LoRA updates, adapters, a CTC head) and stays float32. Forward
  hooks on a replaced Linear (LoRA's update, an adapter on ``fc2``) are carried over to its
  replacement by ``quantize_dynamic``. Quantise only after the task artifacts are loaded: loading
  checks the backbone's fingerprint, which hashes the float weights. The activations' int8 scale is
  taken per call over the whole input tensor (PyTorch's dynamic quantisation has no per-row scale),
  so under int8, unlike fp32 and bf16, an utterance's output can change with the batch it is decoded
  in; CTranslate2's int8 scales each row on its own.
"""

from __future__ import annotations

import contextlib
import warnings

import torch
from torch import nn

PRECISIONS = ("fp32", "bf16", "int8")
# the older --dtype spelling
DTYPE_PRECISION = {"float32": "fp32", "bfloat16": "bf16"}


def check_precision(precision: str, device: str | torch.device = "cpu") -> str:
    """``precision`` (or its older dtype name) checked against the device; returns the short name."""
    precision = DTYPE_PRECISION.get(precision, precision)
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if precision == "int8" and torch.device(device).type != "cpu":
        raise ValueError(f"precision int8 (dynamic quantisation) runs on the CPU only, not on {device}; "
                         "use bf16 on a GPU")
    return precision


def autocast(precision: str, device: str | torch.device = "cpu"):
    """The context decoding runs in: bfloat16 autocast for ``bf16``, nothing otherwise."""
    if precision != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)


def quantize_int8(backbone: nn.Module) -> int:
    """Replace the nn.Linear layers of ``backbone.model`` by int8 dynamic ones, in place; returns how many.

    ``backbone.ctc_head`` (outside ``backbone.model``) and every tuning method's modules are left float32.
    """
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    model = backbone.model
    count = sum(isinstance(m, nn.Linear) for m in model.modules())
    with warnings.catch_warnings():  # deprecated in favour of torchao, which this project does not depend on
        warnings.simplefilter("ignore", DeprecationWarning)
        quantize_dynamic(model, {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True)
    return count


def quantized_linear_count(module: nn.Module) -> int:
    """How many int8 dynamic Linear layers ``module`` holds."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    return sum(isinstance(m, DynamicLinear) for m in module.modules())
