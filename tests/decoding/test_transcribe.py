"""`speechprompt transcribe` and the Transcriber API: mixed-task batches, bad files, wrong backbones, SLU slots."""

from __future__ import annotations

import json
import shutil

import pytest
import serving_fixtures as fx  # tests/ is on pytest's pythonpath

from speechprompt.cli import main
from speechprompt.data.audio import load_audio
from speechprompt.decoding.transcriber import Transcriber
from speechprompt.tuning import ArtifactError


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("transcribe")
    backbone, tokenizer = fx.make_backbone(root)
    asr = fx.make_prompt_artifact(backbone, root / "asr", tokenizer, seed=1, output="asr")
    slu = fx.make_prompt_artifact(backbone, root / "slu", tokenizer, seed=2, output="slu")
    waves = fx.write_waves(root / "audio", 6)
    return root, asr, slu, waves


def transcribe(args, capsys):
    rc = main(["transcribe", *map(str, args)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def jsonl(text):
    return {row["id"]: row for row in map(json.loads, text.splitlines())}


def test_mixed_batch_equals_each_task_alone(setup, capsys, tmp_path):
    root, asr, slu, waves = setup
    prompts = ["--backbone", root / "backbone", "--prompt", f"asr={asr}", "--prompt", f"slu={slu}", "--max-len", 15]
    task_of = {str(p): ("asr", "slu")[i % 2] for i, p in enumerate(waves)}
    task_list = tmp_path / "tasks.txt"
    task_list.write_text("".join(f"{p} {t}\n" for p, t in task_of.items()))
    rc, out, _ = transcribe([*prompts, "--task-list", task_list, "--format", "jsonl", root / "audio"], capsys)
    assert rc == 0
    mixed = jsonl(out)
    assert set(mixed) == set(task_of)
    alone = {}
    for task in ("asr", "slu"):
        rc, out, _ = transcribe([*prompts, "--task", task, "--format", "jsonl", root / "audio"], capsys)
        assert rc == 0
        alone[task] = jsonl(out)
    for key, task in task_of.items():
        assert mixed[key]["task"] == task
        assert mixed[key]["text"] == alone[task][key]["text"]
        assert ("slots" in mixed[key]) == (task == "slu")
    # the prompt must matter, or the comparison above proves nothing
    assert any(alone["asr"][k]["text"] != alone["slu"][k]["text"] for k in task_of)


def test_corrupt_file_is_reported_and_the_rest_transcribed(setup, capsys, tmp_path):
    root, asr, _, waves = setup
    folder = tmp_path / "audio"
    shutil.copytree(root / "audio", folder)
    (folder / "sub" / "broken.wav").write_bytes(b"RIFF\x00\x00not really a wave file")
    output = tmp_path / "out" / "text"
    rc, _, err = transcribe(["--backbone", root / "backbone", "--prompt", f"asr={asr}", "--format", "kaldi",
                             "--output", output, "--max-len", 10, folder], capsys)
    assert rc == 1
    assert "broken.wav" in err and "1 of 7 input(s) skipped, 6 transcribed" in err
    ids = [line.split()[0] for line in output.read_text().splitlines()]
    assert len(ids) == 6 and not any("broken" in i for i in ids)


def test_wav_scp_input_and_text_format(setup, capsys, tmp_path):
    root, asr, _, waves = setup
    scp = tmp_path / "wav.scp"
    scp.write_text("".join(f"u{i} {p}\n" for i, p in enumerate(waves[:3])))
    args = ["--backbone", root / "backbone", "--prompt", f"asr={asr}", "--max-len", 10]
    rc, kaldi, _ = transcribe([*args, "--format", "kaldi", scp], capsys)
    assert rc == 0 and [line.split()[0] for line in kaldi.splitlines()] == ["u0", "u1", "u2"]
    rc, plain, _ = transcribe([*args, *waves[:3]], capsys)
    assert rc == 0
    assert plain.splitlines() == [line.partition(" ")[2] for line in kaldi.splitlines()]


def test_artifact_of_another_backbone_is_refused(setup, capsys, tmp_path):
    root, asr, _, _ = setup
    other, tokenizer = fx.make_backbone(tmp_path, seed=5)
    foreign = fx.make_prompt_artifact(other, tmp_path / "foreign", tokenizer, seed=1)
    transcriber = Transcriber.from_dirs(root / "backbone", {"asr": asr})
    with pytest.raises(ArtifactError, match="cannot add task 'other'.*fingerprint.*load the backbone it was trained on"):
        transcriber.add_task("other", foreign)
    assert transcriber.tasks == ["asr"]
    rc, _, err = transcribe(["--backbone", root / "backbone", "--prompt", f"x={foreign}", root / "audio"], capsys)
    assert rc == 2 and "fingerprint" in err


def test_api_mixed_tasks_slots_and_order(setup):
    root, asr, slu, waves = setup
    transcriber = Transcriber.from_dirs(root / "backbone", {"asr": asr, "slu": slu}, max_len=12, batch_seconds=2.0)
    audio = [load_audio(p) for p in waves]
    tasks = ["slu", "asr", "asr", "slu", "slu", "asr"]
    mixed = transcriber.transcribe(audio, tasks)
    assert [r.task for r in mixed] == tasks
    for wave, task, result in zip(audio, tasks, mixed, strict=True):
        assert transcriber.transcribe([wave], task)[0].text == result.text
        assert result.seconds == pytest.approx(len(wave) / 16000)
        if task == "slu":
            assert set(result.slots) == {"intent", "slots", "transcript", "format_errors"}
        else:
            assert result.slots is None
    with pytest.raises(ValueError, match="2 tasks are loaded"):
        transcriber.transcribe(audio[:1])
    with pytest.raises(KeyError, match="not loaded"):
        transcriber.transcribe(audio[:1], "nope")


def test_slu_detection_from_task_json_or_tokenizer():
    from speechprompt.data.text import CharTokenizer
    from speechprompt.decoding.transcriber import is_slu_artifact

    markup = CharTokenizer.train(["alarm_set | wake me at [ time : five ]"])
    plain = CharTokenizer.train(["wake me at five"])
    assert is_slu_artifact({}, markup) and not is_slu_artifact({}, plain)
    assert not is_slu_artifact({"output": "asr"}, markup) and is_slu_artifact({"output": "slu"}, plain)
    assert not is_slu_artifact({}, None)


def test_task_list_with_unknown_task_reports_that_file(setup, capsys, tmp_path):
    root, asr, slu, waves = setup
    task_list = tmp_path / "tasks.txt"
    task_list.write_text(f"{waves[0]} nope\n{waves[1]} slu\nmissing.wav asr\n")
    rc, out, err = transcribe(["--backbone", root / "backbone", "--prompt", f"asr={asr}", "--prompt", f"slu={slu}",
                               "--task-list", task_list, "--format", "jsonl", "--max-len", 8, *waves[:3]], capsys)
    assert rc == 1
    assert f"skipped {waves[0]}: task 'nope' is not loaded" in err and "match no input" in err
    rows = jsonl(out)
    assert sorted(rows) == [str(waves[1])] and rows[str(waves[1])]["task"] == "slu"
    # waves[2] has no line in the list and two prompts are loaded: reported, not guessed
    assert f"skipped {waves[2]}: no task given and 2 are loaded" in err


def test_tasks_with_the_same_tokenizer_files_share_one_tokenizer(setup):
    root, asr, slu, _ = setup
    transcriber = Transcriber.from_dirs(root / "backbone", {"a": asr, "b": slu})
    assert transcriber.task_info["a"].tokenizer is transcriber.task_info["b"].tokenizer
    assert transcriber.task_info["b"].slu and not transcriber.task_info["a"].slu  # still each task's own settings
