"""`seqtool inspect cells` from input to report: choose how the model reads the input, run the
statistics, rank the units, and resolve the --unit choices (cli/inspect.py prints the rest)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seqtool.errors import SeqtoolError
from seqtool.inspect import cells
from seqtool.inspect.cells_labels import LabelUnit, label_units, labelled_source
from seqtool.inspect.cells_probes import Probe

TABLES = (".csv", ".tsv", ".tab", ".jsonl", ".json", ".ndjson")
STATES = ("h", "c")
WARMUP = 1000  # the --warmup default


@dataclass
class Report:
    stats: cells.CellStats
    source: cells.Source
    ranked: list[cells.Ranked]
    label_units: list[LabelUnit] = field(default_factory=list)
    label_note: str = ""  # why no label unit, when a table was given
    model_accuracy: float | None = None
    seconds: float = 0.0


def parse_unit(spec: str) -> tuple[int, int, str, int]:
    """LAYER:UNIT[:STATE[:DIRECTION]] -> (layer, direction, state, unit); syntax only."""
    parts = spec.split(":")
    try:
        if not 2 <= len(parts) <= 4:
            raise ValueError
        layer, unit = int(parts[0]), int(parts[1])
        state = parts[2] if len(parts) > 2 else "h"
        direction = parts[3] if len(parts) > 3 else "forward"
        if state not in STATES or direction not in cells.DIRECTIONS or layer < 0 or unit < 0:
            raise ValueError
    except ValueError:
        raise SeqtoolError(
            f"--unit {spec!r}: expected LAYER:UNIT[:STATE[:DIRECTION]], e.g. 1:417:c "
            "(STATE h or c, DIRECTION forward or backward)"
        ) from None
    return layer, cells.DIRECTIONS.index(direction), state, unit


def check_units(rnn: Any, chosen: list[tuple[int, int, str, int]]) -> None:
    """The --unit choices against the encoder's fused module, before the long pass."""
    from seqtool.backbone.cells import cell_of

    layers, cell = rnn.num_layers, cell_of(rnn)
    for k, d, s, u in chosen:
        spec = f"--unit {k}:{u}:{s}" + (":backward" if d else "")
        if k >= layers:
            raise SeqtoolError(f"{spec}: the encoder has {layers} layer(s), numbered from 0")
        if d and not rnn.bidirectional:
            raise SeqtoolError(f"{spec}: the encoder is unidirectional")
        if s == "c" and cell != "lstm":
            raise SeqtoolError(f"{spec}: a {cell} has no cell state c (use h)")
        if u >= rnn.hidden_size:
            raise SeqtoolError(f"{spec}: units are numbered 0 to {rnn.hidden_size - 1}")


def is_table(path: str | None) -> bool:
    return path is not None and Path(path).suffix.lower() in TABLES


def run(
    model: Any,
    text: str,
    name: str,
    probes: list[Probe],
    top: int,
    show: int,
    streams: int = 0,
    warmup: int = WARMUP,
    table: str | None = None,
    status: Any = None,
    chosen: list[tuple[int, int, str, int]] = (),
) -> Report:
    """The whole analysis of `text` (or, for a classifier, of the labelled `table`)."""
    start = time.perf_counter()
    labelled = None
    if table is not None:
        if model.task != "classifier":
            raise SeqtoolError(
                f"{name}: a labelled table needs a classifier (this is a {model.task} model); "
                "give plain text instead"
            )
        labelled = labelled_source(model, table)
        source = labelled.source
    elif not text:
        raise SeqtoolError(f"{name}: nothing to inspect: the text is empty")
    elif model.task == "lm":
        source = cells.stream_source(model, text, name)
    else:
        source = cells.line_source(model, text)
    if not len(source.ends):
        raise SeqtoolError(f"{name}: nothing to inspect: the text has no tokens")
    if source.ids is None and (streams or warmup != WARMUP):
        raise SeqtoolError(
            f"--streams and --warmup apply to a language model; a {model.task} reads each "
            "line as one input"
        )
    check_units(source.rnn if source.rnn is not None else model.backbone.rnn.rnn, chosen)
    last = [start]

    def progress(done: int, n: int) -> None:
        now = time.perf_counter()
        if status is not None and now - last[0] >= 10:
            last[0] = now
            rate = done / (now - start)
            status(f"cells: {done:,}/{n:,} tokens ({rate:,.0f}/s, {(n - done) / rate:.0f} s left)")

    pool = getattr(getattr(model, "config", None), "pool", "last") if labelled else None
    stats = cells.correlate(model, source, probes, show, streams, warmup, pool, progress)
    report = Report(stats, source, cells.rank(stats, top))
    if labelled is not None:
        report.model_accuracy = labelled.model_accuracy
        report.label_units, report.label_note = label_units(stats, labelled, top)
    report.seconds = time.perf_counter() - start
    return report
