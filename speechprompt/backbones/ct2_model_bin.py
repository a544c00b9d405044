"""Read a CTranslate2 `model.bin` (binary version 6) into torch tensors, without CTranslate2.

Layout (little-endian), as CTranslate2's `ModelSpec.save` writes it:

```
uint32 binary version (6)
string spec name ("WhisperSpec")          string = uint16 length incl. the trailing NUL + bytes
uint32 spec revision
uint32 number of variables
  per variable: string name, uint8 rank, rank x uint32 dims, uint8 dtype, uint32 byte count, raw data
uint32 number of aliases
  per alias: string alias, string target
```

Scalars (flags such as `decoder/num_heads`) are rank-0 variables. Every read is bounds-checked, so
a truncated file (an interrupted download, one half of a split file) is named as such instead of
producing garbage weights.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import torch

from speechprompt.backbones.errors import BackboneError

BINARY_VERSION = 6
# CTranslate2's DataType enum, in file order
DTYPES: dict[int, torch.dtype] = {0: torch.float32, 1: torch.int8, 2: torch.int16, 3: torch.int32,
                                  4: torch.float16, 5: torch.bfloat16}
DTYPE_CODES = {dtype: code for code, dtype in DTYPES.items()}


class CT2FormatError(BackboneError):
    """A `model.bin` that is not a readable CTranslate2 file (version, truncation, dtype)."""


@dataclass
class CT2ModelBin:
    """The content of a `model.bin`: `variables` name -> tensor (aliases already resolved into
    `variables` as extra names sharing the target's tensor)."""

    spec: str
    revision: int
    variables: dict[str, torch.Tensor]
    aliases: dict[str, str] = field(default_factory=dict)


class _Cursor:
    """Bounds-checked reads from one in-memory file."""

    def __init__(self, data: bytes | bytearray, path: Path):
        self.data, self.path, self.offset = data, path, 0

    def take(self, size: int, what: str) -> memoryview:
        end = self.offset + size
        if end > len(self.data):
            raise CT2FormatError(f"{self.path}: truncated: {what} needs {size} bytes at offset {self.offset} "
                                 f"but the file ends at {len(self.data)}; download or join it again")
        view = memoryview(self.data)[self.offset:end]
        self.offset = end
        return view

    def uint(self, fmt: str, what: str) -> int:
        return struct.unpack("<" + fmt, self.take(struct.calcsize(fmt), what))[0]

    def string(self, what: str) -> str:
        length = self.uint("H", what)
        raw = bytes(self.take(length, what))
        if not raw.endswith(b"\0"):
            raise CT2FormatError(f"{self.path}: {what} at offset {self.offset - length} is not a NUL-terminated "
                                 "string; the file is not a CTranslate2 model.bin")
        return raw[:-1].decode("utf-8")


def read_model_bin(path: str | Path) -> CT2ModelBin:
    """Parse `path`; raise CT2FormatError (one line, naming the file) on anything unexpected."""
    path = Path(path)
    cursor = _Cursor(bytearray(path.read_bytes()), path)  # writable buffer: torch.frombuffer needs one
    version = cursor.uint("I", "the binary version")
    if version != BINARY_VERSION:
        raise CT2FormatError(f"{path}: CTranslate2 binary version {version}, only version {BINARY_VERSION} "
                             "is supported; convert the model again with a current ctranslate2")
    spec = cursor.string("the spec name")
    revision = cursor.uint("I", "the spec revision")
    variables: dict[str, torch.Tensor] = {}
    for index in range(cursor.uint("I", "the variable count")):
        name = cursor.string(f"the name of variable {index}")
        rank = cursor.uint("B", f"the rank of {name}")
        shape = tuple(cursor.uint("I", f"the shape of {name}") for _ in range(rank))
        code = cursor.uint("B", f"the dtype of {name}")
        if code not in DTYPES:
            raise CT2FormatError(f"{path}: variable {name} has unknown dtype code {code}")
        dtype = DTYPES[code]
        size = cursor.uint("I", f"the byte count of {name}")
        expected = dtype.itemsize * (torch.Size(shape).numel())
        if size != expected:
            raise CT2FormatError(f"{path}: variable {name} of shape {shape} and dtype {dtype} declares {size} "
                                 f"bytes instead of {expected}")
        start = cursor.offset
        cursor.take(size, f"the data of {name}")
        tensor = torch.frombuffer(cursor.data, dtype=torch.uint8, count=size, offset=start) if size else \
            torch.empty(0, dtype=torch.uint8)
        variables[name] = tensor.view(dtype).reshape(shape)
    aliases: dict[str, str] = {}
    for index in range(cursor.uint("I", "the alias count")):
        alias = cursor.string(f"alias {index}")
        aliases[alias] = cursor.string(f"the target of alias {alias}")
    if cursor.offset != len(cursor.data):
        raise CT2FormatError(f"{path}: {len(cursor.data) - cursor.offset} unexpected bytes after the last alias; "
                             "the file is damaged or was joined from the wrong parts")
    for alias, target in aliases.items():
        if target not in variables:
            raise CT2FormatError(f"{path}: alias {alias} points to missing variable {target}")
        variables[alias] = variables[target]
    return CT2ModelBin(spec, revision, variables, aliases)
