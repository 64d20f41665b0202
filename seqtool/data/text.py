"""Reading text files and stdin with errors that name the file, line and column."""

from __future__ import annotations

import codecs
import contextlib
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from seqtool.errors import DataError, SeqtoolError

ENCODING_ERRORS = ("strict", "replace", "ignore")


def display_name(path: str | Path) -> str:
    """How messages name an input: its path, or <stdin> for `-`."""
    return "<stdin>" if str(path) == "-" else str(path)


def check_input_path(
    path: str | Path, what: str = "file", expected: str = "a file", error: type = SeqtoolError
) -> Path:
    """The path of an input that must be a readable file; a clear error otherwise.

    `hf:NAME[:CONFIG][@SPLIT]` names a Hugging Face dataset split: its path is a local copy
    in the format its columns make (data/hub.py), streamed to disk once per process."""
    if str(path).startswith("hf:"):
        from seqtool.data import hub

        return hub.local_copy(str(path))
    p = Path(path)
    if not p.exists():
        raise error(f"{p}: no such {what}")
    if p.is_dir():
        raise error(f"{p}: is a directory, expected {expected}")
    return p


def _decode(data: bytes, name: str, errors: str) -> str:
    if errors not in ENCODING_ERRORS:
        raise SeqtoolError(f"encoding errors must be one of {', '.join(ENCODING_ERRORS)}")
    try:
        return data.decode("utf-8", errors=errors)
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise DataError(
            f"invalid UTF-8 at byte offset {e.start} (use --encoding-errors replace to substitute)",
            name,
            line,
            col,
        ) from None


def read_text(path: str | Path, encoding_errors: str = "strict") -> str:
    """The whole file (or stdin for '-') as text. Raises DataError on bad UTF-8."""
    if str(path) == "-":
        return _decode(sys.stdin.buffer.read(), "<stdin>", encoding_errors)
    p = check_input_path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise SeqtoolError(f"{path}: {e.strerror or e}") from None
    return _decode(data, str(path), encoding_errors)


def iter_lines(path: str | Path | None, encoding_errors: str = "strict") -> Iterator[str]:
    """Lines without their newline, streamed (bounded memory) from a file or stdin."""
    if path is None or str(path) == "-":
        stream, name = sys.stdin.buffer, "<stdin>"
    else:
        p = check_input_path(path)
        stream, name = p.open("rb"), str(path)
    try:
        yield from decode_lines(stream, name, encoding_errors)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


def decode_lines(raw: Iterable[bytes], name: str, encoding_errors: str = "strict") -> Iterator[str]:
    """Byte lines decoded as UTF-8, without their newline; DataError names a bad line."""
    for n, line in enumerate(raw, 1):
        try:
            text = line.decode("utf-8", errors=encoding_errors)
        except UnicodeDecodeError as e:
            raise DataError(
                f"invalid UTF-8 at byte {e.start} of the line "
                "(use --encoding-errors replace to substitute)",
                name,
                n,
                e.start + 1,
            ) from None
        yield text.rstrip("\n").rstrip("\r")


@contextlib.contextmanager
def as_utf8_file(p: Path, errors: str) -> Iterator[Path]:
    """`p` itself when it is UTF-8 or `errors` is strict (bad bytes then name their line);
    else a temporary copy decoded line by line with `errors`, so line numbers still match."""
    if errors not in ENCODING_ERRORS:
        raise SeqtoolError(f"encoding errors must be one of {', '.join(ENCODING_ERRORS)}")
    if errors == "strict" or is_utf8_file(p):
        yield p
        return
    with tempfile.TemporaryDirectory(prefix="seqtool-") as d:
        copy = Path(d) / p.name
        with p.open("rb") as src, copy.open("w", encoding="utf-8", newline="") as dst:
            for line in src:  # a newline byte never sits inside a UTF-8 sequence
                dst.write(line.decode("utf-8", errors=errors))
        yield copy


def is_utf8_file(p: Path) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with p.open("rb") as f:
            while chunk := f.read(1 << 20):
                decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True
