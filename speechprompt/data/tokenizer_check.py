"""Does a tokenizer write the training targets? Characters it can only write as ``<unk>``.

A tokenizer from elsewhere (another backbone's, a pseudo-language BPE) may map a target's letters
to ``<unk>``: the model would learn to write ``<unk>``. :func:`unknown_characters` counts the
characters (spaces aside) that the tokenizer encodes only as ``<unk>``, with an example utterance
for each, so that training can stop (or warn) before step 1.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass
class UnknownCharacters:
    total: int = 0  # characters in the targets, spaces aside
    counts: Counter = field(default_factory=Counter)  # character -> occurrences
    example: dict[str, str] = field(default_factory=dict)  # character -> first utterance holding it
    utterances: int = 0  # utterances with at least one

    @property
    def count(self) -> int:
        return sum(self.counts.values())

    @property
    def fraction(self) -> float:
        return self.count / self.total if self.total else 0.0

    def describe(self, shown: int = 8) -> str:
        """``N of M characters (x %, K distinct, in U utterances): 'a' x12 (utt1), ...``"""
        items = ", ".join(f"{c!r} x{n} ({self.example[c]})" for c, n in self.counts.most_common(shown))
        more = f", ... ({len(self.counts) - shown} more)" if len(self.counts) > shown else ""
        return (f"{self.count} of {self.total} target characters ({100 * self.fraction:.2f} %, "
                f"{len(self.counts)} distinct, in {self.utterances} utterance(s)) become <unk>: {items}{more}")


def unknown_characters(tokenizer, texts: Mapping[str, str]) -> UnknownCharacters:
    """The characters of ``texts`` (utt_id -> normalised target) the tokenizer writes only as ``<unk>``."""
    report = UnknownCharacters()
    unk = getattr(tokenizer, "unk_id", None)
    verdict: dict[str, bool] = {}
    for utt, text in sorted(texts.items()):
        seen_here = False
        for char in text:
            if char.isspace():
                continue
            report.total += 1
            if unk is None:
                continue
            if char not in verdict:
                ids = list(tokenizer.encode(char))
                verdict[char] = not ids or unk in ids
            if verdict[char]:
                report.counts[char] += 1
                report.example.setdefault(char, utt)
                seen_here = True
        report.utterances += seen_here
    return report
