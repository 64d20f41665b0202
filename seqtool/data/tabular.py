"""Labelled tables (CSV, TSV, JSONL) for the classifier.

Training data is loaded with `datasets` (local files only, never the network) into its Arrow
cache on disk; rows are then read back a chunk at a time, so a table of millions of rows is
checked and tokenized with bounded memory and only a small label id per row is held. When
loading fails or a row is bad, a plain Python pass over the file finds the line to name in
the error. Prediction input is streamed with the `csv`/`json` modules.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from seqtool.data.text import as_utf8_file, check_input_path
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
    return _EXT.get(Path(str(path)).suffix.lower(), default)


class LabelledTable:
    """A checked labelled table. Its rows stay in `datasets`' Arrow file on disk; in memory
    are one label code per row (int32, an index into `label_names`) and a few counts."""

    def __init__(
        self,
        path: str,
        fmt: str,
        text_column: str,
        dataset: Any,
        codes: np.ndarray,
        label_names: list[str],
        chars: int,
    ) -> None:
        self.path, self.fmt, self.text_column, self.dataset = path, fmt, text_column, dataset
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
        for (texts,) in iter_columns(self.dataset, [self.text_column], rows):
            yield [t if type(t) is str else str(t) for t in texts]

    def has_column(self, name: str) -> bool:
        return name in self.dataset.column_names

    def probabilities(self, column: str) -> np.ndarray:
        """(N,) float32: a column of probabilities in [0, 1] (a teacher's score per row);
        DataError names the line of a value that is missing, not a number or out of range."""
        out = np.empty(len(self), dtype=np.float32)
        row = 0
        for (values,) in iter_columns(self.dataset, [column]):
            for v in values:
                try:
                    x = float(v)
                except (TypeError, ValueError):
                    x = float("nan")
                if not 0.0 <= x <= 1.0:  # also catches nan
                    raise DataError(
                        f"{column} {v!r} is not a probability in [0, 1]",
                        self.path,
                        _line_of_row(Path(self.path), self.fmt, row),
                    )
                out[row] = x
                row += 1
        return out

    def content_hash(self) -> str:
        """sha256 of the file's bytes, the key of token caches built from it."""
        if self._hash is None:
            from seqtool.data.rows import file_hash

            self._hash = file_hash([self.path])
        return self._hash


def read_labelled(
    path: str | Path,
    text_column: str = "text",
    label_column: str = "label",
    fmt: str | None = None,
    encoding_errors: str = "strict",
) -> LabelledTable:
    """A CSV/TSV/JSONL file of (text, label) rows, checked in one streamed pass; DataError
    names the line of the first bad row. Bytes that are not UTF-8 are an error naming their
    line, or, with encoding_errors replace|ignore, read from a decoded temporary copy."""
    p = check_input_path(path)
    fmt = fmt or detect_format(p)
    if fmt not in FORMATS:
        raise SeqtoolError(f"input format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    with as_utf8_file(p, encoding_errors) as src:
        return _read_labelled(src, str(p), fmt, text_column, label_column)


def _read_labelled(
    p: Path, name: str, fmt: str, text_column: str, label_column: str
) -> LabelledTable:
    table = _load_with_datasets(p, fmt, name)
    columns = list(table.column_names)
    for role, col in (("text", text_column), ("label", label_column)):
        if col not in columns:
            raise DataError(
                f"no {role} column {col!r}; the columns are: {', '.join(map(repr, columns))} "
                f"(choose with --{role}-column)",
                name,
            )
    n = table.num_rows
    if not n:
        raise DataError("no rows", name)
    codes = np.empty(n, dtype=np.int32)
    names: dict[str, int] = {}
    chars = row = 0
    for texts, labels in iter_columns(table, [text_column, label_column]):
        for t, y in zip(texts, labels, strict=True):
            if t is None or not (t := t if type(t) is str else str(t)).strip():
                raise DataError(
                    f"empty text in column {text_column!r}", name, _line_of_row(p, fmt, row)
                )
            if y is None or not (y := str(y).strip()):
                raise DataError(
                    f"empty label in column {label_column!r}", name, _line_of_row(p, fmt, row)
                )
            codes[row] = names.setdefault(y, len(names))
            chars += len(t)
            row += 1
    return LabelledTable(name, fmt, text_column, table, codes, list(names), chars)


def iter_columns(dataset: Any, columns: list[str], rows: int = CHUNK_ROWS) -> Iterator[list[list]]:
    """The values of `columns` as Python lists, at most `rows` rows at a time, in row order.

    The Arrow files are read as streams, not through datasets' memory map: pages of a map
    stay resident once touched, so one pass over a big table would raise RSS by its size."""
    import pyarrow as pa

    files = [f["filename"] for f in dataset.cache_files]

    def batches() -> Iterator[Any]:
        if not files:  # an in-memory dataset
            yield from dataset.data.to_batches()
            return
        for name in files:
            with pa.OSFile(name) as f:
                yield from pa.ipc.open_stream(f)

    features = dataset.features  # decodes what Arrow stores encoded (mixed JSON as Json)
    for batch in batches():
        for start in range(0, batch.num_rows, rows):
            part = batch.slice(start, rows)
            yield [features.decode_column(part.column(c).to_pylist(), c) for c in columns]


def _load_with_datasets(p: Path, fmt: str, name: str) -> Any:
    # Offline for sure: these are local files; the variables must be set before the import.
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    _diagnose_structure(p, fmt, True, name)
    if fmt == "jsonl":
        builder, kwargs = "json", {}
    else:
        # Every cell a string; "NA", "null" or "" are texts, not missing values.
        builder = "csv"
        features = datasets.Features({c: datasets.Value("string") for c in _header(p, fmt)})
        kwargs = {
            "sep": "\t" if fmt == "tsv" else ",",
            "features": features,
            "keep_default_na": False,
            "na_filter": False,
        }
        if fmt == "tsv":
            kwargs["quoting"] = csv.QUOTE_NONE
    try:
        # What load_dataset does, minus opening the result as a memory-mapped Dataset: that
        # maps pages of the whole Arrow file in (RSS grows with the table). The Arrow files
        # it wrote are read as streams instead (iter_columns).
        b = datasets.load_dataset_builder(builder, data_files=str(p), **kwargs)
        b.download_and_prepare()
        table = _ArrowFiles.of(b)
        return table if table is not None else b.as_dataset(split="train")
    except Exception as e:  # pandas/arrow parse errors: find the line ourselves
        _diagnose_structure(p, fmt, False, name)
        first = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        raise DataError(f"cannot read as {fmt}: {first}", name) from None


class _ArrowFiles:
    """The train split a datasets builder prepared, as its Arrow files on disk: the part of
    the Dataset interface iter_columns and read_labelled use, with nothing mapped."""

    def __init__(self, files: list[str], features: Any, num_rows: int) -> None:
        self.cache_files = [{"filename": f} for f in files]
        self.features, self.num_rows = features, num_rows
        self.column_names = list(features)

    @classmethod
    def of(cls, builder: Any) -> _ArrowFiles | None:
        """None when the files are not laid out as expected (another datasets version):
        the caller then opens the Dataset the usual way."""
        split = (builder.info.splits or {}).get("train")
        features = builder.info.features
        if split is None or features is None:
            return None
        files = sorted(glob.glob(os.path.join(glob.escape(builder.cache_dir), "*-train*.arrow")))
        if not files or len(files) != len(split.shard_lengths or [0]):
            return None
        return cls(files, features, split.num_examples)


def _diagnose_structure(p: Path, fmt: str, quick: bool, name: str) -> None:
    """A Python pass over the file that raises DataError at the first malformed line.
    `quick` stops after the header (and the first record), for early column checks."""
    with p.open("rb") as raw:
        for _ in iter_records(raw, name, fmt, limit=2 if quick else None):
            pass


def _header(p: Path, fmt: str) -> list[str]:
    with p.open("rb") as raw:
        line = raw.readline().decode("utf-8", errors="replace")
    delim = "\t" if fmt == "tsv" else ","
    return next(
        csv.reader(
            [line], delimiter=delim, quoting=csv.QUOTE_NONE if fmt == "tsv" else csv.QUOTE_MINIMAL
        )
    )


def _iter_records(p: Path, fmt: str, limit: int | None = None) -> Iterator[tuple[int, Any]]:
    with p.open("rb") as raw:
        yield from iter_records(raw, str(p), fmt, limit=limit)


def _line_of_row(p: Path, fmt: str, row: int) -> int | None:
    for i, (line, _) in enumerate(_iter_records(p, fmt)):
        if i == row:
            return line
    return None


def _utf8_lines(raw: Iterable[bytes], name: str, errors: str = "strict") -> Iterator[str]:
    for n, b in enumerate(raw, 1):
        try:
            yield b.decode("utf-8", errors=errors)
        except UnicodeDecodeError as e:
            raise DataError(
                f"invalid UTF-8 at byte {e.start} of the line", name, n, e.start + 1
            ) from None


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
    lines = _utf8_lines(raw, name, encoding_errors)
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
    start, count = reader.line_num + 1, 0
    while limit is None or count < limit:
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
        yield start, dict(zip(header, row, strict=True))
        count += 1
        start = reader.line_num + 1


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
