"""Labelled tables (CSV, TSV, JSONL) for the classifier.

Training data is loaded with `datasets` (local files only, never the network); when it fails
or a row is bad, a plain Python pass over the file finds the line to name in the error.
Prediction input is streamed with the `csv`/`json` modules so memory stays bounded.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqtool.data.text import check_input_path
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


def detect_format(path: str | Path, default: str = "csv") -> str:
    return _EXT.get(Path(str(path)).suffix.lower(), default)


@dataclass
class Labelled:
    texts: list[str]
    labels: list[str]
    path: str


def read_labelled(
    path: str | Path, text_column: str = "text", label_column: str = "label", fmt: str | None = None
) -> Labelled:
    """All (text, label) rows of a CSV/TSV/JSONL file, checked; DataError names the line."""
    p = check_input_path(path)
    fmt = fmt or detect_format(p)
    if fmt not in FORMATS:
        raise SeqtoolError(f"input format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    table = _load_with_datasets(p, fmt)
    columns = list(table.column_names)
    for role, col in (("text", text_column), ("label", label_column)):
        if col not in columns:
            raise DataError(
                f"no {role} column {col!r}; the columns are: {', '.join(map(repr, columns))} "
                f"(choose with --{role}-column)",
                str(p),
            )
    texts, labels = table[text_column], table[label_column]
    if not texts:
        raise DataError("no rows", str(p))
    for i, (t, y) in enumerate(zip(texts, labels, strict=True)):
        if t is None or not str(t).strip():
            raise DataError(
                f"empty text in column {text_column!r}", str(p), _line_of_row(p, fmt, i)
            )
        if y is None or not str(y).strip():
            raise DataError(
                f"empty label in column {label_column!r}", str(p), _line_of_row(p, fmt, i)
            )
    return Labelled([str(t) for t in texts], [str(y).strip() for y in labels], str(p))


def _load_with_datasets(p: Path, fmt: str) -> Any:
    # Offline for sure: these are local files; the variables must be set before the import.
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    _diagnose_structure(p, fmt, quick=True)
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
        return datasets.load_dataset(builder, data_files=str(p), split="train", **kwargs)
    except Exception as e:  # pandas/arrow parse errors: find the line ourselves
        _diagnose_structure(p, fmt, quick=False)
        first = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        raise DataError(f"cannot read as {fmt}: {first}", str(p)) from None


def _diagnose_structure(p: Path, fmt: str, quick: bool) -> None:
    """A Python pass over the file that raises DataError at the first malformed line.
    `quick` stops after the header (and the first record), for early column checks."""
    for _ in _iter_records(p, fmt, limit=2 if quick else None):
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


def _utf8_lines(raw: io.BufferedIOBase, name: str) -> Iterator[str]:
    for n, b in enumerate(raw, 1):
        try:
            yield b.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DataError(
                f"invalid UTF-8 at byte {e.start} of the line", name, n, e.start + 1
            ) from None


def iter_records(
    raw: io.BufferedIOBase, name: str, fmt: str, limit: int | None = None
) -> Iterator[tuple[int, Any]]:
    """Stream (line number, record) from a byte stream. CSV/TSV records are dicts keyed by the
    header; JSONL records are objects. Bad structure raises DataError with the line."""
    if fmt == "jsonl":
        yield from _iter_jsonl(raw, name, limit)
        return
    lines = _utf8_lines(raw, name)
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


def _iter_jsonl(raw: io.BufferedIOBase, name: str, limit: int | None) -> Iterator[tuple[int, Any]]:
    count = 0
    for n, line in enumerate(_utf8_lines(raw, name), 1):
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


def open_input(path: str | None) -> tuple[io.BufferedIOBase, str]:
    """A byte stream for a path, or stdin for None / '-'."""
    if path is None or path == "-":
        return sys.stdin.buffer, "<stdin>"
    return check_input_path(path).open("rb"), str(path)
