"""The Wav2Seq pseudo language: k-means units -> merged repeats -> characters -> BPE subwords.

Each k-means cluster becomes one character from the CJK Unified Ideographs block (as Wav2Seq
writes its units as Chinese characters), so SentencePiece sees every cluster as one letter and
learns frequent unit sequences as subwords. ``PseudoLanguage`` holds the centroids and the BPE
model and turns a (T, D) feature matrix into pseudo-subword pieces; it is saved as

- ``kmeans.safetensors``  centroids (K, D) float32
- ``pseudo_language.json`` feature settings, clusters, character offset, seed, statistics
- ``bpe/``                 a speechprompt SentencePiece tokenizer (``load_tokenizer``), ids 0-3 special
"""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import sentencepiece as spm
import torch
from safetensors.numpy import load_file, save_file

from speechprompt.data.text import BOS_ID, EOS_ID, PAD_ID, UNK_ID, SentencePieceTokenizer, Tokenizer

CHAR_OFFSET = 0x4E00  # first CJK unified ideograph; 20,992 code points follow
MAX_CLUSTERS = 20992


def dedup(units: Iterable[int]) -> list[int]:
    """Merge consecutive repeats: [5, 5, 5, 2, 2, 5] -> [5, 2, 5]."""
    return [int(u) for u, _ in itertools.groupby(units)]


def units_to_text(units: Iterable[int]) -> str:
    """Cluster ids -> one pseudo character each."""
    return "".join(chr(CHAR_OFFSET + int(u)) for u in units)


def text_to_units(text: str) -> list[int]:
    return [ord(c) - CHAR_OFFSET for c in text]


def fit_kmeans(features: Iterable[np.ndarray], clusters: int, max_frames: int = 200_000, seed: int = 0) -> np.ndarray:
    """MiniBatchKMeans on at most ``max_frames`` frames sampled (seeded) from all utterances -> (K, D)."""
    from sklearn.cluster import MiniBatchKMeans

    if not 2 <= clusters <= MAX_CLUSTERS:
        raise ValueError(f"clusters must be in [2, {MAX_CLUSTERS}], got {clusters}")
    frames = np.concatenate(list(features), axis=0)
    if frames.shape[0] > max_frames:
        keep = np.sort(np.random.default_rng(seed).choice(frames.shape[0], max_frames, replace=False))
        frames = frames[keep]
    if frames.shape[0] < clusters:
        raise ValueError(f"only {frames.shape[0]} frames for {clusters} clusters: use fewer clusters or more audio")
    # batches of ~1/10 of the sample (1k-10k frames): enough steps per pass on small corpora, HuBERT's
    # 10k on large ones; stop after 10 batches without improvement of the smoothed inertia.
    km = MiniBatchKMeans(
        n_clusters=clusters, init="k-means++", n_init=3, max_iter=100,
        batch_size=min(10_000, max(1024, frames.shape[0] // 10)), random_state=seed, reassignment_ratio=0.0,
        max_no_improvement=10, compute_labels=False,
    )
    km.fit(frames.astype(np.float32))
    return km.cluster_centers_.astype(np.float32)


def assign_units(features: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """(T, D) features -> (T,) nearest-centroid ids (squared Euclidean distance)."""
    x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
    c = torch.from_numpy(centroids)
    dist = (x * x).sum(1, keepdim=True) - 2 * x @ c.T + (c * c).sum(1)[None, :]
    return dist.argmin(1).numpy()


def train_bpe(texts: Iterable[str], vocab_size: int) -> SentencePieceTokenizer:
    """SentencePiece BPE over pseudo-character strings (no word boundaries; ids 0-3 = pad/bos/eos/unk)."""
    texts = [t for t in texts if t]
    if not texts:
        raise ValueError("no pseudo-character text to train BPE on")
    letters = len(set().union(*map(set, texts)))
    if vocab_size < letters + 4:  # every unit must stay a piece of its own (no <unk> in the targets)
        raise ValueError(f"a BPE vocabulary of {vocab_size} cannot hold the {letters} pseudo characters in use "
                         f"+ 4 special ids: use --bpe-vocab {letters + 4} or more (or fewer --clusters)")
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_writer=model, model_type="bpe", vocab_size=vocab_size,
        pad_id=PAD_ID, bos_id=BOS_ID, eos_id=EOS_ID, unk_id=UNK_ID,
        character_coverage=1.0,  # every cluster is a letter, however rare
        hard_vocab_limit=False,  # a small corpus gives fewer pieces rather than an error
        add_dummy_prefix=False, normalization_rule_name="identity",
        max_sentence_length=1 << 20,  # one utterance is one "word": long ones must not be skipped
        max_sentencepiece_length=16, num_threads=1, minloglevel=2,
    )
    return SentencePieceTokenizer(model.getvalue(), "bpe")


class PseudoSubwordTokenizer(Tokenizer):
    """Reads a ``pseudo_text`` line (space-separated BPE pieces) as target ids; decodes ids back to pieces."""

    kind = "bpe"

    def __init__(self, bpe: SentencePieceTokenizer):
        self.bpe = bpe
        self.sp = bpe.sp

    @property
    def vocab_size(self) -> int:
        return self.sp.get_piece_size()

    def encode(self, text: str) -> list[int]:
        ids = []
        for piece in text.split():
            i = self.sp.piece_to_id(piece)
            if i == self.unk_id and piece != self.sp.id_to_piece(self.unk_id):
                raise ValueError(f"pseudo subword {piece!r} is not in the BPE vocabulary (was pseudo_text made "
                                 "with a different BPE model?)")
            ids.append(i)
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        return " ".join(self.sp.id_to_piece(i) for i in self._strip_specials(ids) if i < self.vocab_size)

    def save(self, out_dir: str | Path) -> Path:
        return self.bpe.save(out_dir)


class PseudoLanguage:
    """Centroids (K, D) + BPE model: (T, D) features -> pseudo-subword pieces."""

    def __init__(self, centroids: np.ndarray, bpe: SentencePieceTokenizer, feature_config: dict, seed: int = 0):
        self.centroids = np.ascontiguousarray(centroids, dtype=np.float32)
        self.bpe = bpe
        self.feature_config = dict(feature_config)
        self.seed = seed

    @property
    def clusters(self) -> int:
        return int(self.centroids.shape[0])

    def units(self, features: np.ndarray) -> list[int]:
        """Deduplicated cluster ids of one utterance."""
        return dedup(assign_units(features, self.centroids))

    def chars(self, features: np.ndarray) -> str:
        return units_to_text(self.units(features))

    def pieces(self, chars: str) -> list[str]:
        return list(self.bpe.sp.encode(chars, out_type=str))

    def tokenizer(self) -> PseudoSubwordTokenizer:
        return PseudoSubwordTokenizer(self.bpe)

    def save(self, directory: str | Path, stats: dict | None = None) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_file({"centroids": self.centroids}, str(directory / "kmeans.safetensors"))
        np.save(directory / "kmeans_centroids.npy", self.centroids)
        self.bpe.save(directory / "bpe")
        meta = {"clusters": self.clusters, "dim": int(self.centroids.shape[1]), "char_offset": CHAR_OFFSET,
                "bpe_vocab_size": self.bpe.vocab_size, "seed": self.seed, "features": self.feature_config}
        if stats is not None:
            meta["stats"] = stats
        (directory / "pseudo_language.json").write_text(json.dumps(meta, indent=1) + "\n")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> PseudoLanguage:
        directory = Path(directory)
        meta_path = directory / "pseudo_language.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"{meta_path}: not a pseudo-language folder (run 'speechprompt pseudo-label')")
        meta = json.loads(meta_path.read_text())
        centroids = load_file(str(directory / "kmeans.safetensors"))["centroids"]
        bpe = SentencePieceTokenizer.load(directory / "bpe", "bpe")
        return cls(centroids, bpe, meta["features"], meta.get("seed", 0))
