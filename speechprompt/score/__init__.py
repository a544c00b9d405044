"""Scoring: WER/CER (:mod:`.wer`), the SLU target format (:mod:`.slu_format`) and slot filling
scores as SLURP defines them (:mod:`.slu`). ``speechprompt score`` is :mod:`.cli`."""

from speechprompt.score.slu import SluResult, read_gold, score_slu, write_slu_results
from speechprompt.score.slu_format import (
    SLU_MARKUP,
    Entity,
    SluAnnotation,
    SluFormatError,
    parse,
    read_slurp_jsonl,
)
from speechprompt.score.transcripts import TranscriptError, read_transcripts
from speechprompt.score.wer import ErrorCounts, WerResult, score_transcripts, summary_line, write_wer_results

__all__ = [
    "SLU_MARKUP", "Entity", "ErrorCounts", "SluAnnotation", "SluFormatError", "SluResult", "TranscriptError", "WerResult",
    "parse", "read_gold", "read_slurp_jsonl", "read_transcripts", "score_slu", "score_transcripts",
    "summary_line", "write_slu_results", "write_wer_results",
]
