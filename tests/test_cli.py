"""The command line: every verb has help with examples, and unknown verbs fail clearly."""

from __future__ import annotations

import pytest

from speechprompt.cli import COMMANDS, main


@pytest.mark.parametrize("verb", sorted(COMMANDS))
def test_every_verb_has_help_with_examples(verb, capsys):
    with pytest.raises(SystemExit) as stop:
        main([verb, "--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    assert f"speechprompt {verb}" in text
    assert "example" in text.lower(), f"'speechprompt {verb} --help' shows no examples"


def test_top_level_help_lists_every_verb(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for verb in COMMANDS:
        assert verb in text


def test_unknown_verb_is_an_error(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["transmogrify"])
    assert stop.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
