"""Token-id rows (one variable-length row per example) cached on disk by content hash.

A training table of millions of rows would take ~100 bytes a token as Python lists of ids.
Here it is tokenized once, chunk by chunk, into a flat int16/int32 file plus row offsets under
$SEQTOOL_CACHE/rows, keyed by the data's content hash, the tokenizer and the encoding options,
so the next run on the same data skips tokenizing. Rows are read with pread, as
corpus.TokenFile reads windows: random access through a memory map would leave the pages it
touched resident, and RSS would creep towards the file's size over a long run. Only the
offsets (8 bytes a row) stay in memory, and the ids of small stores (32 MB in all).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Sequence
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

from seqtool.data.atomic import AtomicFile, write_bytes
from seqtool.data.corpus import cache_dir, id_dtype

VERSION = "1"  # bump when the stored layout or an encoder's output changes
HASH_BLOCK = 4 << 20
IN_MEMORY_BYTES = 32 << 20  # ids of stores held in memory, at most, in all
_held = 0  # bytes of ids held by live stores


def file_hash(paths: Iterable[str | Path]) -> str:
    """sha256 over the bytes of the files (streamed, bounded memory); an `hf:` dataset
    split: of its local copy (data/hub.py)."""
    from seqtool.data.text import check_input_path

    h = hashlib.sha256()
    for p in paths:
        h.update(b"\0file\0")
        with open(check_input_path(p) if str(p).startswith("hf:") else p, "rb") as f:
            while block := f.read(HASH_BLOCK):
                h.update(block)
    return h.hexdigest()


def cache_key(*parts: str | bytes) -> str:
    """A key from the parts that decide a cache entry's content (length-prefixed, so
    ("ab", "c") and ("a", "bc") differ)."""
    h = hashlib.sha256(VERSION.encode())
    for part in parts:
        b = part.encode() if isinstance(part, str) else part
        h.update(len(b).to_bytes(8, "little") + b)
    return h.hexdigest()[:32]


class RowStore:
    """Rows of ids on disk: row i is ids[offsets[i]:offsets[i+1]], read with pread."""

    def __init__(self, path: Path, offsets: np.ndarray, dtype: np.dtype) -> None:
        self.path, self.offsets, self.dtype = path, offsets, np.dtype(dtype)
        self._fd = os.open(path, os.O_RDONLY)
        # Small stores (most training sets) are read once: a slice is cheaper than a pread.
        # IN_MEMORY_BYTES bounds all stores held at once, however many files a run reads.
        global _held
        self._size = int(offsets[-1]) * self.dtype.itemsize
        self._ids = None
        if _held + self._size <= IN_MEMORY_BYTES:
            self._ids = np.fromfile(path, dtype=self.dtype)
            _held += self._size

    def __del__(self) -> None:
        global _held
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)
        if getattr(self, "_ids", None) is not None:
            _held -= self._size

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets).astype(np.int32)

    def row(self, i: int) -> np.ndarray:
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        if self._ids is not None:
            return self._ids[a:b]
        size = self.dtype.itemsize
        buf = bytearray(os.pread(self._fd, (b - a) * size, a * size))  # writable for torch
        return np.frombuffer(buf, dtype=self.dtype)


class RowWriter:
    """Appends rows to a temporary file beside the cache entry `key`; `commit` renames it in
    (data/atomic.py: fsync, rename) and writes the offsets, then the metadata, the same way."""

    def __init__(self, directory: Path, dtype: np.dtype, key: str) -> None:
        self.dir, self.dtype, self.key = directory, np.dtype(dtype), key
        self._ids = AtomicFile(directory / f"{key}.ids", "wb")
        self._out = self._ids.stream
        self._offsets = [np.zeros(1, dtype=np.int64)]
        self._total = 0

    def add(self, rows: Sequence[Sequence[int]]) -> None:
        """Append a chunk of rows (lists or arrays of ids)."""
        if not len(rows):
            return
        lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
        n = int(lengths.sum())
        flat = np.fromiter(chain.from_iterable(rows), dtype=self.dtype, count=n)
        self._out.write(flat.tobytes())
        self._offsets.append(self._total + np.cumsum(lengths))
        self._total += n

    def commit(self) -> RowStore:
        offsets = np.concatenate(self._offsets)
        self._ids.commit()
        with AtomicFile(self.dir / f"{self.key}.offsets.npy", "wb") as f:
            np.save(f, offsets, allow_pickle=False)
        meta = {"rows": len(offsets) - 1, "tokens": self._total, "dtype": self.dtype.name}
        # Last: its presence marks a whole entry (_load checks it against the other two).
        write_bytes(self.dir / f"{self.key}.json", json.dumps(meta).encode())
        return RowStore(self._ids.path, offsets, self.dtype)

    def discard(self) -> None:
        self._ids.discard()


def _load(d: Path, key: str) -> RowStore | None:
    try:
        meta = json.loads((d / f"{key}.json").read_text())
        dtype = np.dtype(meta["dtype"])
        path = d / f"{key}.ids"
        offsets = np.load(d / f"{key}.offsets.npy", allow_pickle=False)
        ok = (
            offsets.ndim == 1
            and len(offsets) == meta["rows"] + 1
            and int(offsets[-1]) == meta["tokens"]
            and path.stat().st_size == meta["tokens"] * dtype.itemsize
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent or damaged: rebuilt
    return RowStore(path, offsets.astype(np.int64, copy=False), dtype) if ok else None


def cached(key: str, max_id: int, build: Callable[[RowWriter], None]) -> RowStore:
    """The cache entry `key`, built by `build(writer)` when absent (ids in [0, max_id])."""
    d = cache_dir() / "rows"
    store = _load(d, key)
    if store is not None:
        return store
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{key}.json").unlink(missing_ok=True)  # a damaged entry: unmarked until rebuilt
    writer = RowWriter(d, id_dtype(max_id), key)
    try:
        build(writer)
    except BaseException:
        writer.discard()
        raise
    return writer.commit()


def cached_parts(
    key: str, max_ids: dict[str, int], build: Callable[[dict[str, RowWriter]], None]
) -> dict[str, RowStore]:
    """Several stores written by one pass over the data (`build` gets a writer per name):
    the cache entries `key.name`, all built again when any is missing."""
    d = cache_dir() / "rows"
    stores = {name: _load(d, f"{key}.{name}") for name in max_ids}
    if all(s is not None for s in stores.values()):
        return stores  # type: ignore[return-value]
    d.mkdir(parents=True, exist_ok=True)
    for name in max_ids:  # damaged entries: unmarked until rebuilt
        (d / f"{key}.{name}.json").unlink(missing_ok=True)
    writers = {name: RowWriter(d, id_dtype(m), f"{key}.{name}") for name, m in max_ids.items()}
    try:
        build(writers)
    except BaseException:
        for w in writers.values():
            w.discard()
        raise
    return {name: w.commit() for name, w in writers.items()}


class Rows:
    """Examples as a selection of rows from one or more stores, in a given order (several
    files, a training or held-out split). Rows are read on demand."""

    def __init__(
        self,
        stores: Sequence[RowStore],
        index: np.ndarray | None = None,
        _all_lengths: np.ndarray | None = None,
    ) -> None:
        self.stores = list(stores)
        self._starts = np.cumsum([0, *(len(s) for s in self.stores)])
        self._all_lengths = _all_lengths
        total = int(self._starts[-1])
        self.index = np.arange(total, dtype=np.int64) if index is None else np.asarray(index)
        self._lengths: np.ndarray | None = None

    @property
    def lengths(self) -> np.ndarray:
        """(N,) int32 row lengths, computed on first use (a few bytes per row)."""
        if self._lengths is None:
            self._lengths = self._store_lengths()[self.index]
        return self._lengths

    def _store_lengths(self) -> np.ndarray:
        """Lengths of every row of the stores, shared by all selections from them."""
        if self._all_lengths is None:
            parts = [s.lengths for s in self.stores]
            self._all_lengths = np.concatenate(parts) if parts else np.zeros(0, np.int32)
        return self._all_lengths

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, j: int) -> np.ndarray:
        g = int(self.index[j])
        k = int(np.searchsorted(self._starts, g, side="right")) - 1
        return self.stores[k].row(g - int(self._starts[k]))

    def __iter__(self) -> Any:
        return (self[j] for j in range(len(self)))

    def select(self, index: np.ndarray) -> Rows:
        """The rows at positions `index` of this selection."""
        index = self.index[np.asarray(index, dtype=np.int64)]
        return Rows(self.stores, index, self._store_lengths())
