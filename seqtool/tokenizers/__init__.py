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


class PieceStream:
    """Token ids -> text as they arrive (generation), the same text decode gives for the ids
    together. A char tokenizer's pieces are text. A sentencepiece model's byte-fallback pieces
    (<0xNN>) wait until they form a UTF-8 character (U+2581 included: it comes back as itself,
    as in decode); bytes that cannot become one are U+FFFD each, as sentencepiece writes them.
    In other pieces U+2581 is a space (`strip_first`: not before the first piece)."""

    def __init__(self, tok: Tokenizer, strip_first: bool = False) -> None:
        self.tok, self.strip_first = tok, strip_first
        self.is_char = tok.kind == "char"
        self.pending = b""
        self.step = 0

    def __call__(self, i: int) -> str | None:
        """The text of id i, or None while a byte sequence is incomplete."""
        piece = self.tok.id_to_piece(i)
        first, self.step = self.step == 0, self.step + 1
        if self.is_char:
            return piece
        if len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
            self.pending += bytes([int(piece[3:5], 16)])
            return self._drain() or None
        text = piece.replace("\u2581", " ")
        text = text.lstrip(" ") if first and self.strip_first else text
        return self.flush() + text

    def flush(self) -> str:
        """Bytes still waiting (a character the ids left unfinished): U+FFFD each."""
        text, self.pending = "\ufffd" * len(self.pending), b""
        return text

    def _drain(self) -> str:
        out = ""
        while self.pending:
            try:
                out += self.pending.decode("utf-8")
                self.pending = b""
            except UnicodeDecodeError as e:
                if e.start > 0:  # a whole character first, then the rest
                    out += self.pending[: e.start].decode("utf-8")
                    self.pending = self.pending[e.start :]
                elif e.reason == "unexpected end of data":
                    break  # a character's start: wait for its next byte
                else:
                    out += "\ufffd"
                    self.pending = self.pending[1:]
        return out


def check_known(tok: Tokenizer, text: str, what: str = "text") -> None:
    """A char tokenizer's error for characters outside its vocabulary (others map to <unk>)."""
    unknown = getattr(tok, "unknown", None)
    bad = unknown(text) if unknown is not None else []
    if bad:
        pos, ch = bad[0]
        raise SeqtoolError(
            f"{what} character {ch!r} (position {pos + 1}) is not in this model's vocabulary "
            f"of {len(tok.chars)} characters"  # type: ignore[attr-defined]
        )
