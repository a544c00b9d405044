"""Utterances as training items, length-bucketed batches, and padding into a :class:`Batch`.

Example::

    data = SpeechDataset("data/train", tokenizer=load_tokenizer("exp/tok"), tasks=["asr", "slu"])
    sampler = LengthBucketSampler(data.durations, max_seconds=120, shuffle=True, seed=0,
                                  rank=rank, world_size=world_size)
    loader = torch.utils.data.DataLoader(data, batch_sampler=sampler, collate_fn=collate, num_workers=2)
    for epoch in range(n):
        sampler.set_epoch(epoch)
        for batch in loader:
            batch = batch.to("cuda")
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch

from speechprompt.data.audio import TARGET_SAMPLE_RATE, AudioError
from speechprompt.data.kaldi_dir import DataDir, DataDirError
from speechprompt.data.silence import is_silent
from speechprompt.data.text import EOS_ID, PAD_ID, Tokenizer, normalize_text

log = logging.getLogger(__name__)
# audio longer than its utt2dur entry by more than this means utt2dur is stale
STALE_DURATION_S = 0.1


@dataclass
class Batch:
    """A padded batch. Shapes: B utterances, S samples, L target tokens (EOS included)."""

    utt_ids: list[str]
    waveforms: torch.Tensor  # (B, S) float32, zero-padded
    wave_lengths: torch.Tensor  # (B,) long
    targets: torch.Tensor  # (B, L) long, token ids + EOS, padded with PAD_ID
    target_lengths: torch.Tensor  # (B,) long, EOS included
    task_ids: torch.Tensor  # (B,) long
    texts: list[str]

    def to(self, device, non_blocking: bool = False) -> Batch:
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, value in moved.items():
            if isinstance(value, torch.Tensor):
                moved[name] = value.to(device, non_blocking=non_blocking)
        return Batch(**moved)

    def __len__(self) -> int:
        return len(self.utt_ids)


class SpeechDataset(torch.utils.data.Dataset):
    """Items of a Kaldi data dir: ``{"utt_id", "waveform" (S,) float32, "text", "tokens", "task_id"}``.

    ``tasks`` names the task prompts in id order; an utterance's task comes from ``utt2task``
    (utterances of a dir without ``utt2task`` use task 0). Texts are normalised with
    :func:`normalize_text` (``normalize=False`` keeps them as written) before tokenising;
    ``keep`` lists symbols normalisation must keep (slot filling: ``keep=SLU_MARKUP`` from
    :mod:`speechprompt.score.slu_format`).
    ``waveform_transform`` (e.g. speed perturbation) is applied to each (S,) tensor.
    Utterances whose transcript normalises to nothing are left out and reported (count + ids); audio
    longer than its ``utt2dur`` entry (a stale file) is an error when it is loaded; all-silent audio
    is reported (id and count) the first time it is loaded.
    """

    def __init__(
        self,
        data_dir: str | Path | DataDir,
        tokenizer: Tokenizer | None = None,
        tasks: list[str] | None = None,
        *,
        normalize: bool = True,
        keep: str = "",
        allow_pipes: bool = False,
        waveform_transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ):
        self.data = data_dir if isinstance(data_dir, DataDir) else DataDir.read(data_dir, allow_pipes=allow_pipes)
        self.utt_ids = self.data.utt_ids
        self.tokenizer = tokenizer
        self.tasks = list(tasks) if tasks else None
        self.normalize, self.keep = normalize, keep
        self.waveform_transform = waveform_transform
        self._tokens: dict[int, list[int]] = {}  # item index -> target ids, encoded once (checks and every epoch)
        if not len(self.data):
            raise DataDirError(f"{self.data.path}: no utterances (utt2spk is empty) — point to a data dir with data")
        if tokenizer is not None and not self.data.text:
            raise DataDirError(f"{self.data.path}: no text file, but training needs transcripts — add "
                               f"{self.data.path}/text")
        self.empty_texts = self._without_empty_texts() if self.data.text else []
        self.silent: set[str] = set()  # all-silent utterances met so far (reported once each)
        self.task_ids = self._task_ids()
        try:
            durations = self.data.durations()
        except AudioError as err:
            raise located_audio_error(self.data, getattr(err, "utt_id", None), err) from err
        self.durations = [durations[u] for u in self.utt_ids]  # seconds, in item order (for the sampler)

    def _without_empty_texts(self) -> list[str]:
        """Leave out (and report) utterances whose transcript normalises to nothing."""
        empty = [u for u in self.utt_ids if u in self.data.text and not (
            normalize_text(self.data.text[u], keep=self.keep) if self.normalize else self.data.text[u]).strip()]
        if empty:
            self.utt_ids = [u for u in self.utt_ids if u not in set(empty)]
            log.warning("%s: %d utterance(s) left out, their transcript normalises to nothing: %s%s",
                        self.data.path or "data", len(empty), " ".join(empty[:10]), " ..." if len(empty) > 10 else "")
            if not self.utt_ids:
                raise DataDirError(f"{self.data.path}/text: every transcript normalises to nothing "
                                   f"({len(empty)} utterance(s)); write the transcripts")
        return empty

    def check_audio(self) -> None:
        """Load every utterance once (e.g. the dev set before step 1); a DataDirError names the
        first unreadable one by file, line and id, and counts the others."""
        bad = []
        for utt in self.utt_ids:
            try:
                self.data.load_audio(utt)
            except AudioError as err:
                bad.append(located_audio_error(self.data, utt, err))
        if bad:
            more = f" (and {len(bad) - 1} more utterance(s) with unreadable audio)" if len(bad) > 1 else ""
            raise DataDirError(f"{bad[0]}{more}; 'speechprompt data validate {self.data.path}' lists them all")

    def _task_ids(self) -> list[int]:
        if self.data.utt2task is None:
            return [0] * len(self.utt_ids)
        if self.tasks is None:
            raise ValueError(f"{self.data.path}/utt2task names tasks, so pass tasks=[...] (the prompt names in id order); "
                             f"found {sorted(set(self.data.utt2task.values()))}")
        index = {t: i for i, t in enumerate(self.tasks)}
        unknown = {u: t for u, t in self.data.utt2task.items() if t not in index}
        if unknown:
            utt, task = next(iter(sorted(unknown.items())))
            raise ValueError(f"{self.data.path}/utt2task: utterance {utt} uses task {task!r}, not one of {self.tasks} "
                             f"({len(unknown)} utterance(s) affected) — add it to tasks or fix utt2task")
        return [index[self.data.utt2task[u]] for u in self.utt_ids]

    def __len__(self) -> int:
        return len(self.utt_ids)

    def text_of(self, index: int) -> str:
        text = self.data.text.get(self.utt_ids[index], "")
        return normalize_text(text, keep=self.keep) if self.normalize else text

    def tokens_of(self, index: int) -> list[int]:
        """The target ids of item ``index`` (empty without a tokenizer), encoded on first use."""
        if index not in self._tokens:
            self._tokens[index] = self.tokenizer.encode(self.text_of(index)) if self.tokenizer is not None else []
        return self._tokens[index]

    def __getitem__(self, index: int) -> dict:
        utt = self.utt_ids[index]
        try:
            waveform = torch.from_numpy(self.data.load_audio(utt))
        except AudioError as err:
            raise located_audio_error(self.data, utt, err) from err
        seconds = waveform.shape[0] / TARGET_SAMPLE_RATE
        if seconds > self.durations[index] + STALE_DURATION_S:
            where = f"{self.data.path}/utt2dur" if self.data.path is not None else "utt2dur"
            raise DataDirError(f"{where}: {utt}: says {self.durations[index]:g} s but the audio "
                               f"lasts {seconds:.2f} s — utt2dur is stale: delete it to recompute the durations")
        if is_silent(waveform.numpy()) and utt not in self.silent:
            self.silent.add(utt)
            log.warning("%s: utterance %s is all-silent audio (%d such so far in this process); it is used as it "
                        "is — 'speechprompt data fix' removes it", self.data.path or "data", utt, len(self.silent))
        if self.waveform_transform is not None:
            waveform = self.waveform_transform(waveform)
        return {"utt_id": utt, "waveform": waveform, "text": self.text_of(index), "tokens": self.tokens_of(index),
                "task_id": self.task_ids[index]}


def located_audio_error(data: DataDir, utt: str | None, err: AudioError) -> DataDirError:
    """``DIR/wav.scp:LINE: utt: reason — fix`` in one line, from an AudioError of one utterance."""
    message = str(err)
    if utt is None:  # durations() names the utterance in the message only
        utt = next((u for u in data.utt_ids if message.startswith(f"utterance {u} (")), None)
    if utt is None:
        return DataDirError(f"{data.path}: {message}")
    file, key = ("segments", utt) if data.segments is not None else ("wav.scp", utt)
    line = data.line_of(file, key)
    where = f"{data.path / file if data.path is not None else file}" + (f":{line}" if line else "")
    reason = message.split("): ", 1)[1] if message.startswith(f"utterance {utt} (") and "): " in message else message
    return DataDirError(f"{where}: {utt}: {reason}")


def collate(items: Sequence[dict], pad_id: int = PAD_ID, eos_id: int = EOS_ID) -> Batch:
    """Pad items of :class:`SpeechDataset` into a :class:`Batch` (targets = tokens + EOS)."""
    if not items:
        raise ValueError("cannot collate an empty list of items")
    lengths = [int(item["waveform"].shape[0]) for item in items]
    waveforms = torch.zeros(len(items), max(lengths), dtype=torch.float32)
    for row, item in enumerate(items):
        waveforms[row, : lengths[row]] = torch.as_tensor(item["waveform"], dtype=torch.float32)
    has_targets = any(item["tokens"] for item in items)
    sequences = [list(item["tokens"]) + [eos_id] if has_targets else [] for item in items]
    target_lengths = [len(s) for s in sequences]
    targets = torch.full((len(items), max(target_lengths)), pad_id, dtype=torch.long)
    for row, seq in enumerate(sequences):
        targets[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
    return Batch(
        utt_ids=[item["utt_id"] for item in items],
        waveforms=waveforms,
        wave_lengths=torch.tensor(lengths, dtype=torch.long),
        targets=targets,
        target_lengths=torch.tensor(target_lengths, dtype=torch.long),
        task_ids=torch.tensor([int(item["task_id"]) for item in items], dtype=torch.long),
        texts=[item["text"] for item in items],
    )


class LengthBucketSampler(torch.utils.data.Sampler):
    """Batches of similar-length utterances holding at most ``max_seconds`` of padded audio.

    Padded audio is ``len(batch) * longest utterance``, which is what memory scales with, so the
    plain sum of durations is below it too. An utterance longer than ``max_seconds`` gets a batch of
    its own (logged, never dropped). For a given ``seed`` and epoch (:meth:`set_epoch`) the batches
    are the same on every run and every rank; rank ``r`` of ``world_size`` takes every
    ``world_size``-th batch, and the batch list is padded by repeating its first batches (or cut
    with ``drop_last``) so that every rank gets the same number of batches.
    """

    def __init__(
        self,
        durations: Sequence[float],
        max_seconds: float,
        shuffle: bool = True,
        seed: int = 0,
        *,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
        max_utterances: int | None = None,
    ):
        if max_seconds <= 0:
            raise ValueError(f"max_seconds must be positive, got {max_seconds}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
        self.durations = np.asarray(durations, dtype=np.float64)
        self.max_seconds = float(max_seconds)
        self.shuffle, self.seed = shuffle, seed
        self.rank, self.world_size, self.drop_last = rank, world_size, drop_last
        self.max_utterances = max_utterances
        self.epoch = 0
        too_long = int((self.durations > self.max_seconds).sum())
        if too_long:
            log.warning("%d utterance(s) are longer than max_seconds=%.1f; each gets a batch of its own",
                        too_long, self.max_seconds)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def all_batches(self) -> list[list[int]]:
        """Every batch of this epoch, before sharding (identical on every rank)."""
        rng = np.random.default_rng([self.seed, self.epoch])
        order_key = self.durations
        if self.shuffle:
            # jitter lengths by up to ~5 % so that batch composition changes between epochs
            order_key = self.durations * np.exp(rng.uniform(-0.05, 0.05, self.durations.size))
        order = np.argsort(order_key, kind="stable")
        batches: list[list[int]] = []
        current: list[int] = []
        longest = 0.0
        for index in order.tolist():
            d = float(self.durations[index])
            grown = max(longest, d) * (len(current) + 1)
            full = self.max_utterances is not None and len(current) >= self.max_utterances
            if current and (grown > self.max_seconds or full):
                batches.append(current)
                current, longest = [], 0.0
            current.append(index)
            longest = max(longest, d)
        if current:
            batches.append(current)
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def _shard(self) -> list[list[int]]:
        batches = self.all_batches()
        if self.world_size > 1 and batches:
            if self.drop_last:
                batches = batches[: len(batches) - len(batches) % self.world_size]
            else:
                short = -len(batches) % self.world_size
                batches = batches + [batches[i % len(batches)] for i in range(short)]
        return batches[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._shard())

    def __len__(self) -> int:
        n = len(self.all_batches())
        if self.world_size == 1:
            return n
        return n // self.world_size if self.drop_last else math.ceil(n / self.world_size)
