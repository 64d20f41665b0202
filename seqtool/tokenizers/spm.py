"""Sentencepiece subwords (BPE or unigram), trained in memory and carried as bytes."""

from __future__ import annotations

import io
from collections.abc import Iterable

from seqtool.errors import SeqtoolError
from seqtool.tokenizers.base import BOS, EOS, PAD, UNK


class SpmTokenizer:
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
        return cls(buf.getvalue())

    @property
    def vocab_size(self) -> int:
        return self.sp.GetPieceSize()

    pad_id = property(lambda self: PAD)
    unk_id = property(lambda self: UNK)
    bos_id = property(lambda self: BOS)
    eos_id = property(lambda self: EOS)

    def encode(self, text):  # type: ignore[no-untyped-def]
        return self.sp.Encode(text)

    def decode(self, ids):  # type: ignore[no-untyped-def]
        return self.sp.Decode(ids)

    def encode_pieces(self, text: str) -> list[str]:
        return self.sp.Encode(text, out_type=str)

    def piece_to_id(self, piece: str) -> int:
        return self.sp.PieceToId(piece)

    def id_to_piece(self, i: int) -> str:
        return self.sp.IdToPiece(i)

    def to_bytes(self) -> bytes:
        return self._proto

    @classmethod
    def from_bytes(cls, data: bytes) -> SpmTokenizer:
        return cls(data)
