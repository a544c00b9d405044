"""speechprompt: prompt tuning for self-supervised speech encoder-decoders."""

__version__ = "0.1.0"
