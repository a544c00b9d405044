"""The SLURP-style slot-filling corpus: annotations, held-out test material, determinism."""

from __future__ import annotations

import json
import shutil

import pytest

from recipes import corpus_files, slu_templates, synth_slu
from speechprompt.data.kaldi_dir import DataDir
from speechprompt.data.validate import validate
from speechprompt.score.slu import read_gold


def test_fill_gives_token_spans_and_slurp_annotation():
    tokens, entities, annotation = synth_slu.fill("wake me up at {time} {date}", {"time": "seven am", "date": "tomorrow"})
    assert tokens == ["wake", "me", "up", "at", "seven", "am", "tomorrow"]
    assert entities == [{"type": "time", "span": [4, 5]}, {"type": "date", "span": [6]}]
    assert annotation == "wake me up at [time : seven am] [date : tomorrow]"


def test_inventory_is_large_enough():
    assert len(slu_templates.TEMPLATES) >= 10 and len(slu_templates.SLOT_VALUES) >= 15
    assert sum(synth_slu.SET_SIZES.values()) >= 3000


def test_test_sentences_use_only_held_out_templates_and_values():
    taken: set[str] = set()
    train = synth_slu.generate("train_1000", 300, 0, taken)
    test = synth_slu.generate("test", 300, 0, taken)
    assert len({r["sentence"] for r in train + test}) == 600
    for record in train:
        assert record["template"] in slu_templates.TEMPLATES[record["intent"]][0]
    for record in test:
        assert record["template"] in slu_templates.TEMPLATES[record["intent"]][1]
        for entity in record["entities"]:
            words = " ".join(record["tokens"][i]["surface"] for i in entity["span"])
            assert words in slu_templates.split_values(entity["type"], held_out=True)
            assert words not in slu_templates.split_values(entity["type"], held_out=False)
    assert {r["intent"] for r in test} == set(slu_templates.TEMPLATES)


@pytest.mark.skipif(shutil.which("espeak-ng") is None or shutil.which("flite") is None,
                    reason="needs Debian espeak-ng and flite")
def test_quick_build_is_valid_deterministic_and_annotated(tmp_path, monkeypatch):
    monkeypatch.setattr(synth_slu, "QUICK_SIZES", {"train_1000": 12, "dev": 4, "test": 6})
    monkeypatch.setattr(synth_slu, "QUICK_NESTED", 4)
    dirs = synth_slu.build(tmp_path / "a", quick=True, nj=2)
    again = synth_slu.build(tmp_path / "b", quick=True, nj=1)
    voices = {}
    for name, path in dirs.items():
        assert validate(path)[1] == []
        data = DataDir.read(path)
        sums = {u: corpus_files.file_sha256(data.wav_scp[u]) for u in data.utt_ids}
        other = DataDir.read(again[name])
        assert sums == {u: corpus_files.file_sha256(other.wav_scp[u]) for u in other.utt_ids}
        records = [json.loads(line) for line in (path / "slurp.jsonl").read_text().splitlines()]
        intents = dict(line.split(" ", 1) for line in (path / "utt2intent").read_text().splitlines())
        assert len(records) == len(data) == len(intents)
        for record in records:
            utt = record["recordings"][0]["utt_id"]
            assert data.text[utt] == record["sentence"] and intents[utt] == record["intent"]
            assert record["intent"] == f"{record['scenario']}_{record['action']}"
            assert record["recordings"][0]["file"] == f"{utt}.flac"
        gold = read_gold(path / "slurp.jsonl")  # the scorer reads our annotations, keyed by utterance id
        assert set(gold) == set(data.utt_ids)
        voices[name] = set(data.utt2spk.values())
    assert set(DataDir.read(dirs["train_200"]).utt_ids) <= set(DataDir.read(dirs["train_1000"]).utt_ids)
    assert not voices["test"] & (voices["train_1000"] | voices["dev"])
