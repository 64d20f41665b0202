"""Input handling that `seqtool classify` and `seqtool pseudo-label` share: option checks,
tables opened and checked on their first record, records read in rounds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from seqtool.errors import SeqtoolError

IN_FORMATS = ("auto", "text", "csv", "tsv", "jsonl")


def check_run_options(input: str | None, input_format: str, batch_size: int, precision: str) -> str:
    """Check the options classify and pseudo-label share; return the input format (auto
    resolved: by extension, stdin is text). A named input must be a readable file."""
    from seqtool.data.tabular import detect_format

    if input_format not in IN_FORMATS:
        raise SeqtoolError(
            f"--input-format must be one of {', '.join(IN_FORMATS)}, not {input_format!r}"
        )
    if batch_size < 1:
        raise SeqtoolError("--batch-size must be >= 1")
    if precision not in ("fp32", "bf16"):
        raise SeqtoolError(f"--precision must be fp32 or bf16, not {precision!r}")
    if input is not None and input != "-":
        from seqtool.data.text import check_input_path

        check_input_path(input)
    if input_format == "auto":
        return "text" if input in (None, "-") else detect_format(input, default="text")
    return input_format


def open_table(
    path: str | None, fmt: str, column: str
) -> tuple[Iterator[tuple[int, Any]] | None, str, list[str]]:
    """(records or None for an empty table, input name, the first record's keys) of a
    CSV/TSV/JSONL input whose records must hold `column` (checked on the first)."""
    from seqtool.data.tabular import iter_records, open_input
    from seqtool.errors import DataError

    raw, name = open_input(path)
    records = iter_records(raw, name, fmt)
    first = next(records, None)
    if first is None:
        return None, name, []
    keys = list(first[1].keys())
    if fmt in ("csv", "tsv") and column not in keys:
        raise DataError(
            f"no text column {column!r}; the columns are: {', '.join(map(repr, keys))} "
            "(choose with --text-column)",
            name,
        )
    return _prepend(first, records), name, keys


def chunks(it: Iterator[Any], n: int) -> Iterator[list[Any]]:
    buf: list[Any] = []
    for x in it:
        buf.append(x)
        if len(buf) >= n:
            yield buf
            buf = []
    if buf:
        yield buf


def _prepend(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest
