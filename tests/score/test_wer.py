"""WER / CER on hand-made files, with the expected counts worked out by hand."""

from __future__ import annotations

import json

import pytest

from speechprompt.score.transcripts import TranscriptError, read_transcripts
from speechprompt.score.wer import score_transcripts, summary_line, write_wer_results

REF_TEXT = """\
utt1 the cat sat on the mat
utt2 Hello, World!
utt3 turn the lights off
utt4 good morning
"""
HYP_TRN = """\
the bat sat on mat (utt1)
hello world (utt2)
good morning everyone (utt4)
stray words (utt9)
"""


@pytest.fixture()
def files(tmp_path):
    (tmp_path / "text").write_text(REF_TEXT)
    (tmp_path / "hyp.trn").write_text(HYP_TRN)
    return tmp_path


def test_hand_computed_wer(files):
    refs = read_transcripts(files / "text")
    hyps = read_transcripts(files / "hyp.trn")
    assert set(hyps) == {"utt1", "utt2", "utt4", "utt9"}
    result = score_transcripts(refs, hyps)
    # utt1: the cat sat on the mat / the bat sat on mat -> C S C C D C: 1 sub, 1 del (6 ref words)
    # utt2: "Hello, World!" normalises to "hello world" -> 2 hits, 0 errors (2 ref words)
    # utt3: no hypothesis -> 4 deletions (4 ref words)
    # utt4: good morning / good morning everyone -> 1 insertion (2 ref words)
    # N = 6 + 2 + 4 + 2 = 14; errors = 1 sub + (1 + 4) del + 1 ins = 7; WER = 7 / 14 = 50.00 %
    assert summary_line(result.word) == "%WER 50.00 [ 7 / 14, 1 ins, 5 del, 1 sub ]"
    # hits = N - sub - del = 14 - 1 - 5 = 8
    assert (result.word.hits, result.word.ref_len) == (8, 14)
    assert result.missing_hypotheses == ["utt3"]
    assert result.extra_hypotheses == ["utt9"]
    assert result.sentence_errors == 3  # utt1, utt3, utt4
    utt1 = result.utterances[0]
    assert utt1.ops == ["C", "S", "C", "C", "D", "C"]
    assert utt1.hyp[4] == "***"


def test_cer_counts_characters_including_spaces():
    # "ab c" vs "ab d": 4 reference characters (a, b, space, c), one substitution -> 1 / 4 = 25 %
    result = score_transcripts({"u": "ab c"}, {"u": "ab d"})
    assert summary_line(result.char, "%CER") == "%CER 25.00 [ 1 / 4, 0 ins, 0 del, 1 sub ]"


def test_result_files(files, tmp_path):
    result = score_transcripts(read_transcripts(files / "text"), read_transcripts(files / "hyp.trn"))
    lines = write_wer_results(result, tmp_path / "out", top_n=2)
    summary = (tmp_path / "out" / "wer_summary.txt").read_text()
    assert lines[0] in summary
    assert "missing hypotheses: 1 of 4 references" in summary and "utt3" in summary
    assert "extra hypotheses without reference: 1" in summary
    # the two worst utterances: utt3 (4 errors) then utt1 (2 errors)
    worst = summary.split("utterances with most errors")[1]
    assert worst.index("utt3") < worst.index("utt1") and "utt4" not in worst
    per_utt = (tmp_path / "out" / "per_utt.txt").read_text().splitlines()
    assert per_utt[3].split() == ["utt1", "#csid", "4", "1", "0", "1"]  # correct, sub, ins, del
    assert per_utt[2].split() == ["utt1", "op", "C", "S", "C", "C", "D", "C"]
    report = json.loads((tmp_path / "out" / "wer.json").read_text())
    assert report["wer"] == pytest.approx(50.0)
    assert report["word"]["deletions"] == 5 and report["missing_hypotheses"] == ["utt3"]


def test_trn_and_text_give_the_same_transcripts(tmp_path):
    (tmp_path / "a").write_text("u1 hello world\nu2\n")
    (tmp_path / "b").write_text("hello world (u1)\n (u2)\n")
    assert read_transcripts(tmp_path / "a") == read_transcripts(tmp_path / "b") == {"u1": "hello world", "u2": ""}


def test_bad_input_names_file_and_line(tmp_path):
    (tmp_path / "dup").write_text("u1 a\nu2 b\nu1 c\n")
    with pytest.raises(TranscriptError, match=r"dup:3: utterance 'u1' repeats line 1"):
        read_transcripts(tmp_path / "dup")
    (tmp_path / "bad.trn").write_text("a b (u1)\nno id here\n")
    with pytest.raises(TranscriptError, match=r"bad.trn:2: trn line"):
        read_transcripts(tmp_path / "bad.trn", fmt="trn")
    (tmp_path / "latin1").write_bytes(b"u1 ok\nu2 caf\xe9\n")
    with pytest.raises(TranscriptError, match=r"latin1:2: not valid UTF-8"):
        read_transcripts(tmp_path / "latin1")
    with pytest.raises(TranscriptError, match="cannot read"):
        read_transcripts(tmp_path / "does-not-exist")


def test_language_normaliser_spells_digits_like_the_corpus_references():
    from recipes.spoken_text import spoken_form
    from speechprompt.score.wer import get_normalizer

    ref, _ = spoken_form("Presione 1 para la opción 2,5.", "es")  # how the corpus writes the reference
    hyp = "Presione 1 para la opción 2,5."  # how a Whisper checkpoint writes what it hears
    assert score_transcripts({"u": ref}, {"u": hyp}, get_normalizer("whisper_basic")).word.errors == 4  # 1, 2 5
    assert score_transcripts({"u": ref}, {"u": hyp}, get_normalizer("whisper_basic:es")).word.errors == 0


def test_nodiacritics_normaliser_folds_accents_and_keeps_other_differences():
    from speechprompt.score.wer import get_normalizer

    refs = {"u": "su contrasena y numero de agente"}  # written without accents, as the Spanish prompts are
    hyps = {"u": "Su contraseña y número de agentes."}
    assert score_transcripts(refs, hyps, get_normalizer("whisper_basic:es")).word.errors == 3
    assert score_transcripts(refs, hyps, get_normalizer("whisper_basic_nodiacritics:es")).word.errors == 1


@pytest.mark.parametrize("name", ["whisper_english:es", "whisper_basic:xx", "whisper_fancy"])
def test_unknown_normaliser_names_fail_clearly(name):
    from speechprompt.score.wer import get_normalizer

    with pytest.raises(ValueError, match="normaliser|spell numbers"):
        get_normalizer(name)
