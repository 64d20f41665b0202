"""Labelled tables (CSV, TSV, JSONL) for the classifier.

Tables are read with the standard library's `csv`/`json` modules, streamed: a table of
millions of rows is checked and tokenized with bounded memory, and only a small label id per
row is held; each pass over the texts reads the file again. Every error names the line (the
reader knows it; no second pass to find it). This replaced reading through `datasets`' CSV
builder and its Arrow cache files: it is faster and holds less (docs/benchmarks.md, "Table
reading"), and it leans on no library's cache layout. Hugging Face datasets (`hf:NAME...`)
arrive as a local JSONL copy streamed by data/hub.py. Prediction input is streamed the same way.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from array import array
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from seqtool.data.text import ENCODING_ERRORS, check_input_path, display_name
from seqtool.errors import DataError, SeqtoolError

FORMATS = ("csv", "tsv", "jsonl")
_EXT = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".ndjson": "jsonl",
}

csv.field_size_limit(1 << 30)  # long reviews are fine; the default 128 KiB limit is not
CHUNK_ROWS = 10_000  # rows converted to Python objects at a time


def detect_format(path: str | Path, default: str = "csv") -> str:
    """A table's format by its extension (an `hf:` dataset: by the layout of its copy)."""
    if str(path).startswith("hf:"):
        path = check_input_path(path)
    return _EXT.get(Path(str(path)).suffix.lower(), default)


class _Malformed(Exception):
    """The fast pass met a malformed record: the checked pass names its line."""


class TableFile:
    """A CSV/TSV/JSONL file whose columns are read again, streamed, on each pass.

    A pass decodes and parses in C (a text file into `csv.reader` / `json.loads`), chunk by
    chunk; only when something is wrong does the checked, line-counting reader (iter_records)
    run, to name the line."""

    def __init__(self, path: Path, name: str, fmt: str, encoding_errors: str = "strict") -> None:
        self.path, self.name, self.fmt, self.errors = path, name, fmt, encoding_errors
        first = next(self.records(limit=1), None)  # checks the header and the first record
        self.column_names: list[str] = list(first[1]) if first else self._header()

    def _header(self) -> list[str]:
        if self.fmt == "jsonl":
            return []
        with self.path.open("rb") as raw:
            return list(next(_csv_rows(raw, self.name, self.fmt, self.errors), (0, [], []))[1])

    def records(self, limit: int | None = None) -> Iterator[tuple[int, Any]]:
        with self.path.open("rb") as raw:
            yield from iter_records(raw, self.name, self.fmt, limit, self.errors)

    def line_of_row(self, row: int) -> int | None:
        """The line where row `row` (0-based, blank lines not counted) starts."""
        for i, (line, _) in enumerate(self.records()):
            if i == row:
                return line
        return None

    def iter_columns(
        self, columns: list[str], rows: int = CHUNK_ROWS
    ) -> Iterator[tuple[int, list[list[Any]]]]:
        """(index of the chunk's first row, one list per column) for at most `rows` rows at a
        time, in order; a key a JSONL record lacks reads as None."""
        try:
            yield from self._fast(columns, rows)
        except (UnicodeDecodeError, csv.Error, json.JSONDecodeError, _Malformed):
            for _ in self.records():  # raises DataError at the bad line
                pass
            raise DataError(f"cannot read as {self.fmt}", self.name) from None

    def _fast(self, columns: list[str], rows: int) -> Iterator[tuple[int, list[list[Any]]]]:
        start = 0
        # utf-8-sig: a byte-order mark is no part of the first column's name
        with self.path.open(encoding="utf-8-sig", errors=self.errors, newline="") as f:
            if self.fmt == "jsonl":
                while lines := list(islice(f, rows)):
                    recs = [json.loads(line) for line in lines if line.strip()]
                    if not all(type(r) is dict for r in recs):
                        raise _Malformed
                    yield start, [[r.get(c) for r in recs] for c in columns]
                    start += len(recs)
                return
            tsv = self.fmt == "tsv"
            reader = csv.reader(
                f,
                delimiter="\t" if tsv else ",",
                quoting=csv.QUOTE_NONE if tsv else csv.QUOTE_MINIMAL,
                strict=True,
            )
            header = next(reader, [])
            width, index = len(header), [header.index(c) for c in columns]
            while chunk := list(islice(reader, rows)):
                chunk = [r for r in chunk if r]  # blank lines
                if any(len(r) != width for r in chunk):
                    raise _Malformed
                yield start, [[r[i] for r in chunk] for i in index]
                start += len(chunk)


class LabelledTable:
    """A checked labelled table. Its rows stay in the file on disk; in memory are one label
    code per row (int32, an index into `label_names`) and a few counts."""

    def __init__(
        self,
        path: str,
        fmt: str,
        text_column: str,
        source: TableFile,
        codes: np.ndarray,
        label_names: list[str],
        chars: int,
    ) -> None:
        self.path, self.fmt, self.text_column, self.source = path, fmt, text_column, source
        self.codes, self.label_names, self.chars = codes, label_names, chars
        self._hash: str | None = None

    def __len__(self) -> int:
        return len(self.codes)

    @property
    def labels(self) -> list[str]:
        """Every row's label as a string (a Python list: for small tables)."""
        return [self.label_names[c] for c in self.codes.tolist()]

    def iter_texts(self, rows: int = CHUNK_ROWS) -> Iterator[list[str]]:
        """The texts (as strings) a chunk of rows at a time, in row order."""
        for _, (texts,) in self.source.iter_columns([self.text_column], rows):
            yield texts if self.fmt != "jsonl" else [t if type(t) is str else str(t) for t in texts]

    def has_column(self, name: str) -> bool:
        return name in self.source.column_names

    def probabilities(self, column: str) -> np.ndarray:
        """(N,) float32: a column of probabilities in [0, 1] (a teacher's score per row);
        DataError names the line of a value that is missing, not a number or out of range."""
        out = np.empty(len(self), dtype=np.float32)
        for start, (values,) in self.source.iter_columns([column]):
            for row, v in enumerate(values, start):
                try:
                    x = float(v)
                except (TypeError, ValueError):
                    x = float("nan")
                if not 0.0 <= x <= 1.0:  # also catches nan
                    line = self.source.line_of_row(row)
                    raise DataError(
                        f"{column} {v!r} is not a probability in [0, 1]", self.path, line
                    )
                out[row] = x
        return out

    def content_hash(self) -> str:
        """sha256 of the file's bytes, the key of token caches built from it."""
        if self._hash is None:
            from seqtool.data.rows import file_hash

            self._hash = file_hash([self.source.path])
        return self._hash


def read_labelled(
    path: str | Path,
    text_column: str = "text",
    label_column: str = "label",
    fmt: str | None = None,
    encoding_errors: str = "strict",
) -> LabelledTable:
    """A CSV/TSV/JSONL file (or an `hf:` dataset split) of (text, label) rows, checked in one
    streamed pass; DataError names the line of the first bad row. Bytes that are not UTF-8
    are an error naming their line, or replaced/dropped with encoding_errors replace|ignore."""
    if encoding_errors not in ENCODING_ERRORS:
        raise SeqtoolError(f"encoding errors must be one of {', '.join(ENCODING_ERRORS)}")
    p = check_input_path(path)
    name = display_name(path)
    fmt = fmt or detect_format(p)
    if fmt not in FORMATS:
        raise SeqtoolError(f"input format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    source = TableFile(p, name, fmt, encoding_errors)
    columns = source.column_names
    for role, col in (("text", text_column), ("label", label_column)):
        if col not in columns:
            raise DataError(
                f"no {role} column {col!r}; the columns are: {', '.join(map(repr, columns))} "
                f"(choose with --{role}-column)",
                name,
            )
    codes = array("i")
    names: dict[str, int] = {}
    chars = 0
    for start, (texts, labels) in source.iter_columns([text_column, label_column]):
        for row, (t, y) in enumerate(zip(texts, labels, strict=True), start):
            if t is None or not (t := t if type(t) is str else str(t)).strip():
                line = source.line_of_row(row)
                raise DataError(f"empty text in column {text_column!r}", name, line)
            if y is None or not (y := str(y).strip()):
                line = source.line_of_row(row)
                raise DataError(f"empty label in column {label_column!r}", name, line)
            codes.append(names.setdefault(y, len(names)))
            chars += len(t)
    if not codes:
        raise DataError("no rows", name)
    ids = np.frombuffer(codes, dtype=np.intc).astype(np.int32)
    return LabelledTable(name, fmt, text_column, source, ids, list(names), chars)


def _utf8_lines(raw: Iterable[bytes], name: str, errors: str = "strict") -> Iterator[str]:
    for n, b in enumerate(raw, 1):
        if n == 1 and b.startswith(b"\xef\xbb\xbf"):  # a byte-order mark is no part of the header
            b = b[3:]
        try:
            yield b.decode("utf-8", errors=errors)
        except UnicodeDecodeError as e:
            raise DataError(
                f"invalid UTF-8 at byte {e.start} of the line", name, n, e.start + 1
            ) from None


def _csv_rows(
    raw: Iterable[bytes], name: str, fmt: str, errors: str = "strict"
) -> Iterator[tuple[int, list[str], list[str]]]:
    """(line, header, fields) of each CSV/TSV record; bad structure raises DataError."""
    lines = _utf8_lines(raw, name, errors)
    if fmt == "tsv":
        reader = csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE, strict=True)
    else:
        reader = csv.reader(lines, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise DataError("empty file (no header line)", name) from None
    except csv.Error as e:
        raise DataError(f"malformed header ({e})", name, 1) from None
    if not any(h.strip() for h in header):
        raise DataError("empty header line", name, 1)
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise DataError(
            f"duplicate column name(s) {', '.join(map(repr, dupes))} in the header", name, 1
        )
    start = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise DataError(f"{e} (a broken quote?)", name, start) from None
        if not row:  # a blank line
            start = reader.line_num + 1
            continue
        if len(row) != len(header):
            raise DataError(
                f"{len(row)} field(s) but the header has {len(header)} (a broken quote or a stray "
                f"{'tab' if fmt == 'tsv' else 'comma'}?)",
                name,
                start,
            )
        yield start, header, row
        start = reader.line_num + 1


def _csv_values(
    raw: Iterable[bytes], name: str, fmt: str, columns: list[str], errors: str
) -> Iterator[tuple[int, list[str]]]:
    index: list[int] | None = None
    for line, header, row in _csv_rows(raw, name, fmt, errors):
        if index is None:
            index = [header.index(c) for c in columns]
        yield line, [row[i] for i in index]


def iter_records(
    raw: Iterable[bytes],
    name: str,
    fmt: str,
    limit: int | None = None,
    encoding_errors: str = "strict",
) -> Iterator[tuple[int, Any]]:
    """Stream (line number, record) from byte lines (a binary file, or stream.Lines). CSV/TSV
    records are dicts keyed by the header; JSONL records are objects. Bad structure raises
    DataError with the line."""
    if fmt == "jsonl":
        yield from _iter_jsonl(raw, name, limit, encoding_errors)
        return
    for count, (line, header, row) in enumerate(_csv_rows(raw, name, fmt, encoding_errors)):
        if limit is not None and count >= limit:
            return
        yield line, dict(zip(header, row, strict=True))


def _iter_jsonl(
    raw: Iterable[bytes], name: str, limit: int | None, errors: str = "strict"
) -> Iterator[tuple[int, Any]]:
    count = 0
    for n, line in enumerate(_utf8_lines(raw, name, errors), 1):
        if limit is not None and count >= limit:
            return
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"invalid JSON ({e.msg})", name, n, e.colno) from None
        if not isinstance(obj, dict):
            raise DataError("each line must be a JSON object", name, n)
        yield n, obj
        count += 1


def sniff_format(first_line: bytes) -> str:
    """The table format of input without a name (stdin), from its first line: a JSON object
    is JSONL, a header with a tab TSV, anything else CSV."""
    head = first_line.lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"{"):
        return "jsonl"
    return "tsv" if b"\t" in first_line else "csv"


def open_input(path: str | None) -> tuple[io.BufferedIOBase, str]:
    """A byte stream for a path, or stdin for None / '-'."""
    if path is None or path == "-":
        return sys.stdin.buffer, "<stdin>"
    return check_input_path(path).open("rb"), str(path)
