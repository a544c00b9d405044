"""Spoken slot filling scores: SLU-F1 as SLURP defines it, span F1, slot-type F1, intent accuracy.

SLU-F1 (Bastianelli et al., "SLURP", EMNLP 2020; official ``scripts/evaluation/metrics``) is
computed twice, once with a word-level and once with a character-level distance, per utterance:

- for each predicted entity whose type occurs among the (still unmatched) gold entities, the gold
  entity of that type with the lowest distance (the first one on ties) is matched and removed:
  TP += 1, FP += d, FN += d, where d is the distance between the gold and predicted fillers;
- a predicted entity whose type is not among the unmatched gold entities: FP += 1;
- each gold entity left unmatched: FN += 1.

Word distance d_w = (S + D + I) / gold words (the WER of the filler, so it may exceed 1);
character distance d_c = Levenshtein(gold, pred) / max(len(gold), len(pred)). SLU-F1 is the F1 of
the summed counts: P = (TP_w + TP_c) / (TP_w + TP_c + FP_w + FP_c), R likewise with FN, F1 = 2PR/(P+R)
(P = 0 when TP + FP = 0, R = 0 when TP + FN = 0, F1 = 0 when P = R = 0, as the official code does).
The official code calls ``jiwer.wer(truth=...)`` (removed in jiwer 4) and ``textdistance``; here the
same two distances come from jiwer 4's ``process_words`` counts and rapidfuzz's normalised
Levenshtein distance.

Also: span F1 (an entity counts only with exact type and filler), slot-type F1 (multisets of types),
intent accuracy, and WER/CER of the transcript part (fillers in place). All scores in percent.

Inputs as the official ``evaluate.py`` reads them (``slu_f1``, ``word_f1``, ``char_f1``, ``span_f1``,
``slot_type_f1``, ``intent_accuracy``):

- the gold intent is ``scenario_action`` (not the record's ``intent`` field, which differs in 37
  records of SLURP's test set); gold fillers are the span's ``tokens[].surface`` lower-cased and
  joined by spaces; predicted intents and fillers are compared as the model wrote them;
- a gold recording without a hypothesis counts as an empty prediction here (counted and reported),
  while the official script skips it with a warning: that figure is reported too, as
  ``slu_f1_slurp_script`` / ``intent_accuracy_slurp_script`` (over the predicted recordings only).

``slu_f1_normalised`` is an extra figure, not SLURP's: both gold and predicted fillers pass through
the training text normaliser (punctuation, case) before the same computation. The SLURP-format
``predictions.jsonl`` written beside the scores has one line per gold recording (fillers as the
model wrote them), so the official evaluation run on it gives ``slu_f1``.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import jiwer
from rapidfuzz.distance import Levenshtein

from speechprompt.score.slu_format import (
    SLU_MARKUP,
    Entity,
    SluAnnotation,
    SluFormatError,
    parse,
    read_slurp_jsonl,
)
from speechprompt.score.wer import WerResult, score_transcripts, summary_line

__all__ = ["SLU_MARKUP", "GoldExample", "SluResult", "read_gold", "score_slu", "write_slu_results"]


@dataclass
class Counts:
    """True positives, false positives, false negatives (floats: distances are fractional)."""

    tp: float = 0.0
    fp: float = 0.0
    fn: float = 0.0

    @property
    def precision(self) -> float:
        return 0.0 if self.tp + self.fp == 0 else self.tp / (self.tp + self.fp)

    @property
    def recall(self) -> float:
        return 0.0 if self.tp + self.fn == 0 else self.tp / (self.tp + self.fn)

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 0.0 if p + r == 0 else 2 * p * r / (p + r)

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)

    def to_dict(self) -> dict:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn,
                "precision": 100 * self.precision, "recall": 100 * self.recall, "f1": 100 * self.f1}


PerType = dict[str, Counts]


def total(per_type: PerType) -> Counts:
    """Micro average: the sum of the per-type counts."""
    out = Counts()
    for counts in per_type.values():
        out = out + counts
    return out


def word_distance(gold: str, pred: str) -> float:
    """WER of ``pred`` against the (non-empty) gold filler: (S + D + I) / gold words."""
    out = jiwer.process_words(gold, pred)
    return (out.substitutions + out.deletions + out.insertions) / max(1, out.hits + out.substitutions + out.deletions)


def char_distance(gold: str, pred: str) -> float:
    """Levenshtein distance normalised by the longer string (textdistance's normalized_distance)."""
    return Levenshtein.normalized_distance(gold, pred)


def add_span_counts(gold: list[Entity], pred: list[Entity], into: PerType) -> None:
    """Exact match of (type, filler), each gold entity matched at most once."""
    remaining = list(gold)
    for entity in pred:
        if entity in remaining:
            into[entity.type].tp += 1
            remaining.remove(entity)
        else:
            into[entity.type].fp += 1
    for entity in remaining:
        into[entity.type].fn += 1


def add_distance_counts(gold: list[Entity], pred: list[Entity], distance: Callable[[str, str], float], into: PerType) -> None:
    """SLURP's span-distance counts (see the module docstring), in prediction order."""
    remaining = list(gold)
    for entity in pred:
        candidates = [i for i, g in enumerate(remaining) if g.type == entity.type]
        if not candidates:
            into[entity.type].fp += 1
            continue
        best, best_d = candidates[0], float("inf")
        for i in candidates:
            d = distance(remaining[i].filler, entity.filler)
            if d < best_d:  # strict: the first gold entity wins ties, as in the official code
                best, best_d = i, d
        into[entity.type].tp += 1
        into[entity.type].fp += best_d
        into[entity.type].fn += best_d
        remaining.pop(best)
    for entity in remaining:
        into[entity.type].fn += 1


def add_type_counts(gold: list[Entity], pred: list[Entity], into: PerType) -> None:
    """Slot types as multisets: fillers ignored."""
    g, p = Counter(e.type for e in gold), Counter(e.type for e in pred)
    for t in g | p:
        into[t].tp += min(g[t], p[t])
        into[t].fp += max(0, p[t] - g[t])
        into[t].fn += max(0, g[t] - p[t])


@dataclass
class GoldExample:
    file: str  # the recording name written to predictions.jsonl (SLURP's "file")
    annotation: SluAnnotation  # normalised, as training targets are built
    slurp: SluAnnotation | None = None  # as SLURP's evaluation reads the gold; None: ``annotation``

    @property
    def as_slurp(self) -> SluAnnotation:
        return self.slurp if self.slurp is not None else self.annotation


@dataclass
class UttSlu:
    utt_id: str
    gold: SluAnnotation
    pred: SluAnnotation  # the normalised hypothesis, parsed
    hyp_text: str | None  # None: no hypothesis
    format_errors: list[str]
    written: SluAnnotation | None = None  # the hypothesis parsed as written (None: same as pred)


@dataclass
class SluResult:
    span: PerType
    word: PerType
    char: PerType
    types: PerType
    intent_correct: int
    utterances: list[UttSlu]
    transcript: WerResult
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    # the same counts over the predicted recordings only, as SLURP's evaluate.py skips the others
    script_word: PerType = field(default_factory=dict)
    script_char: PerType = field(default_factory=dict)
    script_intent_correct: int = 0
    # both sides through the text normaliser: an extra figure, not SLURP's
    normalised_word: PerType = field(default_factory=dict)
    normalised_char: PerType = field(default_factory=dict)

    @property
    def slu(self) -> Counts:
        return total(self.word) + total(self.char)

    @property
    def slu_script(self) -> Counts:
        return total(self.script_word) + total(self.script_char)

    @property
    def slu_normalised(self) -> Counts:
        return total(self.normalised_word) + total(self.normalised_char)

    @property
    def format_errors(self) -> int:
        return sum(len(u.format_errors) for u in self.utterances)

    def metrics(self) -> dict[str, float]:
        n = len(self.utterances)
        predicted = n - len(self.missing)
        slu = self.slu
        return {
            "slu_f1": 100 * slu.f1, "slu_precision": 100 * slu.precision, "slu_recall": 100 * slu.recall,
            "word_f1": 100 * total(self.word).f1, "char_f1": 100 * total(self.char).f1,
            "span_f1": 100 * total(self.span).f1, "slot_type_f1": 100 * total(self.types).f1,
            "intent_accuracy": 100 * self.intent_correct / n if n else 0.0,
            "wer": self.transcript.word.rate, "cer": self.transcript.char.rate,
            "slu_f1_slurp_script": 100 * self.slu_script.f1,
            "intent_accuracy_slurp_script": 100 * self.script_intent_correct / predicted if predicted else 0.0,
            "slu_f1_normalised": 100 * self.slu_normalised.f1,
        }


def score_slu(gold: dict[str, GoldExample], hyps: dict[str, str], known_types: set[str] | None = None,
              normalize: Callable[[str], str] | None = None) -> SluResult:
    """Parse each hypothesis (generated target-format text) and score it against the gold example.

    SLURP's figures compare the hypothesis as written with ``GoldExample.as_slurp``. ``normalize``
    (default: ``normalize_text`` keeping the markup) is applied to hypotheses for the transcript WER,
    the format errors and ``slu_f1_normalised``, against the normalised ``GoldExample.annotation``.
    """
    if normalize is None:
        from speechprompt.data.text import normalize_text

        def normalize(s: str) -> str:
            return normalize_text(s, keep=SLU_MARKUP)

    span, word, char, types, script_word, script_char, norm_word, norm_char = (defaultdict(Counts) for _ in range(8))
    intent_correct = script_intent_correct = 0
    utterances = []
    for utt_id in sorted(gold):
        g, ref = gold[utt_id].annotation, gold[utt_id].as_slurp
        text = hyps.get(utt_id)
        if text is None:
            pred, written, errors = SluAnnotation(""), SluAnnotation(""), []
        else:
            parsed = parse(normalize(text), known_types)
            pred, errors = parsed.annotation, parsed.errors
            written = parse(text).annotation
        add_span_counts(ref.entities, written.entities, span)
        add_distance_counts(ref.entities, written.entities, word_distance, word)
        add_distance_counts(ref.entities, written.entities, char_distance, char)
        add_type_counts(ref.entities, written.entities, types)
        intent_correct += int(written.intent == ref.intent)
        if text is not None:
            add_distance_counts(ref.entities, written.entities, word_distance, script_word)
            add_distance_counts(ref.entities, written.entities, char_distance, script_char)
            script_intent_correct += int(written.intent == ref.intent)
        add_distance_counts(g.entities, pred.entities, word_distance, norm_word)
        add_distance_counts(g.entities, pred.entities, char_distance, norm_char)
        utterances.append(UttSlu(utt_id, g, pred, text, errors, written))
    transcript = score_transcripts(
        {u.utt_id: u.gold.transcript for u in utterances},
        {u.utt_id: u.pred.transcript for u in utterances if u.hyp_text is not None},
    )
    missing = [u.utt_id for u in utterances if u.hyp_text is None]
    extra = sorted(set(hyps) - set(gold))
    return SluResult(dict(span), dict(word), dict(char), dict(types), intent_correct, utterances,
                     transcript, missing, extra, dict(script_word), dict(script_char), script_intent_correct,
                     dict(norm_word), dict(norm_char))


def read_gold(path: str | Path, normalize: Callable[[str], str] | None = None, fmt: str = "auto") -> dict[str, GoldExample]:
    """Gold from SLURP JSONL (one entry per recording) or a Kaldi text / trn file in the target format.

    For SLURP JSONL the key of a recording is its file name without extension
    (``audio-1490200123-headset``), the usual Kaldi utterance id; ``file`` keeps the full name.
    """
    from speechprompt.data.text import normalize_text
    from speechprompt.score.transcripts import read_transcripts

    normalize = normalize or normalize_text
    path = Path(path)
    gold: dict[str, GoldExample] = {}
    if path.suffix in (".jsonl", ".json"):
        for record in read_slurp_jsonl(path, normalize):
            for file in record.ids:
                key = Path(file).stem if Path(file).suffix in (".flac", ".wav") else file
                if key in gold:
                    raise SluFormatError(f"{path}:{record.line}: recording {key!r} appears twice")
                gold[key] = GoldExample(file, record.annotation, record.slurp)
        return gold
    lines: dict[str, int] = {}
    for utt_id, text in read_transcripts(path, fmt, line_numbers=lines).items():
        result = parse(normalize_text(text, keep=SLU_MARKUP))
        if result.errors:
            raise SluFormatError(f"{path}:{lines[utt_id]}: {utt_id}: gold is not in the target format: "
                                 f"{'; '.join(result.errors)} (expected 'intent | words [ type : filler ]')")
        as_written = parse(text).annotation  # SLURP's reading: fillers lower-cased, nothing else changed
        entities = [Entity(e.type, e.filler.lower()) for e in as_written.entities]
        gold[utt_id] = GoldExample(utt_id, result.annotation, SluAnnotation(as_written.intent, entities))
    return gold


def slurp_prediction(example: GoldExample, pred: SluAnnotation) -> dict:
    """One line of SLURP's prediction JSONL; the intent splits at its first '_' into scenario/action."""
    scenario, _, action = pred.intent.partition("_")
    return {"file": example.file, "scenario": scenario, "action": action,
            "entities": [{"type": e.type, "filler": e.filler} for e in pred.entities],
            "transcript": pred.transcript}


def summary_lines(result: SluResult) -> list[str]:
    m, n = result.metrics(), len(result.utterances)
    span, types, slu = total(result.span), total(result.types), result.slu
    norm = result.slu_normalised
    lines = [
        f"SLU-F1 {m['slu_f1']:.2f} [ P {m['slu_precision']:.2f}, R {m['slu_recall']:.2f}; "
        f"word-F1 {m['word_f1']:.2f}, char-F1 {m['char_f1']:.2f}; tp {slu.tp:g}, fp {slu.fp:.3f}, fn {slu.fn:.3f} ]",
        f"SLU-F1-normalised {m['slu_f1_normalised']:.2f} [ not SLURP's figure: gold and predicted fillers both "
        f"normalised; tp {norm.tp:g}, fp {norm.fp:.3f}, fn {norm.fn:.3f} ]",
        f"Span-F1 {m['span_f1']:.2f} [ tp {span.tp:g}, fp {span.fp:g}, fn {span.fn:g} ]",
        f"Slot-type-F1 {m['slot_type_f1']:.2f} [ tp {types.tp:g}, fp {types.fp:g}, fn {types.fn:g} ]",
        f"Intent-Acc {m['intent_accuracy']:.2f} [ {result.intent_correct} / {n} ]",
        summary_line(result.transcript.word, "%WER"),
    ]
    bad = sum(1 for u in result.utterances if u.format_errors)
    lines.append(f"format errors: {result.format_errors} in {bad} of {n} utterances")
    if result.missing:
        lines.append(f"missing hypotheses: {len(result.missing)} of {n} (scored as empty predictions): "
                     + " ".join(result.missing[:10]) + (" ..." if len(result.missing) > 10 else ""))
        lines.append(f"SLURP's evaluate.py skips them: SLU-F1 {m['slu_f1_slurp_script']:.2f}, Intent-Acc "
                     f"{m['intent_accuracy_slurp_script']:.2f} over the {n - len(result.missing)} predicted")
    if result.extra:
        lines.append(f"extra hypotheses without gold: {len(result.extra)} (not scored): "
                     + " ".join(result.extra[:10]) + (" ..." if len(result.extra) > 10 else ""))
    return lines


def write_slu_results(result: SluResult, gold: dict[str, GoldExample], out_dir: str | Path,
                      sources: dict | None = None) -> list[str]:
    """Write ``slu.json``, ``slu_summary.txt``, ``slu_per_utt.txt``, ``predictions.jsonl`` (SLURP
    format) and the transcript WER files (``wer.json``, ``wer_summary.txt``, ``per_utt.txt``)."""
    from speechprompt.score.wer import write_wer_results

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_wer_results(result.transcript, out)
    lines = summary_lines(result)
    (out / "slu_summary.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with open(out / "predictions.jsonl", "w", encoding="utf-8") as f:
        for u in result.utterances:
            written = u.written if u.written is not None else u.pred  # fillers as the model wrote them
            f.write(json.dumps(slurp_prediction(gold[u.utt_id], written), ensure_ascii=False) + "\n")
    with open(out / "slu_per_utt.txt", "w", encoding="utf-8") as f:
        for u in result.utterances:
            f.write(f"{u.utt_id} gold {u.gold.to_text()}\n")
            f.write(f"{u.utt_id} hyp  {u.hyp_text if u.hyp_text is not None else '(no hypothesis)'}\n")
            for err in u.format_errors:
                f.write(f"{u.utt_id} format-error {err}\n")

    def table(per_type: PerType) -> dict:
        return {t: c.to_dict() for t, c in sorted(per_type.items())}

    report = {
        **result.metrics(),
        "utterances": len(result.utterances),
        "intent_correct": result.intent_correct,
        "format_errors": result.format_errors,
        "utterances_with_format_errors": [u.utt_id for u in result.utterances if u.format_errors],
        "missing_hypotheses": result.missing,
        "extra_hypotheses": result.extra,
        "counts": {"slu": result.slu.to_dict(), "slu_slurp_script": result.slu_script.to_dict(),
                   "slu_normalised": result.slu_normalised.to_dict(), "word": total(result.word).to_dict(),
                   "char": total(result.char).to_dict(), "span": total(result.span).to_dict(),
                   "slot_type": total(result.types).to_dict()},
        "per_type": {"word": table(result.word), "char": table(result.char), "span": table(result.span)},
        **({"sources": sources} if sources else {}),
    }
    with open(out / "slu.json", "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2, ensure_ascii=False)
        f.write("\n")
    return lines
