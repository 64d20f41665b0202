"""Input handling that `seqtool classify` and `seqtool pseudo-label` share: option checks,
the input format (by extension; stdin by its first line when a table option asks for a
table), tables opened and checked on their first record, records read in rounds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from seqtool.errors import SeqtoolError

if TYPE_CHECKING:
    from seqtool.data.stream import Lines

IN_FORMATS = ("auto", "text", "csv", "tsv", "jsonl")

TABLE = "table"  # stdin that must be a table: CSV, TSV or JSONL as its first line says


def check_run_options(
    input: str | None,
    input_format: str,
    batch_size: int,
    precision: str,
    table_option: str | None = None,
) -> str:
    """Check the options classify and pseudo-label share; return the input format: auto
    resolved by extension, stdin is text unless `table_option` (the first option given that
    only a table can use, e.g. '--text-column') makes it TABLE, sniffed when opened. A table
    option on text input is an error, never ignored. A named input must be a readable file."""
    from seqtool.data.tabular import detect_format

    if input_format not in IN_FORMATS:
        raise SeqtoolError(
            f"--input-format must be one of {', '.join(IN_FORMATS)}, not {input_format!r}"
        )
    if batch_size < 1:
        raise SeqtoolError("--batch-size must be >= 1")
    check_precision(precision)
    stdin = input in (None, "-")
    if not stdin:
        from seqtool.data.text import check_input_path

        check_input_path(input)  # type: ignore[arg-type]
    fmt = input_format
    if fmt == "auto":
        fmt = (TABLE if table_option else "text") if stdin else detect_format(input, "text")  # type: ignore[arg-type]
    if fmt == "text" and table_option:
        why = (
            "--input-format text"
            if input_format == "text"
            else f"{input} is read as text lines by its extension"
        )
        raise SeqtoolError(
            f"{table_option} applies to CSV/TSV/JSONL input, not text lines ({why}; "
            "choose with --input-format csv|tsv|jsonl)"
        )
    return fmt


def check_precision(precision: str) -> None:
    if precision not in ("fp32", "bf16"):
        raise SeqtoolError(f"--precision must be fp32 or bf16, not {precision!r}")


def open_records(input: str | None, fmt: str) -> tuple[Lines, str, bool]:
    """(the input's lines, its format, whether the format was sniffed): TABLE is resolved
    from stdin's first line (a JSON object: jsonl; a tab: tsv; else csv)."""
    from seqtool.data.stream import open_lines
    from seqtool.data.tabular import sniff_format

    lines = open_lines(input)
    if fmt != TABLE:
        return lines, fmt, False
    return lines, sniff_format(lines.peek()), True


def open_table(
    path: str | None | Lines,
    fmt: str,
    column: str,
    encoding_errors: str = "strict",
    sniffed: bool = False,
) -> tuple[Iterator[tuple[int, Any]] | None, str, list[str]]:
    """(records or None for an empty table, input name, the first record's keys) of a
    CSV/TSV/JSONL input whose records must hold `column` (checked on the first)."""
    from seqtool.data.stream import Lines, open_lines
    from seqtool.data.tabular import iter_records
    from seqtool.errors import DataError

    lines = path if isinstance(path, Lines) else open_lines(path)
    name = lines.name
    records = iter_records(lines, name, fmt, encoding_errors=encoding_errors)
    first = next(records, None)
    if first is None:
        return None, name, []
    keys = list(first[1].keys())
    if fmt in ("csv", "tsv") and column not in keys:
        how = (
            f"; read as {fmt.upper()} from its first line, or set --input-format" if sniffed else ""
        )
        raise DataError(
            f"no text column {column!r}; the columns are: {', '.join(map(repr, keys))} "
            f"(choose with --text-column{how})",
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
