"""Speech encoder-decoder backbones behind one interface (`SpeechSeq2Seq`).

```python
from speechprompt.backbones import build_backbone, load_backbone
backbone = build_backbone("hubert", "small", vocab_size=500)   # random weights
backbone.save_pretrained("exp/backbone")
backbone = load_backbone("exp/backbone")                        # dispatches on the saved family
```

Released checkpoints: `speechprompt backbone fetch whisper-tiny.en` (see `fetch`), or
`import_ct2` for any CTranslate2 Whisper folder (see `ct2_import`).

The names below are imported on first use, so that torch-free parts of the package (fetching and
resolving backbone names, `speechprompt backbone fetch` on a finished cache) start in milliseconds.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> module that defines it
_EXPORTS = {
    "BACKBONE_FAMILIES": "speechprompt.backbones.registry",
    "build_backbone": "speechprompt.backbones.registry",
    "load_backbone": "speechprompt.backbones.registry",
    "BackboneError": "speechprompt.backbones.errors",
    "SpeechSeq2Seq": "speechprompt.backbones.base",
    "new_decoder_cache": "speechprompt.backbones.base",
    "Wav2Vec2Seq2Seq": "speechprompt.backbones.wav2vec2_seq2seq",
    "WhisperSeq2Seq": "speechprompt.backbones.whisper",
}

if TYPE_CHECKING:
    from speechprompt.backbones.base import SpeechSeq2Seq, new_decoder_cache
    from speechprompt.backbones.errors import BackboneError
    from speechprompt.backbones.registry import BACKBONE_FAMILIES, build_backbone, load_backbone
    from speechprompt.backbones.wav2vec2_seq2seq import Wav2Vec2Seq2Seq
    from speechprompt.backbones.whisper import WhisperSeq2Seq


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'speechprompt.backbones' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = ["BACKBONE_FAMILIES", "BackboneError", "SpeechSeq2Seq", "Wav2Vec2Seq2Seq", "WhisperSeq2Seq", "build_backbone",
           "load_backbone", "new_decoder_cache"]
