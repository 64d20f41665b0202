"""Tokenizers: one protocol (see base.py) for characters and sentencepiece subwords."""

from __future__ import annotations

from pathlib import Path

from seqtool.errors import SeqtoolError
from seqtool.tokenizers.base import BOS, EOS, PAD, UNK, Tokenizer
from seqtool.tokenizers.char import MAGIC as _CHAR_MAGIC
from seqtool.tokenizers.char import CharTokenizer

__all__ = [
    "BOS",
    "EOS",
    "PAD",
    "UNK",
    "CharTokenizer",
    "Tokenizer",
    "build",
    "from_bytes",
    "load",
    "train",
]


def from_bytes(kind: str, data: bytes) -> Tokenizer:
    if kind == "char":
        return CharTokenizer.from_bytes(data)
    if kind == "spm":
        from seqtool.tokenizers.spm import SpmTokenizer

        return SpmTokenizer.from_bytes(data)
    raise SeqtoolError(f"unknown tokenizer kind {kind!r}")


def load(path: str | Path) -> Tokenizer:
    """A tokenizer file written by `seqtool tokenize train` (char JSON or sentencepiece model)."""
    p = Path(path)
    if not p.is_file():
        raise SeqtoolError(f"{p}: no such tokenizer file")
    data = p.read_bytes()
    kind = "char" if _CHAR_MAGIC.encode() in data[:64] else "spm"
    try:
        return from_bytes(kind, data)
    except SeqtoolError as e:
        raise SeqtoolError(f"{p}: {e}") from None


def train(
    texts: list[str], model_type: str = "bpe", vocab_size: int = 8000, dummy_prefix: bool = True
) -> Tokenizer:
    """Train a tokenizer of the given type (char | bpe | unigram) on texts."""
    if model_type == "char":
        return CharTokenizer.train(texts, vocab_size=0)
    from seqtool.tokenizers.spm import SpmTokenizer

    return SpmTokenizer.train(
        texts, vocab_size=vocab_size, model_type=model_type, dummy_prefix=dummy_prefix
    )


SPECS = ("char", "bpe", "unigram")


def build(
    spec: str, texts: list[str], vocab_size: int = 8000, dummy_prefix: bool = True
) -> Tokenizer:
    """A tokenizer from a command-line spec: 'char', 'bpe' or 'unigram' (trained on texts;
    subwords on their lines) or the path of a tokenizer file."""
    if spec == "char":
        return train(texts, "char")
    if spec in SPECS:
        lines = [ln for t in texts for ln in t.splitlines()]
        return train(lines, spec, vocab_size, dummy_prefix=dummy_prefix)
    return load(spec)
