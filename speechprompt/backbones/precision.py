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
- ``int8-decoder``: the same for every Linear layer but the encoder's (decoder and output projection), the
  encoder in float32. Prompts that live in the encoder lose less there: on whisper-tiny.en, an int8 encoder
  costs ULPT 1.0-1.6 WER points and an int8 decoder -0.7 to +0.7 (docs/benchmarks.md), while on short
  utterances encoded on their true length most of decoding's time is in the decoder.
"""

from __future__ import annotations

import contextlib
import warnings

import torch
from torch import nn

PRECISIONS = ("fp32", "bf16", "int8", "int8-decoder")
# int8 formats -> whether the encoder's Linear layers are quantised too
INT8_ENCODER = {"int8": True, "int8-decoder": False}
# the older --dtype spelling
DTYPE_PRECISION = {"float32": "fp32", "bfloat16": "bf16"}


def check_precision(precision: str, device: str | torch.device = "cpu") -> str:
    """``precision`` (or its older dtype name) checked against the device; returns the short name."""
    precision = DTYPE_PRECISION.get(precision, precision)
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if precision in INT8_ENCODER and torch.device(device).type != "cpu":
        raise ValueError(f"precision int8 (dynamic quantisation) runs on the CPU only, not on {device}; "
                         "use bf16 on a GPU")
    return precision


def autocast(precision: str, device: str | torch.device = "cpu"):
    """The context decoding runs in: bfloat16 autocast for ``bf16``, nothing otherwise."""
    if precision != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)


def quantize_int8(backbone: nn.Module, encoder: bool = True) -> int:
    """Replace the nn.Linear layers of ``backbone.model`` by int8 dynamic ones, in place; returns how many.

    ``encoder=False`` leaves the encoder's layers float32 (``int8-decoder``). ``backbone.ctc_head`` (outside
    ``backbone.model``) and every tuning method's modules are left float32.
    """
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    model = backbone.model
    kept = set()
    if not encoder:
        if not hasattr(model, "get_encoder"):
            raise ValueError(f"int8-decoder: a {type(model).__name__} has no get_encoder() to tell its encoder apart")
        kept = {id(m) for m in model.get_encoder().modules()}
    names = [name for name, m in model.named_modules() if isinstance(m, nn.Linear) and id(m) not in kept]
    with warnings.catch_warnings():  # deprecated in favour of torchao, which this project does not depend on
        warnings.simplefilter("ignore", DeprecationWarning)
        quantize_dynamic(model, dict.fromkeys(names, per_channel_dynamic_qconfig), dtype=torch.qint8, inplace=True)
    return len(names)


def quantized_linear_count(module: nn.Module) -> int:
    """How many int8 dynamic Linear layers ``module`` holds."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    return sum(isinstance(m, DynamicLinear) for m in module.modules())
