"""Word and character error rates (jiwer 4), with sclite/Kaldi-style result files.

Both sides pass through :func:`speechprompt.data.text.normalize_text`, the normaliser used for
training targets, so a model is scored on exactly the text it was trained to produce.

- A reference without a hypothesis is scored against an empty hypothesis (all deletions) and
  listed under ``missing_hypotheses``; a hypothesis without a reference is listed under
  ``extra_hypotheses`` and not scored. Nothing is dropped silently.
- CER counts every character of the normalised text, spaces included (jiwer's ``cer``).

Result folder (:func:`write_wer_results`):

- ``wer_summary.txt``: ``%WER 12.34 [ 56 / 454, 7 ins, 8 del, 41 sub ]``, the same for CER and
  sentences, the counts of missing / extra hypotheses, and the utterances with most errors.
- ``per_utt.txt``: Kaldi ``align-text`` style, four lines per utterance::

      utt1 ref  wake  me  up  ***
      utt1 hyp  wake  ***  up  now
      utt1 op   C  D  C  I
      utt1 #csid 2 0 1 1

- ``wer.json``: every count above plus the lists of missing and extra utterance ids.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import jiwer

EPSILON = "***"  # what Kaldi's align-text writes for the empty side of an insertion / deletion


@dataclass
class ErrorCounts:
    """Edit-distance counts over a set of utterances; ``ref_len`` = hits + substitutions + deletions."""

    hits: int = 0
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0

    @property
    def ref_len(self) -> int:
        return self.hits + self.substitutions + self.deletions

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def rate(self) -> float:
        """Error rate in percent; 0 for an empty reference without insertions, inf with them."""
        if self.ref_len == 0:
            return 0.0 if self.errors == 0 else float("inf")
        return 100.0 * self.errors / self.ref_len

    def add(self, other: ErrorCounts) -> None:
        self.hits += other.hits
        self.substitutions += other.substitutions
        self.deletions += other.deletions
        self.insertions += other.insertions

    def to_dict(self) -> dict:
        return {**asdict(self), "ref_len": self.ref_len, "errors": self.errors, "rate": self.rate}


@dataclass
class UttAlignment:
    """One utterance: aligned ``ref`` / ``hyp`` tokens (``***`` for a gap) and ops C/S/D/I."""

    utt_id: str
    ref: list[str]
    hyp: list[str]
    ops: list[str]
    counts: ErrorCounts
    missing_hypothesis: bool = False


@dataclass
class WerResult:
    word: ErrorCounts
    char: ErrorCounts
    utterances: list[UttAlignment]
    missing_hypotheses: list[str] = field(default_factory=list)
    extra_hypotheses: list[str] = field(default_factory=list)

    @property
    def sentence_errors(self) -> int:
        return sum(1 for u in self.utterances if u.counts.errors > 0)

    def worst(self, n: int) -> list[UttAlignment]:
        """The ``n`` utterances with most word errors (ties: by id, for a stable listing)."""
        ranked = sorted(self.utterances, key=lambda u: (-u.counts.errors, u.utt_id))
        return [u for u in ranked[:n] if u.counts.errors > 0]


# Text normalisers applied to both sides before scoring. Released Whisper checkpoints write cased,
# punctuated text with digits; their users score after Whisper's own normalisers (transformers ships them),
# which also map numbers and spellings, so "5 o'clock" and "five o clock" agree. "none" keeps the text as
# written (only whitespace collapsed): the raw figure.
# Whisper's basic normaliser (other languages) maps no numbers, while our corpora spell them in their
# references; "whisper_basic:<lang>" spells the digits of both sides in <lang> first (the references are
# unchanged by it), so "presione 1" is scored as "presione uno". "whisper_basic_nodiacritics" also folds
# accents (número = numero), for references written without them (the Spanish Asterisk prompts).
NORMALIZERS = ("speechprompt", "whisper_english", "whisper_basic", "whisper_basic_nodiacritics", "none")


def get_normalizer(name: str) -> Callable[[str], str]:
    """A normaliser ``NAME`` or ``NAME:LANG`` (NAME of NORMALIZERS, LANG only for whisper_basic*) as str -> str."""
    base, _, lang = name.partition(":")
    if lang and not base.startswith("whisper_basic"):
        raise ValueError(f"text normaliser {name!r}: only whisper_basic and whisper_basic_nodiacritics take a "
                         f"language (whisper_basic:es)")
    if base == "speechprompt":
        return _default_normalizer()
    if base == "whisper_english":
        from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

        # OpenAI's British-to-American spelling table is not shipped with the checkpoints: none is applied
        return EnglishTextNormalizer({})
    if base in ("whisper_basic", "whisper_basic_nodiacritics"):
        from transformers.models.whisper.english_normalizer import BasicTextNormalizer

        basic = BasicTextNormalizer(remove_diacritics=base == "whisper_basic_nodiacritics")
        if not lang:
            return basic
        from speechprompt.data.spoken_numbers import spell_numbers

        spell_numbers("", lang)  # an unknown language fails here, not at the first hypothesis
        return lambda text: basic(spell_numbers(text, lang))
    if base == "none":
        return str
    raise ValueError(f"unknown text normaliser {name!r}; choose one of {', '.join(NORMALIZERS)} "
                     f"(whisper_basic* may add :LANG)")


DEFAULT_NORMALISATION = "speechprompt.data.text.normalize_text"  # how wer.json names the "speechprompt" one


def recorded_normalizer(report: dict) -> str:
    """The normaliser name (as get_normalizer takes it) that a ``wer.json`` report was scored after."""
    named = report.get("normalization")
    return "speechprompt" if named in (None, DEFAULT_NORMALISATION) else named


def _default_normalizer() -> Callable[[str], str]:
    from speechprompt.data.text import normalize_text

    return normalize_text


def _align(chunks, ref: list[str], hyp: list[str]) -> tuple[list[str], list[str], list[str], ErrorCounts]:
    """Expand jiwer alignment chunks into aligned token rows and C/S/D/I ops."""
    ref_row, hyp_row, ops = [], [], []
    counts = ErrorCounts()
    for chunk in chunks:
        r = ref[chunk.ref_start_idx : chunk.ref_end_idx]
        h = hyp[chunk.hyp_start_idx : chunk.hyp_end_idx]
        if chunk.type == "equal":
            ref_row += r
            hyp_row += h
            ops += ["C"] * len(r)
            counts.hits += len(r)
        elif chunk.type == "substitute":
            ref_row += r
            hyp_row += h
            ops += ["S"] * len(r)
            counts.substitutions += len(r)
        elif chunk.type == "delete":
            ref_row += r
            hyp_row += [EPSILON] * len(r)
            ops += ["D"] * len(r)
            counts.deletions += len(r)
        elif chunk.type == "insert":
            ref_row += [EPSILON] * len(h)
            hyp_row += h
            ops += ["I"] * len(h)
            counts.insertions += len(h)
        else:  # jiwer has only the four types above; fail loudly if that ever changes
            raise RuntimeError(f"unknown jiwer alignment type {chunk.type!r}")
    return ref_row, hyp_row, ops, counts


def score_transcripts(
    refs: dict[str, str],
    hyps: dict[str, str],
    normalize: Callable[[str], str] | None = None,
) -> WerResult:
    """Score hypotheses against references, utterance by utterance (ids matched exactly).

    ``normalize`` defaults to :func:`speechprompt.data.text.normalize_text`; pass ``str`` to
    score the text exactly as given.
    """
    normalize = normalize or _default_normalizer()
    utt_ids = sorted(refs)
    missing = [u for u in utt_ids if u not in hyps]
    extra = sorted(u for u in hyps if u not in refs)
    ref_texts = [" ".join(normalize(refs[u]).split()) for u in utt_ids]
    hyp_texts = [" ".join(normalize(hyps.get(u, "")).split()) for u in utt_ids]

    word_total, char_total = ErrorCounts(), ErrorCounts()
    utterances: list[UttAlignment] = []
    if utt_ids:
        words = jiwer.process_words(ref_texts, hyp_texts)
        chars = jiwer.process_characters(ref_texts, hyp_texts)
        char_total = ErrorCounts(chars.hits, chars.substitutions, chars.deletions, chars.insertions)
        for i, utt_id in enumerate(utt_ids):
            ref_row, hyp_row, ops, counts = _align(words.alignments[i], words.references[i], words.hypotheses[i])
            word_total.add(counts)
            utterances.append(UttAlignment(utt_id, ref_row, hyp_row, ops, counts, utt_id not in hyps))
    return WerResult(word_total, char_total, utterances, missing, extra)


def summary_line(counts: ErrorCounts, label: str = "%WER") -> str:
    """sclite / Kaldi style: ``%WER 12.34 [ 56 / 454, 7 ins, 8 del, 41 sub ]``."""
    return (
        f"{label} {counts.rate:.2f} [ {counts.errors} / {counts.ref_len}, "
        f"{counts.insertions} ins, {counts.deletions} del, {counts.substitutions} sub ]"
    )


def summary_lines(result: WerResult) -> list[str]:
    n = len(result.utterances)
    ser = 100.0 * result.sentence_errors / n if n else 0.0
    lines = [
        summary_line(result.word, "%WER"),
        summary_line(result.char, "%CER"),
        f"%SER {ser:.2f} [ {result.sentence_errors} / {n} ]",
    ]
    if result.missing_hypotheses:
        shown = " ".join(result.missing_hypotheses[:10]) + (" ..." if len(result.missing_hypotheses) > 10 else "")
        lines.append(
            f"missing hypotheses: {len(result.missing_hypotheses)} of {n} references "
            f"(scored as all deletions): {shown}"
        )
    if result.extra_hypotheses:
        shown = " ".join(result.extra_hypotheses[:10]) + (" ..." if len(result.extra_hypotheses) > 10 else "")
        lines.append(f"extra hypotheses without reference: {len(result.extra_hypotheses)} (not scored): {shown}")
    return lines


def per_utt_lines(utt: UttAlignment) -> list[str]:
    """Kaldi ``per_utt`` lines, columns padded so that aligned tokens sit one above the other."""
    c = utt.counts
    tag = " (no hypothesis)" if utt.missing_hypothesis else ""
    widths = [max(len(r), len(h)) for r, h in zip(utt.ref, utt.hyp, strict=True)]

    def row(tokens: list[str]) -> str:
        return " ".join(t.ljust(w) for t, w in zip(tokens, widths, strict=True)).rstrip()

    return [
        f"{utt.utt_id} ref   " + row(utt.ref),
        f"{utt.utt_id} hyp   " + row(utt.hyp),
        f"{utt.utt_id} op    " + row(utt.ops),
        f"{utt.utt_id} #csid {c.hits} {c.substitutions} {c.insertions} {c.deletions}{tag}",
    ]


def write_wer_results(result: WerResult, out_dir: str | Path, top_n: int = 20, sources: dict | None = None,
                      normalizer: str = "speechprompt", raw: WerResult | None = None) -> list[str]:
    """Write ``wer.json``, ``wer_summary.txt`` and ``per_utt.txt``; return the summary lines.

    ``normalizer`` names the normaliser ``result`` was scored after; ``raw``, when given, is the same
    scoring of the text as written, kept beside it (``raw_wer``, ``raw_cer``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lines = summary_lines(result)
    if normalizer != "speechprompt" or raw is not None:
        lines.insert(0, f"normalised with {normalizer} on both sides")
    if raw is not None:
        lines.append(f"raw (text as written): %WER {raw.word.rate:.2f}, %CER {raw.char.rate:.2f}")
    worst = result.worst(top_n)
    with open(out / "wer_summary.txt", "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
        if worst:
            f.write(f"\nutterances with most errors (top {len(worst)}):\n")
            for utt in worst:
                f.write(f"{utt.counts.errors} errors / {utt.counts.ref_len} words\n")
                f.write("\n".join(per_utt_lines(utt)) + "\n")
    with open(out / "per_utt.txt", "w", encoding="utf-8") as f:
        for utt in result.utterances:
            f.write("\n".join(per_utt_lines(utt)) + "\n")
    n = len(result.utterances)
    report = {
        "wer": result.word.rate,
        "cer": result.char.rate,
        "ser": 100.0 * result.sentence_errors / n if n else 0.0,
        "word": result.word.to_dict(),
        "char": result.char.to_dict(),
        "utterances": n,
        "sentence_errors": result.sentence_errors,
        "missing_hypotheses": result.missing_hypotheses,
        "extra_hypotheses": result.extra_hypotheses,
        "worst_utterances": [u.utt_id for u in worst],
        "normalization": DEFAULT_NORMALISATION if normalizer == "speechprompt" else normalizer,
        **({"raw_wer": raw.word.rate, "raw_cer": raw.char.rate} if raw is not None else {}),
        **({"sources": sources} if sources else {}),
    }
    with open(out / "wer.json", "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2, ensure_ascii=False)
        f.write("\n")
    return lines
