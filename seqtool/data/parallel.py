"""Parallel text for translation: a TSV of `source<TAB>target` lines, or two aligned files.

Pairs are streamed; `PairFile` checks a training set in one pass and then hands out its
pairs a chunk at a time, so millions of pairs are tokenized with bounded memory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from itertools import zip_longest

import numpy as np

from seqtool.data.text import display_name, iter_lines
from seqtool.errors import DataError, SeqtoolError

CHUNK_PAIRS = 10_000


def iter_tsv(
    path: str, encoding_errors: str = "strict", name: str | None = None
) -> Iterator[tuple[str, str]]:
    """Pairs from `source<TAB>target` lines; blank lines are skipped, a line without a tab is
    an error naming file:line. A target holding further tabs keeps them as spaces."""
    name = name or display_name(path)
    for n, line in enumerate(iter_lines(path, encoding_errors), 1):
        if not line.strip():
            continue
        s, sep, t = line.partition("\t")
        if not sep:
            raise DataError("expected `source<TAB>target`, found no tab", name, n)
        yield s.strip(), t.replace("\t", " ").strip()


def iter_parallel(
    source: str, target: str, encoding_errors: str = "strict", names: tuple[str, str] | None = None
) -> Iterator[tuple[str, str]]:
    """Pairs from two line-aligned files (line i of one translates line i of the other);
    lines blank on both sides are skipped. Files of different lengths are an error, raised
    when the shorter one ends."""
    names = names or (source, target)
    lines = zip_longest(iter_lines(source, encoding_errors), iter_lines(target, encoding_errors))
    for n, (s, t) in enumerate(lines):
        if s is None or t is None:
            rest = 1 + sum(1 for _ in lines)
            n_src, n_tgt = (n, n + rest) if s is None else (n + rest, n)
            raise SeqtoolError(
                f"{names[0]} has {n_src} lines but {names[1]} has {n_tgt}; "
                "parallel files must be line-aligned"
            )
        if s.strip() or t.strip():
            yield s.strip(), t.strip()


def _lists(pairs: Iterator[tuple[str, str]], name: str) -> tuple[list[str], list[str]]:
    src, tgt = [], []
    for s, t in pairs:
        src.append(s)
        tgt.append(t)
    if not src:
        raise SeqtoolError(f"{name}: no sentence pairs")
    return src, tgt


def read_tsv(path: str, encoding_errors: str = "strict") -> tuple[list[str], list[str]]:
    """All pairs of a TSV file (see iter_tsv) as two lists."""
    return _lists(iter_tsv(path, encoding_errors), display_name(path))


def read_parallel(
    source: str, target: str, encoding_errors: str = "strict"
) -> tuple[list[str], list[str]]:
    """All pairs of two line-aligned files (see iter_parallel) as two lists."""
    return _lists(iter_parallel(source, target, encoding_errors), source)


def _check_sources(path: str | None, source: str | None, target: str | None) -> None:
    if path is not None and (source or target):
        raise SeqtoolError("give either a TSV file or --source/--target, not both")
    if path is None and not (source and target):
        if source or target:
            raise SeqtoolError("--source and --target go together")
        raise SeqtoolError("give a TSV file of `source<TAB>target` lines, or --source and --target")


def read_pairs(
    path: str | None = None,
    source: str | None = None,
    target: str | None = None,
    encoding_errors: str = "strict",
) -> tuple[list[str], list[str]]:
    """Either a TSV path or --source/--target files, never both."""
    _check_sources(path, source, target)
    if path is not None:
        return read_tsv(path, encoding_errors)
    assert source and target
    return read_parallel(source, target, encoding_errors)


class PairFile:
    """A training set of pairs on disk (a TSV, or two aligned files; stdin is spooled to a
    temporary file), checked in one streamed pass. In memory: the pair count, the character
    count and one flag per pair (both sides non-empty)."""

    def __init__(
        self,
        path: str | None = None,
        source: str | None = None,
        target: str | None = None,
        encoding_errors: str = "strict",
    ) -> None:
        from seqtool.data.corpus import spool_stdin

        _check_sources(path, source, target)
        given = [path] if path is not None else [source, target]
        self.names = [display_name(f) for f in given]
        files, self._spooled = spool_stdin([str(f) for f in given])
        self.files, self.encoding_errors = files, encoding_errors
        self._hash: str | None = None
        try:
            flags, chunk, chars = [], [], 0
            for s, t in self.iter_pairs_one_by_one():
                chunk.append(bool(s) and bool(t))
                chars += len(s) + len(t)
                if len(chunk) >= CHUNK_PAIRS:
                    flags.append(np.array(chunk, dtype=bool))
                    chunk = []
            flags.append(np.array(chunk, dtype=bool))
            self.nonempty = np.concatenate(flags)  # (N,) both sides hold text
            self.chars = chars
            if not len(self.nonempty):
                raise SeqtoolError(f"{self.names[0]}: no sentence pairs")
        except BaseException:
            self.close()
            raise

    def __len__(self) -> int:
        return len(self.nonempty)

    def close(self) -> None:
        """Remove a spooled copy of stdin."""
        if self._spooled:
            os.unlink(self._spooled)
            self._spooled = None

    def iter_pairs_one_by_one(self) -> Iterator[tuple[str, str]]:
        if len(self.files) == 1:
            return iter_tsv(self.files[0], self.encoding_errors, self.names[0])
        src, tgt = self.files
        return iter_parallel(src, tgt, self.encoding_errors, (self.names[0], self.names[1]))

    def iter_chunks(self, size: int = CHUNK_PAIRS) -> Iterator[tuple[list[str], list[str]]]:
        """(sources, targets) of up to `size` pairs at a time, in order."""
        src: list[str] = []
        tgt: list[str] = []
        for s, t in self.iter_pairs_one_by_one():
            src.append(s)
            tgt.append(t)
            if len(src) >= size:
                yield src, tgt
                src, tgt = [], []
        if src:
            yield src, tgt

    def pairs(self, start: int = 0, stop: int | None = None, step: int = 1):
        """Pairs start:stop:step as two lists (a dev tail, a tokenizer sample)."""
        stop = len(self) if stop is None else stop
        src, tgt = [], []
        for i, (s, t) in enumerate(self.iter_pairs_one_by_one()):
            if i >= stop:
                break
            if i >= start and (i - start) % step == 0:
                src.append(s)
                tgt.append(t)
        return src, tgt

    def content_hash(self) -> str:
        """sha256 of the files' bytes and how they are read, the key of token caches."""
        if self._hash is None:
            from seqtool.data.rows import cache_key, file_hash

            how = f"{'tsv' if len(self.files) == 1 else 'parallel'} {self.encoding_errors}"
            self._hash = cache_key(how, file_hash(self.files))
        return self._hash
