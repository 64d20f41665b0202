"""Character vocabulary: the classic char-rnn tokenizer, one id per Unicode character."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable

from seqtool.errors import SeqtoolError
from seqtool.tokenizers.base import SPECIALS, UNK, SpecialIds

MAGIC = "seqtool-char-tokenizer"


class CharTokenizer(SpecialIds):
    """Ids 0-3 are <pad> <unk> <s> </s>; then characters in sorted order."""

    kind = "char"

    def __init__(self, chars: Iterable[str]) -> None:
        chars = sorted(set(chars))
        if any(len(c) != 1 for c in chars):
            raise SeqtoolError("a character vocabulary holds single characters only")
        self.chars = chars
        self._stoi = {c: i + len(SPECIALS) for i, c in enumerate(chars)}

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = 0, min_count: int = 1) -> CharTokenizer:
        """Build from texts; keep the `vocab_size - 4` most frequent characters when given."""
        counts: Counter[str] = Counter()
        for t in texts:
            counts.update(t)
        kept = [c for c, n in counts.most_common() if n >= min_count]
        if vocab_size > 0:
            kept = kept[: max(vocab_size - len(SPECIALS), 0)]
        if not kept:
            raise SeqtoolError("no characters to build a vocabulary from (empty input?)")
        return cls(kept)

    @property
    def vocab_size(self) -> int:
        return len(self.chars) + len(SPECIALS)

    def encode(self, text):  # type: ignore[no-untyped-def]
        if isinstance(text, str):
            get = self._stoi.get
            return [get(c, UNK) for c in text]
        return [self.encode(t) for t in text]

    def decode(self, ids):  # type: ignore[no-untyped-def]
        if ids and isinstance(ids[0], list):
            return [self.decode(x) for x in ids]
        n = len(SPECIALS)
        return "".join(self.chars[i - n] for i in ids if i >= n)

    def unknown(self, text: str) -> list[tuple[int, str]]:
        """(position, char) for every character outside the vocabulary."""
        return [(i, c) for i, c in enumerate(text) if c not in self._stoi]

    def encode_pieces(self, text: str) -> list[str]:
        return [c if c in self._stoi else SPECIALS[UNK] for c in text]

    def piece_to_id(self, piece: str) -> int:
        if piece in SPECIALS:
            return SPECIALS.index(piece)
        return self._stoi.get(piece, UNK)

    def id_to_piece(self, i: int) -> str:
        n = len(SPECIALS)
        return SPECIALS[i] if i < n else self.chars[i - n]

    def to_bytes(self) -> bytes:
        return json.dumps({"format": MAGIC, "chars": self.chars}, ensure_ascii=False).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> CharTokenizer:
        try:
            obj = json.loads(data.decode("utf-8"))
            if obj.get("format") != MAGIC:
                raise ValueError
            return cls(obj["chars"])
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise SeqtoolError("not a seqtool character tokenizer") from e
