"""The tokenizer protocol every task uses: encode/decode a string or a list, special ids, bytes."""

from __future__ import annotations

from typing import Protocol, overload, runtime_checkable

PAD, UNK, BOS, EOS = 0, 1, 2, 3
SPECIALS = ("<pad>", "<unk>", "<s>", "</s>")


@runtime_checkable
class Tokenizer(Protocol):
    kind: str  # "char" | "spm"

    @property
    def vocab_size(self) -> int: ...

    @property
    def pad_id(self) -> int: ...

    @property
    def unk_id(self) -> int: ...

    @property
    def bos_id(self) -> int: ...

    @property
    def eos_id(self) -> int: ...

    @overload
    def encode(self, text: str) -> list[int]: ...
    @overload
    def encode(self, text: list[str]) -> list[list[int]]: ...
    def encode(self, text: str | list[str]) -> list[int] | list[list[int]]: ...

    @overload
    def decode(self, ids: list[int]) -> str: ...
    @overload
    def decode(self, ids: list[list[int]]) -> list[str]: ...
    def decode(self, ids: list[int] | list[list[int]]) -> str | list[str]: ...

    def encode_pieces(self, text: str) -> list[str]: ...

    def piece_to_id(self, piece: str) -> int: ...

    def id_to_piece(self, i: int) -> str: ...

    def to_bytes(self) -> bytes: ...


class SpecialIds:
    """The special ids every seqtool tokenizer shares: <pad> 0, <unk> 1, <s> 2, </s> 3."""

    pad_id = property(lambda self: PAD)
    unk_id = property(lambda self: UNK)
    bos_id = property(lambda self: BOS)
    eos_id = property(lambda self: EOS)
