"""Parallel text for translation: a TSV of `source<TAB>target` lines, or two aligned files."""

from __future__ import annotations

from seqtool.data.text import iter_lines
from seqtool.errors import DataError, SeqtoolError


def read_tsv(path: str, encoding_errors: str = "strict") -> tuple[list[str], list[str]]:
    """Pairs from `source<TAB>target` lines; blank lines are skipped, a line without a tab is
    an error naming file:line. A target holding further tabs keeps them as spaces."""
    src, tgt = [], []
    name = "<stdin>" if path == "-" else path
    for n, line in enumerate(iter_lines(path, encoding_errors), 1):
        if not line.strip():
            continue
        s, sep, t = line.partition("\t")
        if not sep:
            raise DataError("expected `source<TAB>target`, found no tab", name, n)
        src.append(s.strip())
        tgt.append(t.replace("\t", " ").strip())
    if not src:
        raise SeqtoolError(f"{name}: no sentence pairs")
    return src, tgt


def read_parallel(
    source: str, target: str, encoding_errors: str = "strict"
) -> tuple[list[str], list[str]]:
    """Two line-aligned files (line i of one translates line i of the other)."""
    src = list(iter_lines(source, encoding_errors))
    tgt = list(iter_lines(target, encoding_errors))
    if len(src) != len(tgt):
        raise SeqtoolError(
            f"{source} has {len(src)} lines but {target} has {len(tgt)}; "
            "parallel files must be line-aligned"
        )
    pairs = [
        (s.strip(), t.strip()) for s, t in zip(src, tgt, strict=True) if s.strip() or t.strip()
    ]
    if not pairs:
        raise SeqtoolError(f"{source}: no sentence pairs")
    return [s for s, _ in pairs], [t for _, t in pairs]


def read_pairs(
    path: str | None = None,
    source: str | None = None,
    target: str | None = None,
    encoding_errors: str = "strict",
) -> tuple[list[str], list[str]]:
    """Either a TSV path or --source/--target files, never both."""
    if path is not None and (source or target):
        raise SeqtoolError("give either a TSV file or --source/--target, not both")
    if path is not None:
        return read_tsv(path, encoding_errors)
    if source and target:
        return read_parallel(source, target, encoding_errors)
    if source or target:
        raise SeqtoolError("--source and --target go together")
    raise SeqtoolError("give a TSV file of `source<TAB>target` lines, or --source and --target")
