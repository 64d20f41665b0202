"""Language-model data: a token stream, random training windows, contiguous dev streams."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from seqtool.data.batching import RandomWindows
from seqtool.data.text import display_name
from seqtool.errors import SeqtoolError

IN_MEMORY_TOKENS = 50_000_000  # larger token streams stay on disk


class WindowSampler(RandomWindows):
    """Random windows of `seq_len + 1` tokens from one long token stream (resumable).

    `ids` is a 1-D tensor, or a TokenFile (corpora larger than memory: windows are read
    from disk as they are drawn)."""

    def __init__(self, ids: Any, batch_size: int, seq_len: int, seed: int = 0) -> None:
        super().__init__(batch_size, seed)
        self.ids = ids
        n = len(ids)
        # A corpus shorter than a window trains on windows as long as it allows.
        self.seq_len = max(1, min(seq_len, n - 1))
        self.steps_per_epoch = max(1, n // (batch_size * self.seq_len))
        self._offsets = torch.arange(self.seq_len + 1)

    def next_batch(self) -> dict[str, torch.Tensor]:
        high = len(self.ids) - self.seq_len
        starts = torch.randint(0, high, (self.batch_size,), generator=self.gen)[self._part]
        if isinstance(self.ids, torch.Tensor):
            win = self.ids[starts[:, None] + self._offsets].long()  # (B, T+1)
        else:
            win = self.ids.gather(starts.tolist(), self.seq_len + 1)  # (B, T+1)
        return {"x": win[:, :-1], "y": win[:, 1:]}


class EvalStream:
    """Dev data for carried-state evaluation: `streams` contiguous rows read in chunks."""

    def __init__(self, ids: torch.Tensor, num_chars: int, streams: int = 16, chunk: int = 256):
        self.ids, self.num_chars = ids, num_chars
        self.streams = max(1, min(streams, (ids.numel() - 1) // 2))
        self.chunk = chunk

    @property
    def predicted(self) -> int:
        """Tokens predicted: (len - 1) // streams per stream."""
        return self.streams * ((self.ids.numel() - 1) // self.streams)

    @property
    def chars(self) -> float:
        """Characters the predicted tokens cover (= predicted for char models)."""
        return self.num_chars * self.predicted / max(1, self.ids.numel())

    def chunks(self, reverse: bool = False, device: Any = None):
        """(inputs, targets) (streams, chunk) in order; a state carried across chunks sees
        each stream's whole past. reverse: the text read right to left."""
        ids = self.ids.flip(0) if reverse else self.ids
        rows = self.streams
        L = (ids.numel() - 1) // rows  # tokens predicted per stream
        x = ids[: rows * L].view(rows, L)  # stored dtype; widened chunk by chunk
        y = ids[1 : rows * L + 1].view(rows, L)
        for s in range(0, L, self.chunk):
            xs = x[:, s : s + self.chunk].long().to(device)
            ys = y[:, s : s + self.chunk].long().to(device)
            yield xs, ys


def token_stream(
    files: list[str],
    encoding_errors: str,
    dev: str | None,
    dev_fraction: float,
    build: Callable[[np.ndarray, list[str]], tuple[Any, Any]],
) -> tuple[Any, Any, Any]:
    """Check and count the training files, then tokenize them into the on-disk token cache.

    build(char counts, files on disk) -> (model config, tokenizer) runs between the two
    passes, so a tokenizer can learn from the corpus. Returns (config, tokenizer, TokenFile).
    stdin ('-') is spooled to a temporary file first and removed after."""
    from seqtool.data import corpus

    if not files:
        raise SeqtoolError("give at least one training file (or - for stdin)")
    if dev is None and dev_fraction > 0 and not 0 < dev_fraction < 1:
        raise SeqtoolError(f"--dev-fraction must be in (0, 1), not {dev_fraction}")
    names = [display_name(f) for f in files]
    files, spooled = corpus.spool_stdin(files)
    try:
        for f, name in zip(files, names, strict=True):
            if corpus.check_input_path(f).stat().st_size == 0:
                raise SeqtoolError(f"{name}: empty corpus")
        content_hash, counts, chars = corpus.corpus_hash(files, encoding_errors)
        config, tok = build(counts, files)
        tokens = corpus.tokenize_to_cache(files, tok, content_hash, chars, encoding_errors)
    finally:
        if spooled:
            os.unlink(spooled)
    if not any(chr(c).strip() for c in np.nonzero(counts)[0]):
        raise SeqtoolError(f"{names[0]}: empty corpus (whitespace only)")
    return config, tok, tokens


def corpus_tokenizer(
    spec: str, counts: np.ndarray, files: list[str], vocab_size: int, encoding_errors: str
) -> Any:
    """--tokenizer for a corpus: its characters, subwords learnt from a sample, or a file."""
    from seqtool import tokenizers
    from seqtool.data import corpus

    if spec == "char":
        return tokenizers.CharTokenizer(chr(c) for c in np.nonzero(counts)[0])
    sample = corpus.spm_sample(files, encoding_errors) if spec in tokenizers.SPECS else []
    return tokenizers.build(spec, sample, vocab_size, dummy_prefix=False)


def token_counts(ids: Any, vocab_size: int, limit: int = 20_000_000) -> np.ndarray:
    """Token frequencies over (at most the first `limit` tokens of) the training stream."""
    part = ids[:limit].numpy() if isinstance(ids, torch.Tensor) else ids.read(0, limit)
    return np.bincount(part.astype(np.int64), minlength=vocab_size)[:vocab_size]


def training_ids(tokens: Any, dev_fraction: float, max_dev_tokens: int) -> tuple[Any, Any]:
    """(training ids, held-out tail as EvalStream or None). A huge tail is sampled: at most
    max_dev_tokens of it are read. Small corpora come back as an in-memory tensor (faster to
    index); larger ones stay a TokenFile on disk."""
    held = None
    if dev_fraction > 0:
        cut = int(len(tokens) * (1 - dev_fraction))
        dev_ids = tokens.span(cut, cut + max_dev_tokens)
        chars = round(len(dev_ids) * tokens.num_chars / max(1, len(tokens)))
        held = EvalStream(dev_ids.tensor(), chars)
        tokens = tokens.span(0, cut)
    if len(tokens) < 3:
        raise SeqtoolError("corpus too small: need at least 3 tokens of training text")
    return (tokens.tensor() if len(tokens) <= IN_MEMORY_TOKENS else tokens), held
