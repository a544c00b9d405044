"""recipes.check_results on hand-written tables in the form `speechprompt report` writes."""

from __future__ import annotations

from recipes.check_results import check

HEAD = ("| data | method | slu_f1 (higher is better) | span_f1 | intent_accuracy | wer | seeds | slu_f1 vs finetune |"
        " trainable params |\n|---|---|---|---|---|---|---|---|---|\n")


def table(rows: list[str]) -> str:
    return "# Results\n\n" + HEAD + "".join(r + "\n" for r in rows) + "\n"


def test_every_metric_column_of_an_slu_table_is_checked(tmp_path):
    path = tmp_path / "RESULTS.md"
    good = ["| 200utt | finetune | 50.00 | 40.00 | 80.00 | 12.50 | 1 | (reference) | 1.2k |",
            "| 200utt | prompt | 45.00 ± 1.00 | 38.00 | 79.00 | 13.00 | 2 | -10.0% | 4.0k |"]
    path.write_text(table(good))
    assert check(path, ["finetune", "prompt"]) == []
    path.write_text(table([good[0], good[1].replace("| 38.00 |", "| nan |")]))
    problems = check(path, ["finetune", "prompt"])
    assert len(problems) == 1 and "'span_f1' is not a finite number" in problems[0]
    path.write_text(table(good[:1]))
    assert "no row for method 'prompt'" in check(path, ["finetune", "prompt"])[0]
