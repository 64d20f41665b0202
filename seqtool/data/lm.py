"""Language-model data: a token stream, random training windows, contiguous dev streams."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from seqtool.errors import SeqtoolError


class WindowSampler:
    """Random windows of `seq_len + 1` tokens from one long token stream (resumable).

    `ids` is a 1-D tensor, or a TokenFile (corpora larger than memory: windows are read
    from disk as they are drawn)."""

    def __init__(self, ids: Any, batch_size: int, seq_len: int, seed: int = 0) -> None:
        self.ids, self.batch_size = ids, batch_size
        n = len(ids)
        # A corpus shorter than a window trains on windows as long as it allows.
        self.seq_len = max(1, min(seq_len, n - 1))
        self.gen = torch.Generator().manual_seed(seed)
        self.steps_per_epoch = max(1, n // (batch_size * self.seq_len))
        self._offsets = torch.arange(self.seq_len + 1)
        self._part = slice(None)

    def shard(self, rank: int, world: int) -> None:
        """Under DDP every rank draws the same global batch and keeps its own slice."""
        from seqtool.training.distributed import shard_slice

        if self.batch_size < world:
            raise SeqtoolError(f"--batch-size {self.batch_size} is smaller than {world} ranks")
        self._part = shard_slice(self.batch_size, rank, world)

    def next_batch(self) -> dict[str, torch.Tensor]:
        high = len(self.ids) - self.seq_len
        starts = torch.randint(0, high, (self.batch_size,), generator=self.gen)[self._part]
        if isinstance(self.ids, torch.Tensor):
            win = self.ids[starts[:, None] + self._offsets].long()  # (B, T+1)
        else:
            win = self.ids.gather(starts.tolist(), self.seq_len + 1)  # (B, T+1)
        return {"x": win[:, :-1], "y": win[:, 1:]}

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.gen.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.gen.set_state(state["generator"])


class EvalStream:
    """Dev data for carried-state evaluation: `streams` contiguous rows read in chunks."""

    def __init__(self, ids: torch.Tensor, num_chars: int, streams: int = 16, chunk: int = 256):
        self.ids, self.num_chars = ids, num_chars
        self.streams = max(1, min(streams, (ids.numel() - 1) // 2))
        self.chunk = chunk


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
    names = ["<stdin>" if f == "-" else f for f in files]
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
