"""Wav2Seq pseudo-language pretraining (Wu et al., arXiv 2205.01086).

frame features (MFCC + deltas, or a backbone layer) -> k-means -> merge repeats -> one character
per cluster -> SentencePiece BPE -> pseudo-subword targets; then an encoder-decoder is trained to
generate them (``speechprompt pretrain``).
"""

from speechprompt.pretrain.frame_features import HiddenStateFeatures, MfccFeatures, extract_features
from speechprompt.pretrain.pseudo_language import PseudoLanguage, build_pseudo_language, dedup, units_to_text

__all__ = [
    "HiddenStateFeatures", "MfccFeatures", "PseudoLanguage", "build_pseudo_language", "dedup", "extract_features",
    "units_to_text",
]
