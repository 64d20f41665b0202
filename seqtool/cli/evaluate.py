"""`seqtool eval MODEL DATA`: the right metric for whatever task the checkpoint holds.

Also `print_results`, which `seqtool inspect` shares: a command's tables are its result, so
they go to stdout.
"""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

import typer

from seqtool.cli._common import EncodingErrors, OutputClosed, Threads, format_option, write

_UNBOUNDED = 10_000  # what a renderable that fills any width measures at most


def _reader_gone() -> None:
    """`seqtool eval ... | head`: the reader went away, a normal end (exit 0)."""
    raise OutputClosed


def print_results(*items: Any) -> None:
    """Print a command's result on stdout: lines of text (a str is a heading, in italics on a
    terminal; a rich Text as styled) printed whole: never wrapped, so a path in them is never
    broken; and tables or other rich renderables.

    On a terminal rich fits tables to its width. Piped or redirected, rich writes no colour
    codes, and each table gets its natural width instead of rich's 80 columns, so nothing is
    squeezed or cut; COLUMNS still wins when set.
    """
    from rich.console import Console
    from rich.text import Text

    console = Console(highlight=False)
    console.on_broken_pipe = _reader_gone  # rich's own exits 1
    natural = not console.is_terminal and "COLUMNS" not in os.environ
    for item in items:
        if isinstance(item, str | Text):
            console.print(Text(item, "italic") if isinstance(item, str) else item, soft_wrap=True)
            continue
        if natural:
            widest = console.measure(item, options=console.options.update_width(_UNBOUNDED))
            # A renderable that fills whatever width it gets (a rule, an expanding table)
            # takes what stderr's console gets when redirected.
            console.width = widest.maximum if widest.maximum < _UNBOUNDED else 200
        console.print(item)


def eval_command(
    model: Annotated[
        str, typer.Argument(metavar="MODEL", help="A seqtool checkpoint (.safetensors).")
    ],
    data: Annotated[
        str,
        typer.Argument(metavar="FILE", help="Evaluation data in the task's format; - reads stdin."),
    ],
    fmt: Annotated[
        str,
        format_option("table (for people) | json (one object, for machines); both on stdout."),
    ] = "table",
    threads: Threads = 0,
    encoding_errors: EncodingErrors = "strict",
    text_column: Annotated[
        str | None,
        typer.Option(metavar="COLUMN", help="classifier: text column (default: as trained)."),
    ] = None,
    label_column: Annotated[
        str | None,
        typer.Option(metavar="COLUMN", help="classifier: label column (default: as trained)."),
    ] = None,
    tag_field: Annotated[
        str | None,
        typer.Option(metavar="FIELD", help="tagger: upos | xpos (default: as trained)."),
    ] = None,
    beam: Annotated[
        int | None, typer.Option(metavar="N", help="translator: beam size (default: 5).")
    ] = None,
) -> None:
    """Evaluate a checkpoint on held-out data with its task's metric.

    lm: nats/char, bits/char and perplexity (carried-state, every character predicted
    with all the text before it).

    Examples:

      seqtool eval my.safetensors dev.txt

      seqtool eval my.safetensors dev.txt > scores.txt

      seqtool eval my.safetensors dev.txt --format json | jq .bits_per_char
    """
    from seqtool import api
    from seqtool.errors import SeqtoolError

    if fmt not in ("table", "json"):
        raise SeqtoolError(f"--format must be table or json, not {fmt!r}")
    task_options = {
        k: v
        for k, v in dict(
            text_column=text_column, label_column=label_column, tag_field=tag_field, beam=beam
        ).items()
        if v is not None
    }
    metrics = api.evaluate(
        model, data, threads=threads, encoding_errors=encoding_errors, **task_options
    )
    if fmt == "json":
        write(json.dumps(metrics) + "\n", flush=True)
        return
    from rich.table import Table

    table = Table()
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in metrics.items():
        if isinstance(v, int | float):
            table.add_row(k, f"{v:.4f}" if isinstance(v, float) else str(v))
    # The paths head the table on a line of their own; tasks may add their own tables
    # (per-class scores, confusion matrix) from the metrics.
    print_results(f"{model} on {data}", table, *api.report(model, metrics))
