"""Sentencepiece subwords (BPE or unigram), trained in memory and carried as bytes."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator

from seqtool.errors import SeqtoolError
from seqtool.tokenizers.base import BOS, EOS, PAD, UNK, SpecialIds

# Sentencepiece's meta space: it stands for " " inside pieces, so a literal U+2581 in the
# input would come back as a space. We encode it as its three byte-fallback pieces instead.
META = "\u2581"


def _private_use() -> Iterator[str]:
    """Stand-in candidates for U+2581 while encoding: private-use characters, which trained
    vocabularies practically never hold."""
    for lo, hi in ((0xE000, 0xF900), (0xF0000, 0xFFFFE), (0x100000, 0x10FFFE)):
        yield from map(chr, range(lo, hi))


class SpmTokenizer(SpecialIds):
    """Wraps a SentencePieceProcessor; ids 0-3 are <pad> <unk> <s> </s> as for chars."""

    kind = "spm"

    def __init__(self, model_proto: bytes) -> None:
        import sentencepiece as spm

        self.sp = spm.SentencePieceProcessor()
        try:
            self.sp.LoadFromSerializedProto(model_proto)
        except Exception as e:  # sentencepiece raises RuntimeError/OSError variants
            raise SeqtoolError("not a sentencepiece model") from e
        self._proto = model_proto
        self._meta_ids = self._byte_ids(META)  # None: no byte pieces (a foreign model)
        self._vocab_chars: set[str] | None = None

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        vocab_size: int = 8000,
        model_type: str = "bpe",
        character_coverage: float = 1.0,
        normalization: str = "identity",
        max_sentences: int = 2_000_000,
        dummy_prefix: bool = True,
    ) -> SpmTokenizer:
        """Train on an iterable of sentences. Identity normalization + byte fallback keep
        decode(encode(s)) == s for any text, which a pipeline tool owes its users.
        dummy_prefix=False suits token streams (language models): encoding lines one by one
        then adds no space at each line start, so the concatenation decodes exactly."""
        import sentencepiece as spm

        if model_type not in ("bpe", "unigram"):
            raise SeqtoolError(f"model type must be bpe or unigram, not {model_type!r}")
        texts = [t for t in texts if t.strip()]
        if not texts:
            raise SeqtoolError("no text to train a sentencepiece model on (empty input?)")
        buf = io.BytesIO()
        kwargs = dict(
            sentence_iterator=iter(texts),
            model_writer=buf,
            vocab_size=vocab_size,
            model_type=model_type,
            character_coverage=character_coverage,
            normalization_rule_name=normalization,
            remove_extra_whitespaces=False,
            add_dummy_prefix=dummy_prefix,
            byte_fallback=True,
            pad_id=PAD,
            unk_id=UNK,
            bos_id=BOS,
            eos_id=EOS,
            input_sentence_size=max_sentences,
            shuffle_input_sentence=True,
            max_sentence_length=1 << 16,
            hard_vocab_limit=False,  # a small corpus gets a smaller vocabulary, not an error
            minloglevel=2,
        )
        try:
            spm.SentencePieceTrainer.train(**kwargs)
        except RuntimeError as e:
            msg = str(e).splitlines()[0] if str(e) else "training failed"
            msg = msg.split("] ", 1)[-1]  # drop sentencepiece's source location
            if "smaller than required_chars" in msg:
                need = msg.split(" vs ")[-1].split(".")[0]
                msg = (
                    f"vocabulary size {vocab_size} is too small: this text needs at least {need} "
                    "(256 byte pieces + its characters + 4 specials); raise --vocab-size"
                )
            # Small corpora cannot fill a large vocabulary; sentencepiece says how many fit.
            raise SeqtoolError(f"sentencepiece: {msg}") from e
        tok = cls(buf.getvalue())
        if tok.vocab_size < vocab_size:  # hard_vocab_limit=False: smaller, and said so
            from seqtool import notices

            notices.warn(
                f"--vocab-size {vocab_size:,} not reached: this text gives {tok.vocab_size:,} "
                f"{model_type} ids (256 byte pieces and 4 specials among them); more text "
                "gives more"
            )
        return tok

    @property
    def vocab_size(self) -> int:
        return self.sp.GetPieceSize()

    def encode(self, text):  # type: ignore[no-untyped-def]
        if isinstance(text, str):
            return self._encode(text)
        if self._meta_ids is None or not any(META in t for t in text):
            return self.sp.Encode(text)  # the common case: one batched call
        return [self._encode(t) for t in text]

    def decode(self, ids):  # type: ignore[no-untyped-def]
        # Byte pieces decode to their bytes as they are: <0xE2><0x96><0x81> gives back U+2581.
        return self.sp.Decode(ids)

    def encode_pieces(self, text: str) -> list[str]:
        if META in text:
            return [self.sp.IdToPiece(i) for i in self._encode(text)]
        return self.sp.Encode(text, out_type=str)

    def _encode(self, text: str) -> list[int]:
        """Text without U+2581 (nearly all) encodes exactly as sentencepiece does. Otherwise
        each U+2581 becomes a character the vocabulary lacks, which sentencepiece can only
        write as byte pieces, and those byte ids are swapped for U+2581's: the rest of the
        line is segmented the same way, and decode gives U+2581 back, not a space."""
        if META not in text or self._meta_ids is None:
            return self.sp.Encode(text)
        stand_in = self._stand_in(text)
        ids = self.sp.Encode(text.replace(META, stand_in))
        old, new = self._byte_ids(stand_in) or [], self._meta_ids
        if not old:  # cannot happen: a model with U+2581's byte pieces has all 256
            raise SeqtoolError("sentencepiece model lacks byte pieces")
        out: list[int] = []
        i = 0
        while i < len(ids):
            if ids[i : i + len(old)] == old:
                out += new
                i += len(old)
            else:
                out.append(ids[i])
                i += 1
        return out

    def _byte_ids(self, ch: str) -> list[int] | None:
        ids = [self.sp.PieceToId(f"<0x{b:02X}>") for b in ch.encode("utf-8")]
        return ids if all(self.sp.IsByte(i) for i in ids) else None

    def _stand_in(self, text: str) -> str:
        """A character that is neither in text nor in any piece: it always encodes as its
        UTF-8 bytes, and a UTF-8 lead byte starts its byte ids nowhere else."""
        if self._vocab_chars is None:
            pieces = (self.sp.IdToPiece(i) for i in range(self.sp.GetPieceSize()))
            self._vocab_chars = set("".join(pieces))
        seen = self._vocab_chars
        for ch in _private_use():
            if ch not in seen and ch not in text:
                return ch
        raise SeqtoolError("text holds every private-use character: cannot encode U+2581")

    def piece_to_id(self, piece: str) -> int:
        return self.sp.PieceToId(piece)

    def id_to_piece(self, i: int) -> str:
        return self.sp.IdToPiece(i)

    def to_bytes(self) -> bytes:
        return self._proto

    @classmethod
    def from_bytes(cls, data: bytes) -> SpmTokenizer:
        return cls(data)
