"""Length-bucketed batching and padding, shared by every task with variable-length inputs.

Sequences of similar length go together so little compute is spent on padding; batch order
is shuffled per epoch from (seed, epoch), so the position (epoch, batch index) is all the
state an exact resume needs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch


def bucket_batches(
    lengths: Sequence[int] | np.ndarray,
    max_tokens: int = 0,
    batch_size: int = 32,
    shuffle: bool = True,
    seed: int = 0,
    epoch: int = 0,
) -> list[np.ndarray]:
    """Indices grouped into batches of similar length (one int64 array per batch).

    With `max_tokens` > 0 a batch holds as many sequences as fit in max_tokens counted with
    padding (longest * count); otherwise `batch_size` sequences. Shuffled: sort by length
    with random tie-breaks inside chunks of 100 batches, then shuffle the batch order.
    Indices live in numpy arrays, not Python lists, so millions of examples take megabytes.
    """
    n = len(lengths)
    if n == 0:
        return []
    lengths = np.asarray(lengths)
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(n, generator=g).numpy() if shuffle else np.arange(n)
    # Sort within large pools so batches are homogeneous yet differ between epochs.
    pool = max(batch_size, 1) * 100
    batches: list[np.ndarray] = []
    for s in range(0, n, pool):
        chunk = order[s : s + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]  # ties keep the random order
        if max_tokens <= 0:
            step = max(batch_size, 1)
            batches += np.split(chunk, range(step, len(chunk), step))
            continue
        cur, longest = 0, 0  # start of the open batch in chunk, its longest sequence
        for k, length in enumerate(lengths[chunk].tolist()):
            new_longest = max(longest, length)
            if k > cur and new_longest * (k - cur + 1) > max_tokens:
                batches.append(chunk[cur:k])
                cur, new_longest = k, length
            longest = new_longest
        batches.append(chunk[cur:])
    if shuffle:
        perm = torch.randperm(len(batches), generator=g).tolist()
        batches = [batches[i] for i in perm]
    return batches


def pad(seqs: Sequence[Sequence[int]], pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Lists of ids -> (B, T) long tensor padded with pad_id, and lengths (B,)."""
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    out = torch.full((len(seqs), int(lengths.max()) if len(seqs) else 0), pad_id, dtype=torch.long)
    for i, s in enumerate(seqs):
        if len(s):
            out[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
    return out, lengths


class RandomWindows:
    """The part of a random-window BatchSource that is not about its data: a seeded
    generator whose state is the source's (resumable), and under DDP the same global batch
    drawn on every rank, each keeping its slice (`self._part` of the batch rows)."""

    def __init__(self, batch_size: int, seed: int = 0) -> None:
        self.batch_size = batch_size
        self.gen = torch.Generator().manual_seed(seed)
        self._part = slice(None)

    def shard(self, rank: int, world: int) -> None:
        from seqtool.errors import SeqtoolError
        from seqtool.training.distributed import shard_slice

        if self.batch_size < world:
            raise SeqtoolError(f"--batch-size {self.batch_size} is smaller than {world} ranks")
        self._part = shard_slice(self.batch_size, rank, world)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.gen.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.gen.set_state(state["generator"])


class BucketedSource:
    """A resumable, endless BatchSource over examples, for the generic trainer.

    `collate(list of example indices) -> batch dict`. State is (epoch, index in epoch).
    """

    def __init__(
        self,
        lengths: Sequence[int],
        collate: Callable[[list[int]], dict[str, Any]],
        batch_size: int = 32,
        max_tokens: int = 0,
        seed: int = 0,
    ) -> None:
        self.lengths, self.collate = np.asarray(lengths), collate
        self.batch_size, self.max_tokens, self.seed = batch_size, max_tokens, seed
        self.epoch, self.pos = 0, 0
        self.rank, self.world = 0, 1
        self._batches = self._make(0)
        self.steps_per_epoch = max(1, len(self._batches))

    def _make(self, epoch: int) -> list[list[int]]:
        return bucket_batches(
            self.lengths, self.max_tokens, self.batch_size, True, self.seed, epoch
        )

    def next_batch(self) -> dict[str, Any]:
        if self.pos >= len(self._batches):
            self.epoch, self.pos = self.epoch + 1, 0
            self._batches = self._make(self.epoch)
        idx = self._batches[self.pos].tolist()
        self.pos += 1
        if self.world > 1:  # this rank's slice of the global batch (at least one example)
            from seqtool.training.distributed import shard_slice

            idx = idx[shard_slice(len(idx), self.rank, self.world)] or idx[-1:]
        return self.collate(idx)

    def shard(self, rank: int, world: int) -> None:
        """Under DDP every rank walks the same global batches and keeps its own slice."""
        self.rank, self.world = rank, world

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "pos": self.pos}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.pos = int(state["epoch"]), int(state["pos"])
        self._batches = self._make(self.epoch)


def eval_batches(
    lengths: Sequence[int], batch_size: int = 64, max_tokens: int = 0
) -> Iterator[list[int]]:
    """Deterministic length-sorted batches for evaluation and prediction."""
    for batch in bucket_batches(lengths, max_tokens, batch_size, shuffle=False):
        yield batch.tolist()
