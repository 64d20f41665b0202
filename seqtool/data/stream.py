"""Input lines that notice when a live feed stalls, and batches flushed when it does.

Files and pipes that keep up are processed in full batches (the batch size is the throughput
knob). When a pipe, FIFO or terminal has nothing more to read for a moment, the records
already read are processed and written before the read blocks, so `tail -f log | seqtool
classify` answers each line as it comes instead of every 256 lines.
"""

from __future__ import annotations

import io
import os
import select
import stat
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any, TypeVar

from seqtool.data.text import check_input_path

T = TypeVar("T")

# How long a feed may pause before what has been read is flushed. Short enough to feel
# immediate; long enough that a fast producer (`cat big.txt |`) never trips it between
# writes, so pipes batch exactly like files.
STALL_S = 0.05
READ_BYTES = 1 << 16


class Lines:
    """The byte lines (newline kept) of a file or stdin, with `peek()` at the first one.

    A live source (pipe, FIFO, terminal, socket) is read with os.read and select, so that
    before a read would block, `on_stall` (when set) is called: the hook that flushes a
    partial batch. Regular files and in-memory streams are iterated as before."""

    def __init__(self, raw: IO[bytes] | Any, name: str, close: bool = False) -> None:
        self.raw, self.name, self._close = raw, name, close
        self._fd = _live_fd(raw)
        self._peeked: bytes | None = None
        self._it: Iterator[bytes] | None = None
        self.on_stall: Callable[[], None] | None = None

    @property
    def live(self) -> bool:
        return self._fd is not None

    def peek(self) -> bytes:
        """The first line (b"" for empty input), still to be read by iteration."""
        if self._peeked is None:
            self._peeked = next(self._lines(), b"")
        return self._peeked

    def __iter__(self) -> Iterator[bytes]:
        if self._peeked:
            yield self._peeked
        self._peeked = b""
        yield from self._lines()

    def close(self) -> None:
        if self._close:
            self.raw.close()

    def _lines(self) -> Iterator[bytes]:
        if self._it is None:
            self._it = self._live_lines() if self._fd is not None else iter(self.raw)
        return self._it

    def _live_lines(self) -> Iterator[bytes]:
        parts: list[bytes] = []  # a line cut by the end of a read
        while chunk := self._read():
            end = chunk.rfind(b"\n") + 1
            if not end:
                parts.append(chunk)
                continue
            whole = b"".join([*parts, chunk[:end]]) if parts else chunk[:end]
            parts = [chunk[end:]] if end < len(chunk) else []
            yield from io.BytesIO(whole)  # split at b"\n" only, as a binary file is
        if parts:
            yield b"".join(parts)

    def _read(self) -> bytes:
        assert self._fd is not None
        if self.on_stall is not None and not _ready(self._fd, STALL_S):
            self.on_stall()  # nothing more for now: write what is ready, then wait
        return os.read(self._fd, READ_BYTES)


def _ready(fd: int, timeout: float) -> bool:
    return bool(select.select([fd], [], [], timeout)[0])


def _live_fd(raw: Any) -> int | None:
    """The descriptor of a source that can stall (not a regular file), where select works."""
    if sys.platform == "win32":  # select() takes sockets only there: read as a plain file
        return None
    try:
        fd = raw.fileno()
        mode = os.fstat(fd).st_mode
    except (AttributeError, OSError, ValueError):  # io.BytesIO and friends: never stall
        return None
    return None if stat.S_ISREG(mode) else fd


def open_lines(path: str | None) -> Lines:
    """The lines of a file, or of stdin for None or '-'; a clear error for a missing file or
    a directory."""
    if path is None or path == "-":
        return Lines(sys.stdin.buffer, "<stdin>")
    p = check_input_path(path)
    return Lines(p.open("rb"), path, close=True)


def batched(
    items: Iterable[T],
    size: int,
    process: Callable[[list[T]], None],
    feed: Lines | None = None,
    weight: Callable[[T], int] | None = None,
    max_weight: int = 0,
) -> int:
    """Hand `items` to `process` in order, in batches of `size` items (and, with `weight`,
    closed once their weight reaches `max_weight`); the last batch may be short. When
    `feed` is live and stalls, the partial batch is processed first. Returns the count."""
    buf: list[T] = []
    total = n = 0

    def flush() -> None:
        nonlocal total, n
        n = 0
        if buf:
            batch = buf.copy()
            buf.clear()
            total += len(batch)
            process(batch)

    if feed is not None and feed.live:
        feed.on_stall = flush
    try:
        for x in items:
            buf.append(x)
            if weight is not None:
                n += weight(x)
            if len(buf) >= size or (weight is not None and n >= max_weight):
                flush()
        flush()
    finally:
        if feed is not None:
            feed.on_stall = None
    return total
