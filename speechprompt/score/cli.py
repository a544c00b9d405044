"""Score hypotheses against references: WER/CER for ASR, SLU-F1 / span F1 / intent accuracy for SLU.

References and hypotheses are Kaldi ``text`` files (``utt_id words...``) or sclite ``trn`` files
(``words... (utt_id)``), detected per file. Both sides go through the training text normaliser.
For ``--task slu`` the hypotheses are generated target-format text
(``alarm_set | wake me up at [ time : five am ]``) and the gold is SLURP JSONL (``*.jsonl``) or a
text / trn file in the same target format.

Writes into --out:
  asr: wer_summary.txt (%WER / %CER / %SER lines, worst utterances), per_utt.txt (Kaldi ref/hyp/op
       lines), wer.json
  slu: slu_summary.txt, slu.json, slu_per_utt.txt, predictions.jsonl (SLURP format, one line per
       gold recording, for the official SLURP evaluation), and the transcript WER files above

Hypotheses missing for a reference are scored as empty and reported; extra hypotheses are reported.

Examples:
  speechprompt score --task asr --ref data/test/text --hyp exp/prompt/decode_test/hyp.trn \\
      --out exp/prompt/decode_test/score
  speechprompt score --task slu --ref data/slurp/test.jsonl --hyp exp/prompt/decode_test/text \\
      --out exp/prompt/decode_test/score
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", choices=("asr", "slu"), required=True, help="what to score")
    parser.add_argument("--ref", required=True, type=Path,
                        help="references: Kaldi text or trn; for slu also SLURP JSONL (*.jsonl)")
    parser.add_argument("--hyp", required=True, type=Path, help="hypotheses: Kaldi text or trn")
    parser.add_argument("--out", required=True, type=Path, help="result folder (created)")
    parser.add_argument("--format", choices=("auto", "text", "trn"), default="auto",
                        help="transcript file format (default: detected per file)")
    parser.add_argument("--top", type=int, default=20, help="utterances with most errors to list (asr)")
    parser.add_argument("--normalizer", default="auto", type=_normalizer_name,
                        help="asr: text normaliser of both sides: auto (the one decode.json beside --hyp names, "
                             "else speechprompt), speechprompt, whisper_english, whisper_basic[:LANG], "
                             "whisper_basic_nodiacritics[:LANG] (LANG: spell digits in that language) or none; "
                             "the raw figure (text as written) is kept beside it")
    parser.add_argument("--slot-types", type=Path, default=None,
                        help="slu: file with the known slot types, one per line; others are format errors "
                             "(default: the types found in the gold)")


def _normalizer_name(name: str) -> str:
    """argparse type: ``auto`` or a name ``speechprompt.score.wer.get_normalizer`` knows."""
    if name != "auto":
        from speechprompt.score.wer import get_normalizer

        try:
            get_normalizer(name)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    return name


def _read_slot_types(path: Path) -> set[str]:
    try:
        return {line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: cannot read slot types ({err})") from err


def normalizer_for(args: argparse.Namespace) -> str:
    """--normalizer, or for auto the normaliser that decode.json beside the hypotheses names."""
    if args.normalizer != "auto":
        return args.normalizer
    decode_json = args.hyp.parent / "decode.json"
    if decode_json.is_file():
        try:
            return json.loads(decode_json.read_text(encoding="utf-8")).get("normalizer") or "speechprompt"
        except json.JSONDecodeError as err:
            raise ValueError(f"{decode_json}: not valid JSON ({err})") from err
    return "speechprompt"


def run(args: argparse.Namespace) -> int:
    from speechprompt.score.slu import read_gold, score_slu, write_slu_results
    from speechprompt.score.slu_format import SluFormatError
    from speechprompt.score.transcripts import TranscriptError, read_transcripts
    from speechprompt.score.wer import get_normalizer, score_transcripts, write_wer_results

    sources = {"ref": str(args.ref), "hyp": str(args.hyp)}
    try:
        hyps = read_transcripts(args.hyp, args.format)
        if args.task == "asr":
            refs = read_transcripts(args.ref, args.format)
            if not refs:
                raise TranscriptError(f"{args.ref}: no utterances (an empty reference file)")
            name = normalizer_for(args)
            result = score_transcripts(refs, hyps, get_normalizer(name))
            raw = score_transcripts(refs, hyps, get_normalizer("none"))
            lines = write_wer_results(result, args.out, top_n=args.top, sources=sources, normalizer=name, raw=raw)
        else:
            gold = read_gold(args.ref, fmt=args.format)
            if not gold:
                raise SluFormatError(f"{args.ref}: no utterances (an empty gold file)")
            known = (_read_slot_types(args.slot_types) if args.slot_types
                     else {e.type for g in gold.values() for e in g.annotation.entities})
            lines = write_slu_results(score_slu(gold, hyps, known_types=known), gold, args.out, sources=sources)
    except (TranscriptError, SluFormatError, ValueError) as err:
        print(f"speechprompt score: {err}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    print(f"results in {args.out}")
    return 0
