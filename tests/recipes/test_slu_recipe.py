"""Slot-filling targets and their path through training, decoding and scoring (tiny data, no network)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from recipes.slu_targets import TargetError, write_targets
from speechprompt.data.audio import write_audio
from speechprompt.data.kaldi_dir import DataDirError
from speechprompt.data.targets import check_lossless, read_with_targets
from speechprompt.data.text import normalize_text, train_tokenizer
from speechprompt.score.slu_format import SLU_MARKUP, annotation_from_slurp, parse

# (utt_id, SLURP-style record): tokens + entity spans, a sentence_annotation, and a plain sentence
RECORDS = [
    ("spk1-u1", {"slurp_id": 1, "intent": "alarm_set", "sentence": "Wake me up at five AM on Friday",
                 "tokens": [{"surface": w} for w in "Wake me up at five AM on Friday".split()],
                 "entities": [{"type": "time", "span": [4, 5]}, {"type": "date", "span": [7]}]}),
    ("spk1-u2", {"slurp_id": 2, "scenario": "weather", "action": "query", "sentence": "is it raining in new york",
                 "sentence_annotation": "is it raining in [place_name : new york]"}),
    ("spk2-u3", {"slurp_id": 3, "intent": "play_music", "sentence": "play something, please!"}),
]
TARGETS = {
    "spk1-u1": "alarm_set | wake me up at [ time : five am ] on [ date : friday ]",
    "spk1-u2": "weather_query | is it raining in [ place_name : new york ]",
    "spk2-u3": "play_music | play something please",
}


def make_slu_dir(root: Path, records=RECORDS, name: str = "data") -> Path:
    """A Kaldi data dir of short tones with ``text`` and a SLURP-style ``slurp.jsonl`` beside it."""
    data = root / name
    data.mkdir(parents=True)
    wav, text, spk, gold = [], [], [], []
    for i, (utt, record) in enumerate(records):
        t = np.arange(int(16000 * (0.5 + 0.1 * i))) / 16000
        path = write_audio(root / f"{utt}.wav", (0.3 * np.sin(2 * np.pi * (220 + 70 * i) * t)).astype(np.float32))
        wav.append(f"{utt} {path}\n")
        text.append(f"{utt} {normalize_text(record['sentence'])}\n")
        spk.append(f"{utt} {utt.split('-')[0]}\n")
        gold.append(json.dumps({**record, "recordings": [{"file": f"{utt}.flac", "utt_id": utt}]}) + "\n")
    for file, rows in (("wav.scp", wav), ("text", text), ("utt2spk", spk), ("slurp.jsonl", gold)):
        (data / file).write_text("".join(rows))
    return data


def read_kaldi_text(path: Path) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in path.read_text().splitlines())


def test_targets_round_trip_from_slurp_jsonl(tmp_path):
    data = make_slu_dir(tmp_path)
    report = write_targets(data)
    assert report.written == 3 and not report.unused_recordings and not report.transcript_mismatches
    targets = read_kaldi_text(data / "text_slu")
    assert targets == TARGETS
    for utt, record in RECORDS:
        parsed = parse(targets[utt])
        assert parsed.errors == []
        assert parsed.annotation == annotation_from_slurp(record, normalize_text)
        assert normalize_text(targets[utt], keep=SLU_MARKUP) == targets[utt]  # training normalisation keeps it


def test_targets_name_an_utterance_without_annotation_and_count_unused_recordings(tmp_path):
    data = make_slu_dir(tmp_path)
    gold = (data / "slurp.jsonl").read_text().splitlines()
    (data / "slurp.jsonl").write_text("\n".join(gold[:2]) + "\n")
    with pytest.raises(TargetError, match="spk2-u3"):
        write_targets(data)
    extra = json.dumps({**RECORDS[2][1], "slurp_id": 9, "recordings": [{"file": "audio-9-headset.flac"}]})
    (data / "slurp.jsonl").write_text("\n".join([*gold, extra]) + "\n")
    report = write_targets(data)
    assert report.written == 3 and report.unused_recordings == ["audio-9-headset"]
    assert "1 gold recording(s) not in the data dir" in "\n".join(report.lines())


def test_targets_report_bad_json_with_its_line(tmp_path):
    data = make_slu_dir(tmp_path)
    with open(data / "slurp.jsonl", "a") as f:
        f.write("{not json\n")
    with pytest.raises(TargetError, match=r"slurp\.jsonl:4"):
        write_targets(data)


def test_read_with_targets_replaces_text_and_names_missing_or_extra_targets(tmp_path):
    data = make_slu_dir(tmp_path)
    write_targets(data)
    assert read_with_targets(data, "text_slu").text == TARGETS
    assert read_with_targets(data).text["spk2-u3"] == "play something please"
    lines = (data / "text_slu").read_text().splitlines()
    (data / "text_slu").write_text("\n".join(lines[:2] + ["zz-extra x | y"]) + "\n")
    with pytest.raises(DataDirError) as err:
        read_with_targets(data, "text_slu")
    assert "spk2-u3" in str(err.value) and "zz-extra" in str(err.value)
    with pytest.raises(DataDirError, match="text_missing"):
        read_with_targets(data, "text_missing")


def test_char_tokenizer_of_targets_is_lossless_and_a_plain_one_is_refused(tmp_path):
    texts = [normalize_text(t, keep=SLU_MARKUP) for t in TARGETS.values()]
    tokenizer = train_tokenizer("char", texts, tmp_path / "tok")
    for text in texts:
        assert tokenizer.decode(tokenizer.encode(text)) == text
    check_lossless(tokenizer, TARGETS, keep=SLU_MARKUP)
    plain = train_tokenizer("char", [normalize_text(t) for t in TARGETS.values()])  # markup normalised away
    with pytest.raises(ValueError, match="spk1-u1"):
        check_lossless(plain, TARGETS, keep=SLU_MARKUP)


def test_bpe_with_markup_symbols_is_lossless():
    texts = [normalize_text(t, keep=SLU_MARKUP) for t in TARGETS.values()] * 5
    tokenizer = train_tokenizer("bpe", texts, vocab_size=60, symbols=list("[]:|"))
    check_lossless(tokenizer, TARGETS, keep=SLU_MARKUP)


def test_train_decode_score_keeps_the_markup(tmp_path, capsys):
    """speechprompt train on text_slu -> an SLU artifact whose tokenizer writes the markup; decode and
    score run on its output; a hypothesis equal to the target, written as decode writes it, scores 100."""
    from speechprompt.cli import main as speechprompt
    from speechprompt.config import load_config
    from speechprompt.data.text import load_tokenizer
    from speechprompt.decoding.cli_decode import write_trn
    from speechprompt.training.cli import train_task

    data = make_slu_dir(tmp_path)
    write_targets(data)
    exp = tmp_path / "exp"
    cfg = load_config(None, [f"data.train={data}", f"data.dev={data}", "data.text_file=text_slu", "data.output=slu",
                             "method.name=prompt", "method.options.num_prompts=2", "optim.max_steps=2",
                             "optim.warmup_steps=1", "data.max_batch_seconds=2", "experiment.save_every=2",
                             "experiment.eval_every=2", "experiment.progress=false", f"experiment.dir={exp}"])
    assert train_task(cfg, ["train"]) == 0
    artifact = exp / "artifact"
    assert json.loads((artifact / "task.json").read_text())["output"] == "slu"
    tokenizer = load_tokenizer(artifact / "tokenizer")
    check_lossless(tokenizer, TARGETS, keep=SLU_MARKUP)

    decode_dir, score_dir = tmp_path / "decode", tmp_path / "score"
    assert speechprompt(["decode", "--backbone", str(exp / "backbone"), "--task", str(artifact), "--data", str(data),
                         "--out", str(decode_dir), "--max-len", "8"]) == 0
    assert set(read_kaldi_text_or_empty(decode_dir / "text")) == set(TARGETS)
    assert speechprompt(["score", "--task", "slu", "--ref", str(data / "slurp.jsonl"), "--hyp",
                         str(decode_dir / "hyp.trn"), "--out", str(score_dir)]) == 0
    assert json.loads((score_dir / "slu.json").read_text())

    # what the model writes when it outputs the target: token ids -> decode -> hyp.trn -> score
    hyps = {utt: tokenizer.decode([*tokenizer.encode(t), tokenizer.eos_id]) for utt, t in TARGETS.items()}
    write_trn(tmp_path / "hyp.trn", hyps)
    assert speechprompt(["score", "--task", "slu", "--ref", str(data / "slurp.jsonl"), "--hyp",
                         str(tmp_path / "hyp.trn"), "--out", str(tmp_path / "perfect")]) == 0
    metrics = json.loads((tmp_path / "perfect" / "slu.json").read_text())
    summary = (tmp_path / "perfect" / "slu_summary.txt").read_text()
    assert "format errors: 0" in summary
    assert metrics_value(metrics, "slu_f1") == pytest.approx(100.0)
    assert metrics_value(metrics, "intent_accuracy") == pytest.approx(100.0)


def read_kaldi_text_or_empty(path: Path) -> dict[str, str]:
    """Kaldi text whose lines may hold an id alone (an empty hypothesis)."""
    return {line.split(" ", 1)[0]: line.partition(" ")[2] for line in path.read_text().splitlines()}


def metrics_value(slu_json: dict, name: str) -> float:
    return slu_json["metrics"][name] if "metrics" in slu_json else slu_json[name]


def test_train_refuses_a_tokenizer_that_loses_the_markup(tmp_path):
    from speechprompt.config import ConfigError, load_config
    from speechprompt.training.cli import train_task

    data = make_slu_dir(tmp_path)
    write_targets(data)
    train_tokenizer("char", [normalize_text(t) for t in TARGETS.values()], tmp_path / "plain")
    cfg = load_config(None, [f"data.train={data}", "data.text_file=text_slu", "data.output=slu",
                             f"data.tokenizer={tmp_path / 'plain'}", f"experiment.dir={tmp_path / 'exp'}"])
    with pytest.raises(ConfigError, match="spk1-u1.*decodes as"):
        train_task(cfg, ["train"])
    with pytest.raises(ConfigError, match="data.text_file"):
        load_config(None, ["data.text_file=../text_slu"])
