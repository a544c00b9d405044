"""Transcribe audio with one frozen backbone and any number of task prompts.

Every task prompt lives on the same frozen backbone: adding a task costs only its artifact
(a few thousand values), and one batch may mix tasks, each utterance picking its own prompt
by a gather. Artifacts trained on another backbone are refused (their fingerprint differs).

```python
from speechprompt.data.audio import load_audio
from speechprompt.decoding.transcriber import Transcriber

tr = Transcriber.from_dirs("exp/backbone", {"asr": "exp/prompt_asr/artifact",
                                             "slu": "exp/prompt_slu/artifact"}, beam=4)
tr.add_task("asr_fr", "exp/prompt_fr/artifact")           # one more task: loads only its artifact
wave = load_audio("call.wav")                             # float32 mono, resampled to 16 kHz
results = tr.transcribe([wave, wave], tasks=["asr", "slu"])
print(results[0].text)                                    # "wake me up at five am"
print(results[1].slots)                                   # {"intent": "alarm_set", "slots": [...], ...}
```

``Result(text, task, slots, seconds, wall_seconds, num_tokens)``: ``slots`` is None for plain ASR tasks; for a
slot-filling task (``task.json`` has ``"output": "slu"``, or its tokenizer writes the markup of
:mod:`speechprompt.score.slu_format`) it is ``{"intent", "slots": [{"type", "filler"}],
"transcript", "format_errors"}``. ``seconds`` is the audio duration, ``wall_seconds`` the
utterance's share of its batch's decoding time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from speechprompt.backbones import load_backbone as _load_backbone_folder
from speechprompt.backbones.precision import INT8_ENCODER, autocast, check_precision, quantize_int8
from speechprompt.data.audio import TARGET_SAMPLE_RATE, AudioError
from speechprompt.data.dataset import LengthBucketSampler
from speechprompt.data.text import Tokenizer, load_tokenizer
from speechprompt.data.whisper_tokenizer import is_checkpoint_tokenizer_dir
from speechprompt.decoding.joint import ctc_greedy_search, joint_search
from speechprompt.decoding.long_form import max_input_samples, split
from speechprompt.decoding.search import DEFAULT_MAX_REPEATS, beam_search, greedy_search
from speechprompt.score.slu_format import RESERVED, parse
from speechprompt.tuning import ArtifactError, TunedModel, load_task, read_artifact

__all__ = ["ArtifactError", "AudioItem", "Failure", "Result", "Transcriber", "load_backbone", "load_task"]


def load_backbone(directory: str | Path, device: str | torch.device = "cpu"):
    """A backbone folder or fetched name (``whisper-tiny.en``), frozen, in eval mode, on ``device``.

    ``backbone.source_dir`` remembers the folder (a released checkpoint's tokenizer lives there)."""
    from speechprompt.backbones.fetch import resolve_backbone

    folder = resolve_backbone(str(directory))
    backbone = _load_backbone_folder(folder)
    backbone.requires_grad_(False)
    backbone.source_dir = Path(folder)
    return backbone.eval().to(device)


@dataclass
class Result:
    text: str
    task: str
    slots: dict[str, Any] | None
    seconds: float  # audio duration
    wall_seconds: float = 0.0  # this utterance's share of its batch's decoding time
    num_tokens: int = 0  # tokens generated (EOS excluded)
    pieces: int = 1  # audio longer than the backbone's window is decoded in pieces (decoding.long_form)


@dataclass
class AudioItem:
    """One utterance to transcribe: ``load()`` returns (S,) float32 16 kHz samples or raises AudioError."""

    key: str
    load: Callable[[], np.ndarray]
    task: str | None = None
    duration: float | None = None  # seconds, for length bucketing; None = unknown (loaded first)


@dataclass
class Failure:
    key: str
    reason: str


def is_slu_artifact(meta: dict[str, Any], tokenizer: Tokenizer | None) -> bool:
    """SLU when task.json says so, else when the tokenizer writes every slot-markup symbol."""
    if "output" in meta:
        return meta["output"] == "slu"
    if tokenizer is None or tokenizer.kind == "whisper":  # a byte-level BPE writes any symbol: says nothing
        return False
    return all(tokenizer.encode(symbol) and tokenizer.unk_id not in tokenizer.encode(symbol) for symbol in RESERVED)


def slots_of(text: str) -> dict[str, Any]:
    parsed = parse(text)
    ann = parsed.annotation
    return {
        "intent": ann.intent,
        "slots": [{"type": e.type, "filler": e.filler} for e in ann.entities],
        "transcript": ann.transcript,
        "format_errors": parsed.errors,
    }


@dataclass
class _TaskInfo:
    artifact: Path
    tokenizer: Tokenizer
    slu: bool
    meta: dict[str, Any] = field(repr=False, default_factory=dict)


class Transcriber:
    """A frozen backbone + the task prompts loaded on it; batched greedy (beam=1) or beam search.

    ``precision``: "fp32", "bf16" (bfloat16 autocast), "int8" (the backbone's Linear layers quantised when
    decoding first starts, after the tasks are loaded; see ``backbones.precision``) or "int8-decoder" (the
    same but for the encoder's, kept float32); ``dtype`` is its older
    spelling ("float32", "bfloat16"). ``batch_seconds`` bounds the padded audio of a batch.
    ``ctc_weight`` (needs a CTC head): 0 = attention decoding only, 1 = CTC best path only, in between =
    the attention candidates and the CTC best path rescored jointly (``decoding.joint.joint_search``).
    """

    def __init__(self, backbone, *, device: str | torch.device = "cpu", precision: str = "fp32",
                 dtype: str | None = None, beam: int = 1,
                 length_penalty: float = 1.0, max_len: int = 200, max_len_ratio: float | None = None,
                 batch_seconds: float = 60.0, ctc_weight: float = 0.0, max_repeats: int = DEFAULT_MAX_REPEATS,
                 pad_to_window: bool | None = None) -> None:
        if pad_to_window and not hasattr(backbone, "pad_to_window"):
            raise ValueError(f"pad_to_window: a {type(backbone).__name__} has no fixed input window (Whisper has)")
        if pad_to_window is not None and hasattr(backbone, "pad_to_window"):
            backbone.pad_to_window = pad_to_window
        self.pad_to_window_given = pad_to_window is not None  # else the first task artifact's own setting
        if max_repeats < 0:
            raise ValueError(f"max_repeats={max_repeats} must be >= 0 (0 = no loop guard)")
        self.max_repeats = max_repeats
        if dtype is not None:
            if precision != "fp32" and check_precision(dtype) != check_precision(precision):
                raise ValueError(f"precision={precision!r} and dtype={dtype!r} disagree; give precision only")
            precision = dtype
        self.precision = check_precision(precision, device)
        self.dtype = "bfloat16" if self.precision == "bf16" else "float32"  # what autocast computes in
        self.quantized_layers = 0  # int8: Linear layers quantised so far (done at the first decoding)
        if beam < 1 or batch_seconds <= 0:
            raise ValueError(f"beam={beam} must be >= 1 and batch_seconds={batch_seconds} positive")
        if not 0.0 <= ctc_weight <= 1.0:
            raise ValueError(f"ctc_weight={ctc_weight} must be in [0, 1]")
        self.ctc_weight = ctc_weight
        self.device = torch.device(device)
        self.backbone = backbone.eval().to(self.device)
        self.beam, self.length_penalty = beam, length_penalty
        if max_len_ratio is None:
            max_len_ratio = float(getattr(backbone, "default_max_len_ratio", 1.0))
        self.max_len, self.max_len_ratio, self.batch_seconds = max_len, max_len_ratio, batch_seconds
        # longer audio is cut into pieces of at most this many samples (Whisper: its 30 s window)
        self.max_input_samples = max_input_samples(backbone)
        self.model: TunedModel | None = None
        self.task_info: dict[str, _TaskInfo] = {}
        self._tokenizers: dict[tuple, Tokenizer] = {}  # by the checksums of an artifact's tokenizer files

    @classmethod
    def from_dirs(cls, backbone_dir: str | Path, prompts: dict[str, str | Path], **options: Any) -> Transcriber:
        """Load a backbone folder and the named task artifacts ``{name: artifact_dir}``."""
        transcriber = cls(load_backbone(backbone_dir), **options)
        for name, artifact in prompts.items():
            transcriber.add_task(name, artifact)
        return transcriber

    @property
    def tasks(self) -> list[str]:
        return list(self.model.task_names) if self.model is not None else []

    # ---------------------------------------------------------------- tasks
    def add_zero_shot(self, name: str = "default", language: str | None = None) -> list[str]:
        """The untouched backbone as a task, with the released checkpoint's own tokenizer and prefix."""
        from speechprompt.tuning import build_tuned_model

        if self.model is not None:
            raise ArtifactError(f"the backbone itself cannot join the loaded task prompts ({self.tasks}); "
                                "transcribe with them or without any --prompt")
        folder = getattr(self.backbone, "source_dir", None)
        if folder is None or not is_checkpoint_tokenizer_dir(folder):
            raise ArtifactError("only a released checkpoint (with its own tokenizer) transcribes without a task "
                                "prompt; give --prompt NAME=ARTIFACT_DIR")
        tokenizer = load_tokenizer(folder, language)
        model = build_tuned_model(self.backbone, "zero_shot", {**tokenizer.method_options(), "tasks": [name]})
        self.model = model.to(self.device).eval()
        self.task_info[name] = _TaskInfo(Path(folder), tokenizer, False, {"method": "zero_shot"})
        return [name]

    def add_task(self, name: str | None, artifact_dir: str | Path, tokenizer: str | Path | Tokenizer | None = None,
                 language: str | None = None) -> list[str]:
        """Load a task artifact under ``name`` (None: the artifact's own task names); returns the names added.

        The artifact must come from this backbone (same fingerprint) and, after the first, use the
        same method and vocabulary as the tasks already loaded. ``tokenizer`` (a folder or object)
        is needed only when the artifact carries no ``tokenizer/``. ``language`` replaces the
        artifact's own language token (released multilingual checkpoints).
        """
        directory = Path(artifact_dir)
        meta, _ = read_artifact(directory)
        own_names = list(meta.get("tasks") or meta["config"].get("tasks") or ["default"])
        if name is not None and len(own_names) > 1:
            raise ArtifactError(f"{directory}: holds {len(own_names)} tasks {own_names}; load it without a name "
                                "to keep its task names")
        names = own_names if name is None else [name]
        clash = [n for n in names if n in self.task_info]
        if clash:
            raise ArtifactError(f"{directory}: task name(s) {clash} already loaded ({self.tasks}); choose another name")
        info = _TaskInfo(directory, self._tokenizer_for(directory, meta, tokenizer), False, meta)
        if language is not None:
            if not hasattr(info.tokenizer, "with_language"):
                raise ArtifactError(f"{directory}: its {info.tokenizer.kind} tokenizer has no language token")
            info.tokenizer = info.tokenizer.with_language(language)
        info.slu = is_slu_artifact(meta, info.tokenizer)
        try:
            if self.model is None:
                if not self.pad_to_window_given and "pad_to_window" in meta and hasattr(self.backbone, "pad_to_window"):
                    self.backbone.pad_to_window = bool(meta["pad_to_window"])  # encode as the task was trained
                model = load_task(directory, self.backbone)
                model.task_names = list(names)
                model.config.tasks = list(names)
                self.model = model.to(self.device).eval()
            else:
                if len(names) > 1:
                    raise ArtifactError(f"{directory}: holds {len(names)} tasks; only single-task artifacts can join "
                                        f"the tasks already loaded ({self.tasks})")
                self.model.add_task(names[0], directory)
                self.model.to(self.device)
        except ArtifactError as err:
            raise ArtifactError(f"cannot add task {names[0]!r}: {err}") from err
        for task in names:
            self.task_info[task] = info
            if language is not None:
                self.model.set_task_prefix(task, info.tokenizer.prefix_ids)
        return names

    def _tokenizer_for(self, directory: Path, meta: dict[str, Any], tokenizer) -> Tokenizer:
        """The task's tokenizer; artifacts whose tokenizer files have the same (verified) checksums share one
        object: every task on a released checkpoint carries a copy of its tokenizer (megabytes in memory)."""
        if isinstance(tokenizer, Tokenizer):
            return tokenizer
        if tokenizer is not None:
            return load_tokenizer(tokenizer)
        if not meta.get("tokenizer"):
            raise ArtifactError(f"{directory}: has no tokenizer/ folder; pass the tokenizer the task was trained with")
        folder = str(meta["tokenizer"]) + "/"
        key = tuple(sorted((name[len(folder):], digest) for name, digest in (meta.get("checksums") or {}).items()
                           if name.startswith(folder)))
        if key and key in self._tokenizers:
            return self._tokenizers[key]
        loaded = load_tokenizer(directory / meta["tokenizer"], vocabulary_dir=getattr(self.backbone, "source_dir", None))
        if key:  # an artifact without checksums (older) is loaded on its own
            self._tokenizers[key] = loaded
        return loaded

    def task_ids(self, tasks: Sequence[str]) -> list[int]:
        if self.model is None:
            raise ArtifactError("no task loaded; add one with add_task(name, artifact_dir)")
        unknown = sorted({t for t in tasks if t not in self.task_info})
        if unknown:
            raise KeyError(f"task(s) {unknown} not loaded; loaded tasks: {self.tasks}")
        return [self.model.task_id(t) for t in tasks]

    def _resolve_tasks(self, tasks: str | Sequence[str] | None, count: int) -> list[str]:
        if tasks is None:
            if len(self.tasks) != 1:
                raise ValueError(f"{len(self.tasks)} tasks are loaded ({self.tasks}); say which with tasks=...")
            return self.tasks * count
        if isinstance(tasks, str):
            return [tasks] * count
        if len(tasks) != count:
            raise ValueError(f"{count} waveforms but {len(tasks)} task names; give one per waveform")
        return list(tasks)

    # ---------------------------------------------------------------- decoding
    def autocast(self):
        return autocast(self.precision, self.device)

    def apply_precision(self) -> None:
        """int8: quantise the backbone's Linear layers once, after the tasks are loaded (a task added later
        joins with its float32 tables; its fingerprint check uses the float backbone's, kept from loading)."""
        if self.precision in INT8_ENCODER and not self.quantized_layers:
            if self.model is None:
                raise ArtifactError("no task loaded; add one before decoding")
            self.quantized_layers = quantize_int8(self.backbone, encoder=INT8_ENCODER[self.precision])

    @torch.inference_mode()
    def decode_ids(self, waveforms: Sequence[np.ndarray | torch.Tensor], task_ids: Sequence[int]) -> list[list[int]]:
        """One padded batch: B waveforms (S_i,) + B task ids -> B token id lists (no BOS/EOS)."""
        lengths = torch.tensor([len(w) for w in waveforms], dtype=torch.long)
        batch = torch.zeros(len(waveforms), int(lengths.max()), dtype=torch.float32)
        for row, wave in enumerate(waveforms):
            batch[row, : lengths[row]] = torch.as_tensor(np.asarray(wave, dtype=np.float32))
        batch, lengths = batch.to(self.device), lengths.to(self.device)
        self.apply_precision()
        tasks = torch.tensor(list(task_ids), dtype=torch.long, device=self.device)
        settings = dict(max_len=self.max_len, max_len_ratio=self.max_len_ratio)
        if self.ctc_weight > 0 and getattr(self.model.backbone, "ctc_head", None) is None:
            raise ArtifactError("ctc_weight > 0 needs a CTC head: neither the backbone nor the loaded tasks have "
                                "one (train with method.options.ctc_weight > 0, or decode with ctc_weight 0)")
        with self.autocast():
            if self.ctc_weight >= 1:
                return ctc_greedy_search(self.model, batch, lengths, tasks, **settings)
            if self.ctc_weight > 0:
                return joint_search(self.model, batch, lengths, tasks, ctc_weight=self.ctc_weight, beam_size=self.beam,
                                    length_penalty=self.length_penalty, **settings)
            if self.beam == 1:
                return greedy_search(self.model, batch, lengths, tasks, max_repeats=self.max_repeats, **settings)
            return beam_search(self.model, batch, lengths, tasks, beam_size=self.beam, max_repeats=self.max_repeats,
                               length_penalty=self.length_penalty, **settings)

    def results_of(self, ids: list[list[int]], tasks: Sequence[str], seconds: Sequence[float],
                   wall: float) -> list[Result]:
        out = []
        for tokens, task, secs in zip(ids, tasks, seconds, strict=True):
            info = self.task_info[task]
            text = info.tokenizer.decode(tokens)
            out.append(Result(text, task, slots_of(text) if info.slu else None, secs, wall / len(ids), len(tokens)))
        return out

    def transcribe(self, waveforms: Sequence[np.ndarray | torch.Tensor], tasks: str | Sequence[str] | None = None,
                   on_batch: Callable[[int], None] | None = None) -> list[Result]:
        """waveforms: (S_i,) float 16 kHz mono each; tasks: one name, one per waveform, or None (the only task).

        Results come back in input order; batches group similar lengths (``batch_seconds``) and may
        mix tasks. Audio longer than the backbone's window (Whisper: 30 s) is cut at pauses into pieces
        decoded like any utterance, and their texts joined (``Result.pieces``); slot filling reads one
        command per utterance and is never cut. ``on_batch(n)`` is called after each batch of n pieces.
        """
        names = self._resolve_tasks(tasks, len(waveforms))
        task_ids = self.task_ids(names)  # refuses unknown tasks
        pieces, owner = [], []
        for index, (wave, name) in enumerate(zip(waveforms, names, strict=True)):
            parts = [wave] if self.task_info[name].slu else split(wave, self.max_input_samples)
            pieces += parts
            owner += [index] * len(parts)
        names_of_pieces = [names[i] for i in owner]
        ids = [task_ids[i] for i in owner]
        seconds = [len(w) / TARGET_SAMPLE_RATE for w in pieces]
        decoded: list[Result | None] = [None] * len(pieces)
        for batch in LengthBucketSampler(seconds, self.batch_seconds, shuffle=False):
            start = time.perf_counter()
            tokens = self.decode_ids([pieces[i] for i in batch], [ids[i] for i in batch])
            wall = time.perf_counter() - start
            for i, result in zip(batch, self.results_of(tokens, [names_of_pieces[i] for i in batch],
                                                        [seconds[i] for i in batch], wall), strict=True):
                decoded[i] = result
            if on_batch is not None:
                on_batch(len(batch))
        if len(pieces) == len(waveforms):
            return decoded  # type: ignore[return-value]
        return [self._joined([r for r, o in zip(decoded, owner, strict=True) if o == index])  # type: ignore[misc]
                for index in range(len(waveforms))]

    @staticmethod
    def _joined(parts: list[Result]) -> Result:
        """The pieces of one long utterance, in order -> one Result (texts joined by a space)."""
        if len(parts) == 1:
            return parts[0]
        text = " ".join(part.text.strip() for part in parts if part.text.strip())
        return Result(text, parts[0].task, None, sum(p.seconds for p in parts), sum(p.wall_seconds for p in parts),
                      sum(p.num_tokens for p in parts), pieces=len(parts))

    def transcribe_items(self, items: Iterable[AudioItem], default_task: str | None = None,
                         on_batch: Callable[[int], None] | None = None) -> Iterator[tuple[AudioItem, Result | Failure]]:
        """Stream (item, Result or Failure) pairs for audio loaded lazily, one length bucket at a time.

        Audio that cannot be read (``AudioError``) becomes a ``Failure`` with the reason; the other
        utterances of its batch are still decoded. Items without a duration are loaded to measure it.
        """
        items = list(items)
        known, loaded = [], {}
        for item in items:
            item.task = item.task or default_task or (self.tasks[0] if len(self.tasks) == 1 else None)
            if item.task not in self.task_info:
                reason = (f"no task given and {len(self.tasks)} are loaded ({self.tasks}); say which"
                          if item.task is None else f"task {item.task!r} is not loaded; loaded tasks: {self.tasks}")
                yield item, Failure(item.key, reason)
                if on_batch is not None:
                    on_batch(1)
                continue
            if item.duration is None:
                try:
                    loaded[item.key] = item.load()
                except AudioError as err:
                    yield item, Failure(item.key, str(err))
                    if on_batch is not None:
                        on_batch(1)
                    continue
                item.duration = len(loaded[item.key]) / TARGET_SAMPLE_RATE
            known.append(item)
        for batch in LengthBucketSampler([it.duration for it in known], self.batch_seconds, shuffle=False):
            good, waves = [], []
            for index in batch:
                item = known[index]
                try:
                    waves.append(loaded.pop(item.key) if item.key in loaded else item.load())
                    good.append(item)
                except AudioError as err:
                    yield item, Failure(item.key, str(err))
            if good:
                yield from self._transcribe_or_isolate(good, waves)
            if on_batch is not None:
                on_batch(len(batch))

    def _transcribe_or_isolate(self, items: list[AudioItem], waves: list[np.ndarray]
                               ) -> list[tuple[AudioItem, Result | Failure]]:
        """One batch; when the backbone refuses it (audio too short or too long for its front-end),
        each utterance alone, so that only those it refuses fail (alone == batched)."""
        from speechprompt.backbones import BackboneError

        try:
            return list(zip(items, self.transcribe(waves, [it.task for it in items]), strict=True))
        except BackboneError as err:
            if len(items) == 1:
                seconds = len(waves[0]) / TARGET_SAMPLE_RATE
                reason = str(err).replace("batch row 0 has", "audio has")
                return [(items[0], Failure(items[0].key, f"{reason} ({seconds * 1000:.0f} ms); skipped"))]
            out: list[tuple[AudioItem, Result | Failure]] = []
            for item, wave in zip(items, waves, strict=True):
                out += self._transcribe_or_isolate([item], [wave])
            return out
