from __future__ import annotations

import numpy as np
import pytest
import torch

from speechprompt.data.dataset import Batch, LengthBucketSampler, SpeechDataset, collate
from speechprompt.data.kaldi_dir import DataDir
from speechprompt.data.text import EOS_ID, PAD_ID, train_tokenizer


def test_dataset_items_and_collate(data_dir, tmp_path):
    texts = DataDir.read(data_dir).text.values()
    tok = train_tokenizer("char", texts, tmp_path / "tok")
    data = SpeechDataset(data_dir, tokenizer=tok)
    assert len(data) == 6 and data.durations[0] == pytest.approx(0.5)
    batch = collate([data[0], data[5]])
    assert isinstance(batch, Batch) and batch.waveforms.shape == (2, 28000) and batch.waveforms.dtype == torch.float32
    assert batch.wave_lengths.tolist() == [8000, 28000]
    assert torch.all(batch.waveforms[0, 8000:] == 0)
    n0 = len(tok.encode("hello world number 0"))
    assert batch.target_lengths.tolist() == [n0 + 1, n0 + 1]
    assert batch.targets[0, n0].item() == EOS_ID and batch.targets.dtype == torch.long
    assert tok.decode(batch.targets[0].tolist()) == "hello world number 0"
    assert batch.task_ids.tolist() == [0, 0] and batch.texts[1] == "hello world number 5"
    assert batch.to("cpu").utt_ids == batch.utt_ids
    short = collate([{**data[0], "tokens": [5]}, {**data[1], "tokens": [5, 6, 7]}])
    assert short.targets.tolist() == [[5, EOS_ID, PAD_ID, PAD_ID], [5, 6, 7, EOS_ID]]


def test_text_normalisation_keeps_markup_when_asked(data_dir):
    data = DataDir.read(data_dir)
    data.text[data.utt_ids[0]] = "Alarm_Set | wake me at [ time : Five AM ]"
    assert SpeechDataset(data)[0]["text"] == "alarm set wake me at time five am"
    assert SpeechDataset(data, keep="[]:|_")[0]["text"] == "alarm_set | wake me at [ time : five am ]"
    assert SpeechDataset(data, normalize=False)[0]["text"] == "Alarm_Set | wake me at [ time : Five AM ]"


def test_tasks_from_utt2task(data_dir):
    data = DataDir.read(data_dir)
    data.utt2task = {u: ("slu" if i % 2 else "asr") for i, u in enumerate(data.utt_ids)}
    data.write(data_dir)
    with pytest.raises(ValueError, match="pass tasks"):
        SpeechDataset(data_dir)
    with pytest.raises(ValueError, match="uses task 'slu'"):
        SpeechDataset(data_dir, tasks=["asr"])
    ds = SpeechDataset(data_dir, tasks=["asr", "slu"])
    assert collate([ds[i] for i in range(4)]).task_ids.tolist() == [0, 1, 0, 1]


def test_sampler_respects_budget_and_is_deterministic():
    durations = np.random.default_rng(0).uniform(0.5, 8.0, 200)
    sampler = LengthBucketSampler(durations, max_seconds=30, shuffle=True, seed=3)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(200))  # every utterance once
    assert all(len(b) * durations[b].max() <= 30 for b in batches)
    assert batches == list(LengthBucketSampler(durations, max_seconds=30, shuffle=True, seed=3))
    assert batches != list(LengthBucketSampler(durations, max_seconds=30, shuffle=True, seed=4))
    sampler.set_epoch(1)
    assert list(sampler) != batches and len(sampler) == len(list(sampler))
    # buckets group similar lengths: spread within a batch is far below the overall spread
    assert np.mean([np.ptp(durations[b]) for b in batches if len(b) > 1]) < 1.5


def test_sampler_shards_with_equal_counts_per_rank():
    durations = np.random.default_rng(1).uniform(1, 4, 101)
    full = LengthBucketSampler(durations, max_seconds=10, seed=0).all_batches()
    assert len(full) % 4 != 0  # the interesting case: batches do not split evenly
    shards = [list(LengthBucketSampler(durations, max_seconds=10, seed=0, rank=r, world_size=4)) for r in range(4)]
    assert len({len(s) for s in shards}) == 1 and len(shards[0]) == len(
        LengthBucketSampler(durations, max_seconds=10, seed=0, rank=0, world_size=4))
    covered = {i for s in shards for b in s for i in b}
    assert covered == set(range(101))
    dropped = [list(LengthBucketSampler(durations, max_seconds=10, seed=0, rank=r, world_size=4, drop_last=True))
               for r in range(4)]
    assert {len(s) for s in dropped} == {len(full) // 4}
    with pytest.raises(ValueError, match="rank 3"):
        LengthBucketSampler(durations, max_seconds=10, rank=3, world_size=3)


def test_overlong_utterance_gets_own_batch(caplog):
    batches = list(LengthBucketSampler([1.0, 50.0, 1.0], max_seconds=10, shuffle=False))
    assert [1] in batches and sorted(i for b in batches for i in b) == [0, 1, 2]
    assert "longer than max_seconds" in caplog.text


def test_dataloader_end_to_end(data_dir):
    data = SpeechDataset(data_dir)
    sampler = LengthBucketSampler(data.durations, max_seconds=3.0, shuffle=True, seed=0)
    loader = torch.utils.data.DataLoader(data, batch_sampler=sampler, collate_fn=collate)
    seen = []
    for batch in loader:
        assert batch.wave_lengths.max().item() * len(batch) <= 3.0 * 16000
        assert batch.targets.shape == (len(batch), 0)
        seen += batch.utt_ids
    assert sorted(seen) == data.utt_ids
