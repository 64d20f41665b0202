"""The one way seqtool writes a file: to a temp file beside the target, fsynced, then renamed
into place, so a reader (or a crash) never sees a half-written file. Checkpoints, resume
state, tokenizers, CSV/JSONL outputs and the on-disk caches all go through here."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from seqtool.errors import SeqtoolError


def _usual_mode(path: str | Path) -> None:
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)  # mkstemp makes 0600; give the usual file mode


class AtomicFile:
    """A file opened for writing at a temp path; `commit()` renames it into place and
    `discard()` removes it. As a context manager it commits on success, discards on error."""

    def __init__(self, path: str | Path, mode: str = "w", **open_args: Any) -> None:
        p = Path(path)
        if p.is_dir():
            raise SeqtoolError(f"{p}: is a directory")
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
        self.path, self.tmp = p, Path(tmp)
        if "b" not in mode:
            open_args.setdefault("encoding", "utf-8")
        self.stream: IO[Any] = open(fd, mode, **open_args)  # noqa: SIM115 (closed in commit/discard)

    def commit(self) -> None:
        self.stream.flush()
        os.fsync(self.stream.fileno())
        self.stream.close()
        _usual_mode(self.tmp)
        os.replace(self.tmp, self.path)

    def discard(self) -> None:
        self.stream.close()
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> IO[Any]:
        return self.stream

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    f = AtomicFile(path, "wb")
    try:
        f.stream.write(data)
    except BaseException:
        f.discard()
        raise
    f.commit()


@contextlib.contextmanager
def open_output(path: str | None, newline: str | None = None) -> Iterator[IO[str]]:
    """Text output: the file at `path`, renamed into place only if the block succeeds (nothing
    half-written is left), or stdout when no path is given."""
    if not path:
        yield sys.stdout
        return
    with AtomicFile(path, newline=newline) as f:
        yield f
