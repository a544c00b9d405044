"""Pseudo-label a Kaldi data dir: fit (or reuse) a pseudo language and write ``pseudo_text``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from speechprompt.data.kaldi_dir import DataDir
from speechprompt.pretrain.frame_features import HiddenStateFeatures, MfccFeatures
from speechprompt.pretrain.pseudo_language import (
    PseudoLanguage,
    assign_units,
    dedup,
    fit_kmeans,
    train_bpe,
    units_to_text,
)

PSEUDO_TEXT = "pseudo_text"


def make_featurizer(feature: str, backbone_dir: str | None = None, layer: int | None = None, device: str = "cpu"):
    if feature == "mfcc":
        return MfccFeatures()
    if feature == "hidden":
        if backbone_dir is None or layer is None:
            raise ValueError("--feature hidden needs --backbone DIR and --layer N (the encoder layer to cluster)")
        from speechprompt.backbones import load_backbone
        from speechprompt.backbones.fetch import resolve_backbone

        return HiddenStateFeatures(load_backbone(resolve_backbone(backbone_dir)), layer, device, source=str(backbone_dir))
    raise ValueError(f"unknown feature {feature!r}: use 'mfcc' or 'hidden'")


def write_pseudo_text(path: str | Path, pieces: dict[str, list[str]]) -> Path:
    """Kaldi ``text`` format: ``utt_id piece piece ...``, C-locale sorted."""
    path = Path(path)
    lines = [f"{u} {' '.join(pieces[u])}\n" for u in sorted(pieces, key=lambda s: s.encode())]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(lines), encoding="utf-8")
    tmp.replace(path)
    return path


def read_pseudo_text(path: str | Path) -> dict[str, str]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no pseudo_text here (run 'speechprompt pseudo-label' first)")
    out = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split(maxsplit=1)
        if not parts:
            continue
        if len(parts) < 2:
            raise ValueError(f"{path}:{number}: utterance {parts[0]} has no pseudo subwords")
        out[parts[0]] = parts[1]
    return out


def _frame_sample(index: int, features: np.ndarray, keep_prob: float, seed: int) -> np.ndarray:
    """Each frame kept with probability ``keep_prob``, seeded by (seed, utterance index): the k-means
    sample is the same whether features are held in memory or computed twice."""
    if keep_prob >= 1.0:
        return features
    return features[np.random.default_rng([seed, index]).random(len(features)) < keep_prob]


def pseudo_label(
    data_dir: str | Path,
    out_dir: str | Path,
    *,
    clusters: int = 100,
    bpe_vocab: int = 1000,
    feature: str = "mfcc",
    backbone_dir: str | None = None,
    layer: int | None = None,
    language_dir: str | Path | None = None,
    max_frames: int = 200_000,
    seed: int = 0,
    device: str = "cpu",
    memory_mb: int = 2048,
    progress: bool = False,
) -> dict:
    """Label every utterance of ``data_dir``; write ``<out>/pseudo_text`` (+ the language when fitted).

    With ``language_dir`` an existing pseudo language is applied (dev/test sets); otherwise one is
    fitted on ``data_dir`` (k-means on about ``max_frames`` sampled frames) and saved to ``out_dir``.
    Features are kept in memory when they fit in ``memory_mb``, else computed a second time for the
    assignment. Returns the statistics (also ``<out>/stats.json``).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = DataDir.read(data_dir)
    language = PseudoLanguage.load(language_dir) if language_dir is not None else None
    if language is not None:
        cfg = language.feature_config
        backbone_dir = backbone_dir or cfg.get("backbone")  # the backbone the language was made with, if recorded
        featurizer = make_featurizer(cfg["feature"], backbone_dir, cfg.get("layer"), device)
        if cfg["feature"] == "hidden" and featurizer.fingerprint != cfg.get("backbone_fingerprint"):
            raise ValueError(f"{language_dir}: made with backbone {cfg.get('backbone_fingerprint')}, "
                             f"but {backbone_dir} is {featurizer.fingerprint}: pass the same backbone")
    else:
        featurizer = make_featurizer(feature, backbone_dir, layer, device)
    durations = data.durations()
    start = time.perf_counter()
    feature_seconds = 0.0

    def features_of(utt: str) -> np.ndarray:
        nonlocal feature_seconds
        t0 = time.perf_counter()
        feats = featurizer(torch.from_numpy(np.ascontiguousarray(data.load_audio(utt), dtype=np.float32)))
        feature_seconds += time.perf_counter() - t0
        return feats.numpy()

    def each(utts: list[str], what: str):
        if not progress:
            return utts
        from tqdm.auto import tqdm

        return tqdm(utts, desc=what, unit="utt")

    too_short: list[str] = []
    held: dict[str, np.ndarray] = {}
    if language is None:  # pass 1: the k-means sample (and the features themselves when they fit)
        total_frames = sum(durations.values()) * featurizer.frame_rate
        keep_prob = min(1.0, max_frames / max(total_frames, 1.0))
        hold = total_frames * featurizer.dim * 4 <= memory_mb * 2**20
        sample = []
        for index, utt in enumerate(each(data.utt_ids, "features")):
            feats = features_of(utt)
            if len(feats) == 0:
                too_short.append(utt)
                continue
            sample.append(_frame_sample(index, feats, keep_prob, seed))
            if hold:
                held[utt] = feats
        if not sample:
            raise ValueError(f"{data_dir}: no utterance is long enough for one frame: nothing to cluster")
        centroids = fit_kmeans(sample, clusters, max_frames, seed)
        del sample
    else:
        centroids = language.centroids
    # pass 2: units of every utterance
    skipped = set(too_short)
    chars, frames, counts = {}, 0, np.zeros(len(centroids), dtype=np.int64)
    for utt in each([u for u in data.utt_ids if u not in skipped], "units"):
        feats = held.pop(utt) if held else features_of(utt)
        if len(feats) == 0:
            too_short.append(utt)
            continue
        units = assign_units(feats, centroids)
        frames += len(units)
        counts += np.bincount(units, minlength=len(centroids))
        chars[utt] = units_to_text(dedup(units))
    if language is None:
        language = PseudoLanguage(centroids, train_bpe((chars[u] for u in sorted(chars)), bpe_vocab),
                                  featurizer.config(), seed)
    pieces = {u: language.pieces(c) for u, c in chars.items()}
    units = sum(len(c) for c in chars.values())
    tokens = sum(len(p) for p in pieces.values())
    seconds = sum(durations[u] for u in chars)
    stats = {
        "utterances": len(chars), "clusters": language.clusters, "clusters_used": int((counts > 0).sum()),
        "frames": frames, "units_after_dedup": units, "dedup_ratio": units / max(frames, 1),
        "pseudo_tokens": tokens, "bpe_vocab_size": language.bpe.vocab_size, "units_per_token": units / max(tokens, 1),
        "audio_seconds": seconds, "frames_per_second": frames / seconds, "units_per_second": units / seconds,
        "pseudo_tokens_per_second": tokens / seconds, "skipped_too_short": len(too_short),
        "feature": featurizer.config(), "wall_seconds": time.perf_counter() - start,
        "feature_wall_seconds": feature_seconds,
    }
    if language_dir is None:
        language.save(out_dir, stats)
    write_pseudo_text(out_dir / PSEUDO_TEXT, pieces)
    if too_short:
        (out_dir / "skipped").write_text("".join(f"{u} shorter than one 25 ms frame\n" for u in too_short))
    (out_dir / "stats.json").write_text(json.dumps(stats, indent=1) + "\n")
    return stats


def format_stats(stats: dict) -> str:
    lines = [
        f"utterances          {stats['utterances']} ({stats['audio_seconds'] / 60:.1f} min; "
        f"{stats['skipped_too_short']} skipped: shorter than one frame)",
        f"clusters            {stats['clusters']}" + (f" ({stats['clusters_used']} used)" if "clusters_used" in stats else ""),
        f"frames/s            {stats['frames_per_second']:.1f}",
        f"dedup ratio         {stats['dedup_ratio']:.3f} (units after merging repeats / frames)",
        f"units/s             {stats['units_per_second']:.1f}",
        f"BPE vocabulary      {stats['bpe_vocab_size']}",
        f"pseudo tokens/s     {stats['pseudo_tokens_per_second']:.2f} of audio ({stats['units_per_token']:.2f} units/token)",
        f"labelling speed     {stats['audio_seconds'] / max(stats['wall_seconds'], 1e-9):.0f}x real time",
    ]
    return "\n".join(lines)
