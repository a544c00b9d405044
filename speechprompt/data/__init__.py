"""Kaldi data dirs, 16 kHz audio I/O, features, tokenizers and length-bucketed batching."""

from speechprompt.data.audio import AudioError, load_audio, write_audio
from speechprompt.data.kaldi_dir import DataDir, DataDirError, Problem, Segment

__all__ = ["AudioError", "DataDir", "DataDirError", "Problem", "Segment", "load_audio", "write_audio"]
