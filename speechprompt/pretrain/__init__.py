"""Wav2Seq pseudo-language pretraining (Wu et al., arXiv 2205.01086).

frame features (MFCC + deltas, or a backbone layer) -> k-means -> merge repeats -> one character
per cluster -> SentencePiece BPE -> pseudo-subword targets; then an encoder-decoder is trained to
generate them (``speechprompt pretrain``).
"""

from speechprompt.pretrain.frame_features import HiddenStateFeatures, MfccFeatures
from speechprompt.pretrain.labelling import pseudo_label, read_pseudo_text
from speechprompt.pretrain.pseudo_language import PseudoLanguage, dedup, units_to_text

__all__ = ["HiddenStateFeatures", "MfccFeatures", "PseudoLanguage", "dedup", "pseudo_label", "read_pseudo_text",
           "units_to_text"]
