"""Translation pairs made ready for a translator: tokenizers trained on the pairs, source and
target ids in the row cache, training batches (BOS + target in, target + EOS out) and encoded
held-out pairs.

The training pairs stay on disk: they are checked in one streamed pass (data/parallel.py) and
tokenized into the row cache ($SEQTOOL_CACHE/rows); memory holds a few numbers per pair, so
millions of pairs train with bounded memory.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from seqtool.config import _Config, opt, tokenizer_opt, tokenizer_sample_opt
from seqtool.data.split import dev_count
from seqtool.errors import SeqtoolError
from seqtool.tokenizers.base import BOS, EOS


@dataclass(frozen=True)
class TranslatorOptions(_Config):
    """Train an encoder-decoder translator (bidirectional encoder, attention decoder).

    Examples (tiny sizes and few steps, so each runs in seconds):

      seqtool train translator corpora/translation-sample.tsv --hidden 32 --steps 20 --threads 1 -o en-de.safetensors

      cut -f1 corpora/translation-sample.tsv > train.en; cut -f2 corpora/translation-sample.tsv > train.de

      seqtool train translator --source train.en --target train.de --hidden 32 --steps 20 --threads 1 -o m.safetensors

      seqtool train translator corpora/translation-sample.tsv --teacher-forcing 0.5 --attention additive --hidden 32 --steps 20 --threads 1 -o tf.safetensors

      seqtool train translator corpora/translation-sample.tsv --attention none --cell gru --hidden 32 --steps 20 --threads 1 -o plain.safetensors   # plain seq2seq
    """

    # The pairs, their tokenizers and which of them train: the options of `training_pairs`.
    files: list[str] | None = opt(
        None, "TSV file of `source<TAB>target` lines; - reads stdin.", argument=True
    )
    source: str | None = opt(None, "Source-side file (with --target: line-aligned files).")
    target: str | None = opt(None, "Target-side file, line-aligned with --source.")
    dev: str | None = opt(None, "Dev TSV for BLEU, chrF and dev losses.")
    dev_fraction: float = opt(
        0.0, "Hold out this tail fraction of the pairs as dev when --dev is not given."
    )
    tokenizer: str = tokenizer_opt("bpe", "the pairs")
    vocab_size: int = opt(8000, "Vocabulary size (per side with --separate-vocab).")
    separate_vocab: bool = opt(
        False, "One tokenizer per side instead of a joint one.", flags=("--separate-vocab",)
    )
    tokenizer_sample: int = tokenizer_sample_opt("pair")
    max_length: int = opt(100, "Skip training pairs longer than this many tokens.")
    encoding_errors: str = opt("strict", "strict | replace | ignore for non-UTF-8 input.")
    # The command-line form of TranslatorConfig.output_dropout, which it resolves.
    output_dropout: float | None = opt(
        None, "Dropout on the attentional vector (default: --dropout)."
    )


@dataclass
class TranslationData:
    """Encoded held-out pairs plus the raw references BLEU is computed against."""

    src: list[list[int]]
    tgt: list[list[int]]
    refs: list[str]
    beam: int = 1
    alpha: float = 1.0
    batch_size: int = 64

    def batches(self, device: Any = None) -> Iterator[tuple[list[int], dict[str, torch.Tensor]]]:
        """(indices, training-shaped batch on `device`) in deterministic length-sorted order."""
        from seqtool.data.batching import eval_batches

        collate = PairCollate(self.src, self.tgt)
        for idx in eval_batches([len(s) for s in self.src], self.batch_size):
            yield idx, {k: t.to(device) for k, t in collate(idx).items()}


def encode_pairs(
    src_tok: Any, tgt_tok: Any, src: list[str], tgt: list[str]
) -> tuple[list[list[int]], list[list[int]]]:
    """Source ids (+ EOS) and target ids of in-memory pairs."""
    return [src_tok.encode(s) + [src_tok.eos_id] for s in src], [tgt_tok.encode(t) for t in tgt]


def held_out(
    src_tok: Any, tgt_tok: Any, src: list[str], tgt: list[str], beam: int = 1, alpha: float = 1.0
) -> TranslationData:
    """Dev or test pairs for `evaluate`; pairs with a blank source are left out."""
    keep = [i for i, s in enumerate(src) if s.strip()]
    s_ids, t_ids = encode_pairs(src_tok, tgt_tok, [src[i] for i in keep], [tgt[i] for i in keep])
    return TranslationData(s_ids, t_ids, [tgt[i] for i in keep], beam, alpha)


def read_held_out(
    path: str,
    src_tok: Any,
    tgt_tok: Any,
    encoding_errors: str = "strict",
    beam: int = 5,
    alpha: float = 1.0,
) -> TranslationData:
    """A held-out TSV (`seqtool eval`) for `evaluate`, decoded with this beam and penalty."""
    from seqtool.data.parallel import read_pairs

    if beam < 1:
        raise SeqtoolError(f"--beam must be >= 1, not {beam}")
    src, tgt = read_pairs(path, encoding_errors=encoding_errors)
    return held_out(src_tok, tgt_tok, src, tgt, beam, alpha)


class PairCollate:
    """Batches from id lists, or from `Rows` on disk (read as they are batched)."""

    def __init__(self, src: Sequence[Sequence[int]], tgt: Sequence[Sequence[int]]) -> None:
        self.src, self.tgt = src, tgt

    def __call__(self, idx: list[int]) -> dict[str, torch.Tensor]:
        from seqtool.data.batching import pad

        src, src_len = pad([self.src[i] for i in idx])
        tgt = [list(map(int, self.tgt[i])) for i in idx]
        tgt_in, _ = pad([[BOS, *t] for t in tgt])  # BOS + target
        tgt_out, _ = pad([[*t, EOS] for t in tgt])  # target + EOS
        return {"src": src, "src_len": src_len, "tgt_in": tgt_in, "tgt_out": tgt_out}


# -- tokenizers --------------------------------------------------------------------------------


def build_tokenizers(spec: str, src: list[str], tgt: list[str], vocab_size: int, separate: bool):
    """(source, target) tokenizers: one joint, one per side (separate), or a file's for both
    (target None when separate: a file cannot serve as two)."""
    from seqtool import tokenizers

    if spec not in tokenizers.SPECS:  # a tokenizer file serves both sides
        tok = tokenizers.load(spec)
        return tok, (tok if not separate else None)
    if separate:
        return tokenizers.build(spec, src, vocab_size), tokenizers.build(spec, tgt, vocab_size)
    tok = tokenizers.build(spec, src + tgt, vocab_size)
    return tok, tok


def train_tokenizers(
    spec: str, pairs: Any, n: int, vocab_size: int, separate: bool, sample: int
) -> tuple[Any, Any]:
    """build_tokenizers on the first n pairs of a PairFile, streamed: characters from every
    pair; sentencepiece from every pair when they hold at most `sample` characters (0: no
    limit), else from every k-th pair, so its memory stays bounded."""
    from seqtool import tokenizers

    if spec not in tokenizers.SPECS:
        return build_tokenizers(spec, [], [], vocab_size, separate)
    if spec == "char":
        src_chars: set[str] = set()
        tgt_chars: set[str] = set()
        seen = 0
        for src, tgt in pairs.iter_chunks():
            src, tgt = src[: n - seen], tgt[: n - seen]
            src_chars.update("".join(src))
            tgt_chars.update("".join(tgt))
            seen += len(src)
        if separate:
            return tokenizers.CharTokenizer.train(
                ["".join(src_chars)]
            ), tokenizers.CharTokenizer.train(["".join(tgt_chars)])
        tok = tokenizers.CharTokenizer.train(["".join(src_chars | tgt_chars)])
        return tok, tok
    step = max(1, -(-pairs.chars // sample)) if sample > 0 else 1
    src, tgt = pairs.pairs(0, n, step)
    return build_tokenizers(spec, src, tgt, vocab_size, separate)


def pair_tokenizers(opts: TranslatorOptions, pairs: Any, n: int) -> tuple[Any, Any]:
    """The (source, target) tokenizers `opts` asks for, trained on the first n pairs of a
    PairFile."""
    o = opts
    src_tok, tgt_tok = train_tokenizers(
        o.tokenizer, pairs, n, o.vocab_size, o.separate_vocab, o.tokenizer_sample
    )
    if tgt_tok is None:
        raise SeqtoolError("--separate-vocab needs bpe or unigram (trained here), not a file")
    return src_tok, tgt_tok


def target_metadata(tok: Any | None) -> dict[str, Any]:
    """A separate target tokenizer (None: none) as checkpoint metadata, in base64."""
    if tok is None:
        return {}
    return {
        "target_tokenizer": {"kind": tok.kind, "data": base64.b64encode(tok.to_bytes()).decode()}
    }


def target_from_metadata(extra: dict[str, Any]) -> Any:
    """The target tokenizer stored by `target_metadata`."""
    from seqtool import tokenizers

    meta = extra.get("target_tokenizer") or {}
    try:
        return tokenizers.from_bytes(meta["kind"], base64.b64decode(meta["data"]))
    except (KeyError, TypeError, ValueError) as e:
        raise SeqtoolError("checkpoint: target tokenizer is missing or damaged") from e


# -- the training set --------------------------------------------------------------------------


def encode_pair_file(pairs: Any, src_tok: Any, tgt_tok: Any) -> tuple[Any, Any]:
    """Source ids (+ EOS) and target ids of every pair as `Rows`, from the row cache:
    tokenized a chunk at a time on first use, reused by later runs on the same data."""
    from seqtool.data import rows

    def side(name: str, tok: Any, encode: Callable) -> Any:
        key = rows.cache_key("translator", name, pairs.content_hash(), tok.kind, tok.to_bytes())

        def build(writer: Any) -> None:
            for chunk in pairs.iter_chunks():
                writer.add(encode(chunk))

        return rows.Rows([rows.cached(key, tok.vocab_size - 1, build)])

    eos = src_tok.eos_id
    src = side("source", src_tok, lambda c: [x + [eos] for x in src_tok.encode(c[0])])
    tgt = side("target", tgt_tok, lambda c: tgt_tok.encode(c[1]))
    return src, tgt


def training_pairs(
    opts: TranslatorOptions,
    batch_size: int,
    seed: int,
    build: Callable[[Any, Any], Any],
    resumed: Callable[[], Any] | None = None,
) -> tuple[Any, Any, TranslationData | None]:
    """Read the training pairs of `opts` and its dev pairs (--dev, or the --dev-fraction
    tail), train the tokenizers and `build(source tokenizer, target tokenizer)` the model, or
    take the `resumed()` model's. Returns (model, bucketed training batches, dev data)."""
    from seqtool.data.batching import BucketedSource
    from seqtool.data.parallel import PairFile, read_pairs

    files = opts.files
    if files and len(files) > 1:
        raise SeqtoolError("give one TSV file (or --source and --target)")
    pairs = PairFile(files[0] if files else None, opts.source, opts.target, opts.encoding_errors)
    try:
        n = len(pairs)
        dev = None
        if opts.dev is not None:
            dev = read_pairs(opts.dev, encoding_errors=opts.encoding_errors)
        elif k := dev_count(len(pairs), opts.dev_fraction, "pairs"):  # enough to rank, or 0
            n = len(pairs) - k
            dev = pairs.pairs(n)  # the tail
        if resumed is not None:  # same tokenizers and config; the trainer loads the weights
            model = resumed()
            src_tok, tgt_tok = model.tokenizer, model.target_tokenizer
        else:
            src_tok, tgt_tok = pair_tokenizers(opts, pairs, n)
            model = build(src_tok, tgt_tok)
        s_ids, t_ids = encode_pair_file(pairs, src_tok, tgt_tok)
        nonempty = pairs.nonempty
    finally:
        pairs.close()
    s_len, t_len = s_ids.lengths[:n], t_ids.lengths[:n]
    m = opts.max_length
    keep = np.flatnonzero(nonempty[:n] & (s_len <= m) & (t_len < m))
    if not len(keep):
        raise SeqtoolError(f"no training pairs with both sides non-empty and <= {m} tokens")
    lengths = np.maximum(s_len[keep], t_len[keep] + 1)
    collate = PairCollate(s_ids.select(keep), t_ids.select(keep))
    source = BucketedSource(lengths, collate, batch_size, seed=seed)
    dev_data = held_out(src_tok, tgt_tok, *dev) if dev and dev[0] else None
    return model, source, dev_data
