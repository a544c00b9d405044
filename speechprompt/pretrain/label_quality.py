"""How good is a pseudo language? Score frame clusters and pseudo subwords against the transcripts.

Chooses the layer, clusters and BPE size of ``speechprompt pseudo-label`` from a measurement: on a
transcribed data dir (a few minutes are enough), for each feature (MFCC, or each requested encoder
layer of a backbone) and each cluster count, it fits k-means as ``pseudo-label`` does and reports

- ``letter NMI`` / ``purity``: normalised mutual information between frame clusters and letters, and
  the share of frames whose cluster's most frequent letter is theirs. No forced aligner is needed:
  letters (spaces left out) are spread evenly over the speech span of each utterance (first to last
  10 ms window within 35 dB of the loudest), frames outside it are labelled silence. A crude alignment,
  but the same for every candidate, so it ranks them: higher = units that follow what is said;
- ``speaker NMI``: between clusters and speakers on the speech frames: lower = units less bound to the voice;
- ``units/s``, ``units/letter`` after merging repeats, and ``rate r``: the correlation over utterances of
  units per second with letters per second (does a faster talker give more units?);
- per BPE size: pseudo ``tokens/s`` and ``tokens/letter`` (the decoder's target length; a Whisper decoder
  has 448 positions).

Examples:
  python -m speechprompt.pretrain.label_quality --data corpora/synth/data/dev --backbone whisper-tiny.en \\
      --layers 2,3,4 --mfcc --clusters 50,100,200 --bpe-vocab 200,500 --minutes 10 --out exp/label_quality.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from speechprompt.data.kaldi_dir import DataDir
from speechprompt.data.text import normalize_text
from speechprompt.pretrain.frame_features import MfccFeatures
from speechprompt.pretrain.labelling import make_featurizer
from speechprompt.pretrain.pseudo_language import assign_units, dedup, fit_kmeans, train_bpe, units_to_text

SILENCE = "<sil>"
SPEECH_FLOOR_DB = 35.0


def choose_utterances(data: DataDir, minutes: float, seed: int = 0) -> list[str]:
    """A seeded random subset of transcribed utterances up to ``minutes`` of audio (C-locale sorted)."""
    durations = data.durations()
    order = [u for u in data.utt_ids if data.text.get(u, "").strip()]
    np.random.default_rng(seed).shuffle(order)
    chosen, total = [], 0.0
    for utt in order:
        if total >= minutes * 60:
            break
        chosen.append(utt)
        total += durations[utt]
    return sorted(chosen, key=lambda s: s.encode())


def speech_span(wave: np.ndarray, sr: int = 16000) -> tuple[float, float]:
    """(start, end) seconds from the first to the last 10 ms window within 35 dB of the loudest one."""
    hop = sr // 100
    windows = len(wave) // hop
    if windows == 0:
        return 0.0, len(wave) / sr
    energy = (wave[: windows * hop].reshape(windows, hop).astype(np.float64) ** 2).mean(1) + 1e-12
    loud = np.flatnonzero(10 * np.log10(energy / energy.max()) > -SPEECH_FLOOR_DB)
    return loud[0] / 100.0, (loud[-1] + 1) / 100.0


def frame_letters(text: str, frames: int, frame_rate: float, span: tuple[float, float]) -> list[str]:
    """One label per frame: letters spread evenly over the speech span, silence outside it."""
    letters = [c for c in normalize_text(text) if not c.isspace()]
    start, end = span
    labels = []
    for i in range(frames):
        t = (i + 0.5) / frame_rate
        if not letters or t < start or t >= end:
            labels.append(SILENCE)
        else:
            labels.append(letters[min(len(letters) - 1, int((t - start) / (end - start) * len(letters)))])
    return labels


def score_clusters(units: dict[str, np.ndarray], letters: dict[str, list[str]], speakers: dict[str, str],
                   durations: dict[str, float], clusters: int) -> dict:
    """Frame-level and utterance-level figures of one clustering (see the module docstring)."""
    from sklearn.metrics import normalized_mutual_info_score

    utts = sorted(units)
    frame_units = np.concatenate([units[u] for u in utts])
    frame_letters_ = np.concatenate([np.asarray(letters[u]) for u in utts])
    speech = frame_letters_ != SILENCE
    frame_speakers = np.concatenate([np.full(len(units[u]), speakers.get(u, "?")) for u in utts])
    table: dict[tuple[int, str], int] = {}
    for unit, letter in zip(frame_units.tolist(), frame_letters_.tolist(), strict=True):
        table[unit, letter] = table.get((unit, letter), 0) + 1
    best: dict[int, int] = {}
    for (unit, _), count in table.items():
        best[unit] = max(best.get(unit, 0), count)
    counts = np.bincount(frame_units, minlength=clusters)
    share = counts[counts > 0] / counts.sum()
    merged = {u: dedup(units[u]) for u in utts}
    n_letters = {u: sum(1 for x in letters[u] if x != SILENCE) for u in utts}
    seconds = sum(durations[u] for u in utts)
    unit_rate = np.array([len(merged[u]) / durations[u] for u in utts])
    letter_rate = np.array([n_letters[u] / durations[u] for u in utts])
    rate_r = float(np.corrcoef(unit_rate, letter_rate)[0, 1]) if len(utts) > 2 and letter_rate.std() > 0 else float("nan")
    return {
        "letter_nmi": float(normalized_mutual_info_score(frame_letters_, frame_units)),
        "letter_purity": sum(best.values()) / len(frame_units),
        "speaker_nmi": float(normalized_mutual_info_score(frame_speakers[speech], frame_units[speech])),
        "clusters_used": int((counts > 0).sum()), "cluster_perplexity": float(np.exp(-(share * np.log(share)).sum())),
        "units_per_second": sum(len(m) for m in merged.values()) / seconds,
        "rate_r": rate_r, "_merged": merged,
    }


def measure(data_dir: str, *, backbone: str | None = None, layers: list[int] = (), mfcc: bool = False,
            clusters: list[int] = (100,), bpe_vocabs: list[int] = (500,), minutes: float = 10.0, seed: int = 0,
            log=print) -> list[dict]:
    """One row per (feature, clusters, BPE size); see the module docstring."""
    data = DataDir.read(data_dir)
    utts = choose_utterances(data, minutes, seed)
    if not utts:
        raise ValueError(f"{data_dir}: no transcribed utterance to measure on")
    durations = {u: d for u, d in data.durations().items() if u in set(utts)}
    letters_in_text = {u: sum(1 for c in normalize_text(data.text[u]) if not c.isspace()) for u in utts}
    features: dict[str, dict[str, np.ndarray]] = {}
    rates: dict[str, float] = {}
    waves = {}
    t0 = time.perf_counter()
    if mfcc:
        featurizer = MfccFeatures()
        features["mfcc"] = {}
        rates["mfcc"] = featurizer.frame_rate
    hidden = make_featurizer("hidden", backbone, max(layers), "cpu") if layers else None
    for k in layers:
        features[f"layer {k}"], rates[f"layer {k}"] = {}, hidden.frame_rate
    for utt in utts:
        wave = np.ascontiguousarray(data.load_audio(utt), dtype=np.float32)
        waves[utt] = speech_span(wave)
        tensor = torch.from_numpy(wave)
        if mfcc:
            features["mfcc"][utt] = featurizer(tensor).numpy()
        if hidden is not None:
            for k, value in hidden.layers(tensor, list(layers)).items():
                features[f"layer {k}"][utt] = value.numpy()
    log(f"{len(utts)} utterances, {sum(durations.values()) / 60:.1f} min: features in {time.perf_counter() - t0:.0f} s")
    rows = []
    for name, feats in features.items():
        feats = {u: f for u, f in feats.items() if len(f)}
        letters = {u: frame_letters(data.text[u], len(f), rates[name], waves[u]) for u, f in feats.items()}
        for k in clusters:
            centroids = fit_kmeans(list(feats.values()), k, seed=seed)
            units = {u: assign_units(f, centroids) for u, f in feats.items()}
            scores = score_clusters(units, letters, data.utt2spk, durations, k)
            merged = scores.pop("_merged")
            chars = {u: units_to_text(m) for u, m in merged.items()}
            total_letters = sum(letters_in_text[u] for u in chars)
            scores["units_per_letter"] = sum(len(m) for m in merged.values()) / total_letters
            for vocab in bpe_vocabs:
                try:
                    bpe = train_bpe([chars[u] for u in sorted(chars)], vocab)
                except ValueError as err:  # a BPE smaller than the units in use
                    log(f"{name}, {k} clusters, BPE {vocab}: {err}")
                    continue
                tokens = sum(len(bpe.sp.encode(c)) for c in chars.values())
                rows.append({"feature": name, "clusters": k, "bpe_vocab": vocab, **scores,
                             "tokens_per_second": tokens / sum(durations[u] for u in chars),
                             "tokens_per_letter": tokens / total_letters,
                             "max_tokens": max(len(bpe.sp.encode(c)) for c in chars.values())})
    return rows


COLUMNS = [("feature", "{:<9}"), ("clusters", "{:>8}"), ("bpe_vocab", "{:>5}"), ("letter_nmi", "{:>10.3f}"),
           ("letter_purity", "{:>6.3f}"), ("speaker_nmi", "{:>11.3f}"), ("clusters_used", "{:>4}"),
           ("units_per_second", "{:>7.1f}"), ("units_per_letter", "{:>7.2f}"), ("rate_r", "{:>6.2f}"),
           ("tokens_per_second", "{:>8.1f}"), ("tokens_per_letter", "{:>8.2f}"), ("max_tokens", "{:>6}")]
HEADERS = ["feature", "clusters", "BPE", "letter NMI", "purity", "speaker NMI", "used", "units/s", "u/letter",
           "rate r", "tokens/s", "t/letter", "max t"]


def format_rows(rows: list[dict]) -> str:
    widths = [len(fmt.format(rows[0][key])) if rows else len(h) for (key, fmt), h in zip(COLUMNS, HEADERS, strict=True)]
    lines = ["  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(HEADERS, widths, strict=True)))]
    for row in rows:
        lines.append("  ".join(fmt.format(row[key]).rjust(w) for (key, fmt), w in zip(COLUMNS, widths, strict=True)))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m speechprompt.pretrain.label_quality",
                                     description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="a transcribed Kaldi data dir")
    parser.add_argument("--backbone", help="backbone folder or fetched checkpoint name for --layers")
    parser.add_argument("--layers", default="", help="encoder layers to score, e.g. 2,3,4 (1-based)")
    parser.add_argument("--mfcc", action="store_true", help="score MFCC + deltas too (the first-iteration feature)")
    parser.add_argument("--clusters", default="100", help="k-means sizes, e.g. 50,100,200")
    parser.add_argument("--bpe-vocab", default="500", help="BPE sizes, e.g. 200,500")
    parser.add_argument("--minutes", type=float, default=10.0, help="audio to measure on (default 10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="also write the rows as JSON here")
    args = parser.parse_args(argv)

    def numbers(text: str) -> list[int]:
        return [int(x) for x in text.split(",") if x.strip()]

    try:
        layers = numbers(args.layers)
        if layers and not args.backbone:
            raise ValueError("--layers needs --backbone")
        if not layers and not args.mfcc:
            raise ValueError("nothing to score: give --layers (with --backbone) and/or --mfcc")
        rows = measure(args.data, backbone=args.backbone, layers=layers, mfcc=args.mfcc,
                       clusters=numbers(args.clusters), bpe_vocabs=numbers(args.bpe_vocab), minutes=args.minutes,
                       seed=args.seed)
    except (ValueError, FileNotFoundError) as err:
        print(f"label_quality: {err}", file=sys.stderr)
        return 2
    print(format_rows(rows))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(rows, indent=1) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
