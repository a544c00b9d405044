"""The tokenizer of a released Whisper checkpoint, kind ``"whisper"``: its own byte-level BPE, never re-learnt.

The checkpoint's ``tokenizer.json`` is read by the ``tokenizers`` library (the same file transformers
uses), so no vocabulary is resized and no id moves. What the toolkit adds is the decoder prefix the
checkpoint was trained with and the ids that matter while training and decoding:

- prefix: ``<|startoftranscript|><|lang|><|transcribe|><|notimestamps|>`` for multilingual checkpoints,
  ``<|startoftranscript|><|notimestamps|>`` for English-only ones (as OpenAI's decoder builds it);
- text: encoded with a leading space, as the checkpoints write it after the prefix;
- ``eos_id`` = ``<|endoftext|>``; ``pad_id`` = ``<|startoflm|>``, a token never used as a target (Whisper's
  own pad id equals its end-of-text, which would hide the end of every target from the loss);
- ``suppress_specials``: no id above ``<|endoftext|>`` (timestamps, languages, tasks) is ever generated;
  the checkpoint's own ``suppress_tokens`` come from the backbone's generation config.

Folder layout: a checkpoint folder (``tokenizer.json`` of transformers' format) or a saved tokenizer
folder (``speechprompt_tokenizer.json``: kind, language, task and the resulting prefix, with that file beside
it, or, in a task artifact, only its sha256: the 3.8 MB vocabulary is then read from the backbone's folder,
which holds the identical file, so a prompt artifact stays a few kilobytes).

```python
tok = WhisperCheckpointTokenizer.load("~/.cache/speechprompt/backbones/whisper-base", language="cs")
tok.prefix_ids          # [50258, 50283, 50359, 50363]
tok.encode("dobrý den") # [..] without prefix and <|endoftext|>
```
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from collections.abc import Iterable
from pathlib import Path

from speechprompt.data.text import Tokenizer

SETTINGS_FILE = "speechprompt_tokenizer.json"
HF_TOKENIZER_FILE = "tokenizer.json"
MULTILINGUAL_MIN_VOCAB = 51865  # OpenAI's rule: a vocabulary this large has the language tokens


class TokenizerError(ValueError):
    """A checkpoint tokenizer that cannot be used as asked; the message says what to fix."""


def is_checkpoint_tokenizer_dir(directory: str | Path) -> bool:
    """True for a folder holding a transformers-format ``tokenizer.json`` (not the toolkit's own settings file)."""
    directory = Path(directory)
    if (directory / SETTINGS_FILE).is_file():
        return True
    path = directory / HF_TOKENIZER_FILE
    if not path.is_file():
        return False
    with open(path, encoding="utf-8") as f:
        head = f.read(4096)
    return '"added_tokens"' in head or '"model"' in head


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def save_naming_vocabulary(source: Path, out: Path) -> bool:
    """Copy a saved tokenizer folder's settings, naming its vocabulary file by sha256 instead of copying it (a
    task artifact: the file is the backbone's own). False, writing nothing, for a folder that is not one."""
    settings_path, vocabulary = Path(source) / SETTINGS_FILE, Path(source) / HF_TOKENIZER_FILE
    if not (settings_path.is_file() and vocabulary.is_file()):
        return False
    settings = json.loads(settings_path.read_text(encoding="utf-8"))
    if settings.get("kind") != WhisperCheckpointTokenizer.kind:
        return False
    out.mkdir(parents=True, exist_ok=True)
    settings["vocabulary_sha256"] = file_sha256(vocabulary)
    (out / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    return True


def referenced_vocabulary(directory: Path, sha256: str, vocabulary_dir: str | Path | None) -> Path:
    """The backbone's ``tokenizer.json`` that a saved tokenizer folder names by its sha256."""
    if vocabulary_dir is None:
        raise TokenizerError(f"{directory}: its vocabulary is the backbone's tokenizer.json (sha256 {sha256[:12]}...); "
                             "load it together with that backbone (speechprompt decode/transcribe --backbone)")
    path = Path(vocabulary_dir) / HF_TOKENIZER_FILE
    if not path.is_file():
        raise TokenizerError(f"{directory}: its vocabulary is the backbone's tokenizer.json, but {path} is missing; "
                             "give the released checkpoint's folder as the backbone")
    if file_sha256(path) != sha256:
        raise TokenizerError(f"{directory}: its vocabulary is a tokenizer.json with sha256 {sha256[:12]}..., but "
                             f"{path} differs; load the task with the checkpoint it was trained on")
    return path


class WhisperCheckpointTokenizer(Tokenizer):
    """A released Whisper checkpoint's tokenizer with its decoder prefix; see the module docstring."""

    kind = "whisper"
    suppress_specials = True

    def __init__(self, tokenizer_file: str | Path, language: str | None = None, task: str = "transcribe",
                 multilingual: bool | None = None):
        from tokenizers import Tokenizer as HFTokenizer

        self.tokenizer_file = Path(tokenizer_file)
        self.hf = HFTokenizer.from_file(str(self.tokenizer_file))
        self.eos_id = self._id("<|endoftext|>")
        self.bos_id = self._id("<|startoftranscript|>")
        self.pad_id = self._id("<|startoflm|>")
        self.unk_id = self.eos_id  # byte-level BPE has no unknown token: every string encodes
        self.no_timestamps_id = self._id("<|notimestamps|>")
        self.multilingual = self._is_multilingual() if multilingual is None else multilingual
        if task not in ("transcribe", "translate"):
            raise TokenizerError(f"task {task!r}: a Whisper checkpoint knows 'transcribe' and 'translate'")
        self.task = task
        self.language = self._check_language(language)

    def _is_multilingual(self) -> bool:
        """The checkpoint's generation config says so; else OpenAI's rule (the vocabulary's size)."""
        generation = self.tokenizer_file.parent / "generation_config.json"
        if generation.is_file():
            flag = json.loads(generation.read_text(encoding="utf-8")).get("is_multilingual")
            if flag is not None:
                return bool(flag)
        return self.vocab_size >= MULTILINGUAL_MIN_VOCAB

    def _id(self, token: str) -> int:
        token_id = self.hf.token_to_id(token)
        if token_id is None:
            raise TokenizerError(f"{self.tokenizer_file}: has no {token} token; is this a Whisper checkpoint's tokenizer?")
        return int(token_id)

    def _check_language(self, language: str | None) -> str | None:
        if not self.multilingual:
            if language not in (None, "en"):
                raise TokenizerError(f"{self.tokenizer_file}: an English-only checkpoint cannot take language {language!r}")
            return None
        if language is None:
            raise TokenizerError(f"{self.tokenizer_file}: a multilingual checkpoint needs a language "
                                 f"(e.g. data.language=cs or --language cs); known: {', '.join(self.languages)}")
        if self.hf.token_to_id(f"<|{language}|>") is None:
            raise TokenizerError(f"language {language!r} is not one of this checkpoint's: {', '.join(self.languages)}")
        return language

    @property
    def languages(self) -> list[str]:
        """Language codes with a token in this vocabulary (``en``, ``zh``, ...), in id order."""
        if not hasattr(self, "_languages"):
            tokens = sorted((i, t) for t, i in self.hf.get_vocab(with_added_tokens=True).items()
                            if t.startswith("<|") and t.endswith("|>") and 2 <= len(t) - 4 <= 3 and t[2:-2].isalpha())
            self._languages = [t[2:-2] for _, t in tokens]
        return self._languages

    def with_language(self, language: str | None) -> WhisperCheckpointTokenizer:
        """The same tokenizer with another language token in its prefix (the parsed vocabulary is shared)."""
        other = copy.copy(self)
        other.language = other._check_language(language)
        return other

    # ---- the Tokenizer interface --------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return int(self.hf.get_vocab_size(with_added_tokens=True))

    @property
    def prefix_ids(self) -> list[int]:
        """The decoder input before the text: start of transcript, [language, task,] no timestamps."""
        if not self.multilingual:
            return [self.bos_id, self.no_timestamps_id]
        return [self.bos_id, self._id(f"<|{self.language}|>"), self._id(f"<|{self.task}|>"), self.no_timestamps_id]

    def encode(self, text: str) -> list[int]:
        text = text.strip()
        if not text:
            return []
        return list(self.hf.encode(" " + text, add_special_tokens=False).ids)

    def decode(self, ids: Iterable[int]) -> str:
        kept = [i for i in self._strip_specials(ids) if i < self.eos_id]  # text tokens lie below <|endoftext|>
        return self.hf.decode(kept, skip_special_tokens=True).strip()

    @property
    def scoring_normalizer(self) -> str:
        """Whisper's own normaliser for the checkpoint's cased, punctuated text: English, else the basic one."""
        return "whisper_english" if self.language in (None, "en") else "whisper_basic"

    def method_options(self) -> dict:
        """Tuning-method options that let this tokenizer drive the decoder: the checkpoint's special ids,
        its task prefix and the suppression of its special tokens (and no vocabulary resize)."""
        return {"bos_id": self.bos_id, "eos_id": self.eos_id, "pad_id": self.pad_id,
                "task_prefix": self.prefix_ids, "suppress_specials": True}

    def settings(self) -> dict:
        return {"kind": self.kind, "language": self.language, "task": self.task, "multilingual": self.multilingual,
                "prefix": self.prefix_ids, "vocab_size": self.vocab_size}

    def save(self, out_dir: str | Path) -> Path:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        if (out / HF_TOKENIZER_FILE).resolve() != self.tokenizer_file.resolve():
            shutil.copyfile(self.tokenizer_file, out / HF_TOKENIZER_FILE)
        (out / SETTINGS_FILE).write_text(json.dumps(self.settings(), indent=2) + "\n", encoding="utf-8")
        return out

    @classmethod
    def load(cls, directory: str | Path, language: str | None = None,
             vocabulary_dir: str | Path | None = None) -> WhisperCheckpointTokenizer:
        """A checkpoint folder or a saved tokenizer folder; ``language`` overrides the saved one.

        A saved folder that names its vocabulary by sha256 (a task artifact's) reads ``tokenizer.json`` from
        ``vocabulary_dir`` (the backbone's folder), after checking that it is that file."""
        directory = Path(directory)
        saved: dict = {}
        if (directory / SETTINGS_FILE).is_file():
            saved = json.loads((directory / SETTINGS_FILE).read_text(encoding="utf-8"))
        vocabulary = directory / HF_TOKENIZER_FILE
        if not vocabulary.is_file() and saved.get("vocabulary_sha256"):
            vocabulary = referenced_vocabulary(directory, saved["vocabulary_sha256"], vocabulary_dir)
        if not vocabulary.is_file():
            raise TokenizerError(f"{vocabulary}: missing; a Whisper checkpoint folder holds its tokenizer")
        return cls(vocabulary, language if language is not None else saved.get("language"),
                   saved.get("task", "transcribe"), saved.get("multilingual"))
