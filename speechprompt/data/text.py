"""Text normalisation and tokenizers (characters, SentencePiece BPE / unigram).

Every tokenizer shares the special ids ``pad=0, bos=1, eos=2, unk=3``; ``encode`` adds neither BOS
nor EOS (the dataset appends EOS, the decoder starts from BOS). Tokenizers are saved as plain
files — ``tokenizer.json`` (kind and settings), plus ``tokens.txt`` for characters or
``spm.model`` (SentencePiece's protobuf) for subwords — and never pickled.

Example::

    tok = train_tokenizer("bpe", texts, "exp/tok", vocab_size=200)
    ids = tok.encode(normalize_text("Hello, World!"))      # [..] without BOS/EOS
    tok = load_tokenizer("exp/tok")
"""

from __future__ import annotations

import io
import json
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

import sentencepiece as spm

PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3
SPECIALS = ("<pad>", "<s>", "</s>", "<unk>")
UNK_TEXT = " ⁇ "  # what SentencePiece prints for unknown pieces; used by every tokenizer
_SPACES = re.compile(r"\s+")


def normalize_text(s: str, keep: str = "") -> str:
    """Canonical text for targets and scoring (the same function on both sides).

    NFKC, lower case (casefold), punctuation to spaces except apostrophes inside words (``don't``)
    and any character in ``keep`` (e.g. slot markup), whitespace collapsed. Letters and digits of
    any script are kept.
    """
    s = unicodedata.normalize("NFKC", s).casefold().replace("’", "'")
    out = []
    for i, ch in enumerate(s):
        if ch in keep or not unicodedata.category(ch).startswith(("P", "S")):
            out.append(ch)
        elif ch == "'" and 0 < i < len(s) - 1 and s[i - 1].isalnum() and s[i + 1].isalnum():
            out.append(ch)
        else:
            out.append(" ")
    return _SPACES.sub(" ", "".join(out)).strip()


class Tokenizer:
    """Shared interface: ``encode``, ``decode``, ``vocab_size``, special ids, ``save``."""

    kind = ""
    pad_id, bos_id, eos_id, unk_id = PAD_ID, BOS_ID, EOS_ID, UNK_ID

    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    @property
    def prefix_ids(self) -> list[int]:
        """Decoder input before the text (a released checkpoint's task prefix; here just BOS)."""
        return [self.bos_id]

    # a released checkpoint's tokenizer: ids above eos_id (special and timestamp tokens) are never generated
    suppress_specials = False
    # how text written with this tokenizer is scored (speechprompt.score.wer.NORMALIZERS): the training normaliser
    scoring_normalizer = "speechprompt"

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def decode(self, ids: Iterable[int]) -> str:
        raise NotImplementedError

    def save(self, out_dir: str | Path) -> Path:
        raise NotImplementedError

    def _strip_specials(self, ids: Iterable[int]) -> list[int]:
        """Drop padding/BOS and stop at the first EOS (decoders emit it to end a hypothesis)."""
        kept = []
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            if i not in (self.pad_id, self.bos_id):
                kept.append(i)
        return kept


class CharTokenizer(Tokenizer):
    """One id per character (space included); multi-character ``symbols`` are kept whole."""

    kind = "char"

    def __init__(self, tokens: list[str]):
        if list(tokens[:4]) != list(SPECIALS):
            raise ValueError(f"char vocabulary must start with {SPECIALS}, got {tokens[:4]}")
        if len(set(tokens)) != len(tokens):
            raise ValueError("char vocabulary has duplicate tokens")
        self.tokens = list(tokens)
        self.index = {t: i for i, t in enumerate(self.tokens)}
        symbols = sorted((t for t in self.tokens[4:] if len(t) > 1), key=len, reverse=True)
        self._split = re.compile("|".join(map(re.escape, symbols)) + "|." if symbols else ".", re.DOTALL)

    @classmethod
    def train(cls, texts: Iterable[str], symbols: Iterable[str] = ()) -> CharTokenizer:
        symbols = list(symbols)
        chars = set()
        for text in texts:
            for symbol in symbols:
                text = text.replace(symbol, " ")
            chars.update(text)
        return cls(list(SPECIALS) + symbols + sorted(chars - set(symbols)))

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        return [self.index.get(piece, self.unk_id) for piece in self._split.findall(text)]

    def decode(self, ids: Iterable[int]) -> str:
        pieces = [UNK_TEXT if i == self.unk_id or i >= len(self.tokens) else self.tokens[i]
                  for i in self._strip_specials(ids)]
        return _SPACES.sub(" ", "".join(pieces)).strip()

    def save(self, out_dir: str | Path) -> Path:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        # tokens.txt is Kaldi/icefall style "token id"; the space character is written as <space>
        rows = [f"{'<space>' if t == ' ' else t} {i}\n" for i, t in enumerate(self.tokens)]
        (out / "tokens.txt").write_text("".join(rows), encoding="utf-8")
        (out / "tokenizer.json").write_text(json.dumps({"kind": self.kind, "vocab_size": self.vocab_size}, indent=2))
        return out

    @classmethod
    def load(cls, out_dir: str | Path) -> CharTokenizer:
        tokens = []
        path = Path(out_dir) / "tokens.txt"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            token, _, index = line.rpartition(" ")
            if not token or int(index) != len(tokens):
                raise ValueError(f"{path}:{number}: expected 'token {len(tokens)}', got {line!r}")
            tokens.append(" " if token == "<space>" else token)
        return cls(tokens)


class SentencePieceTokenizer(Tokenizer):
    """SentencePiece BPE or unigram model with the shared special ids."""

    def __init__(self, model_proto: bytes, kind: str):
        self.kind = kind
        self.model_proto = model_proto
        self.sp = spm.SentencePieceProcessor(model_proto=model_proto)
        specials = (self.sp.pad_id(), self.sp.bos_id(), self.sp.eos_id(), self.sp.unk_id())
        if specials != (PAD_ID, BOS_ID, EOS_ID, UNK_ID):
            raise ValueError(f"SentencePiece model has special ids {specials}, expected (0, 1, 2, 3) for pad/bos/eos/unk")

    @classmethod
    def train(cls, texts: Iterable[str], kind: str, vocab_size: int, symbols: Iterable[str] = ()) -> SentencePieceTokenizer:
        texts = [t for t in texts if t.strip()]
        if not texts:
            raise ValueError("cannot train a SentencePiece tokenizer on no text")
        model = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(texts), model_writer=model, model_type=kind, vocab_size=vocab_size,
            pad_id=PAD_ID, bos_id=BOS_ID, eos_id=EOS_ID, unk_id=UNK_ID,
            character_coverage=1.0,  # low-resource languages: never map a rare letter to <unk>
            hard_vocab_limit=False,  # a tiny corpus yields fewer pieces instead of failing
            user_defined_symbols=list(symbols) or None, num_threads=1, minloglevel=2,
        )
        return cls(model.getvalue(), kind)

    @property
    def vocab_size(self) -> int:
        return self.sp.get_piece_size()

    def encode(self, text: str) -> list[int]:
        return list(self.sp.encode(text, out_type=int))

    def decode(self, ids: Iterable[int]) -> str:
        kept = [i if i < self.vocab_size else self.unk_id for i in self._strip_specials(ids)]
        return _SPACES.sub(" ", self.sp.decode(kept)).strip()

    def save(self, out_dir: str | Path) -> Path:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "spm.model").write_bytes(self.model_proto)
        (out / "tokenizer.json").write_text(json.dumps({"kind": self.kind, "vocab_size": self.vocab_size}, indent=2))
        return out

    @classmethod
    def load(cls, out_dir: str | Path, kind: str) -> SentencePieceTokenizer:
        return cls((Path(out_dir) / "spm.model").read_bytes(), kind)


def train_tokenizer(kind: str, texts: Iterable[str], out_dir: str | Path | None = None, vocab_size: int = 500,
                    symbols: Iterable[str] = ()) -> Tokenizer:
    """Train a ``"char"``, ``"bpe"`` or ``"unigram"`` tokenizer on ``texts`` and save it to ``out_dir``.

    ``symbols`` are multi-character tokens kept whole (e.g. slot markup). ``vocab_size`` is ignored
    for characters and is an upper bound for subwords on small corpora.
    """
    texts = list(texts)
    if kind == "char":
        tokenizer: Tokenizer = CharTokenizer.train(texts, symbols)
    elif kind in ("bpe", "unigram"):
        tokenizer = SentencePieceTokenizer.train(texts, kind, vocab_size, symbols)
    else:
        raise ValueError(f"unknown tokenizer kind {kind!r}: use 'char', 'bpe' or 'unigram'")
    if out_dir is not None:
        tokenizer.save(out_dir)
    return tokenizer


def load_tokenizer(out_dir: str | Path, language: str | None = None,
                   vocabulary_dir: str | Path | None = None) -> Tokenizer:
    """Load a tokenizer saved by :func:`train_tokenizer` / ``Tokenizer.save``, or a released checkpoint's.

    A folder with a transformers-format ``tokenizer.json`` (a Whisper checkpoint, or a task artifact's
    settings for it) gives a :class:`~speechprompt.data.whisper_tokenizer.WhisperCheckpointTokenizer`;
    ``language`` picks its language token (ignored by the toolkit's own kinds); ``vocabulary_dir`` is the
    backbone folder whose ``tokenizer.json`` an artifact names by sha256 instead of carrying a copy.
    """
    from speechprompt.data.whisper_tokenizer import WhisperCheckpointTokenizer, is_checkpoint_tokenizer_dir

    if is_checkpoint_tokenizer_dir(out_dir):
        return WhisperCheckpointTokenizer.load(out_dir, language, vocabulary_dir)
    config_path = Path(out_dir) / "tokenizer.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path}: no tokenizer here — train one with train_tokenizer()")
    kind = json.loads(config_path.read_text())["kind"]
    if kind == "char":
        return CharTokenizer.load(out_dir)
    if kind in ("bpe", "unigram"):
        return SentencePieceTokenizer.load(out_dir, kind)
    raise ValueError(f"{config_path}: unknown tokenizer kind {kind!r}")
