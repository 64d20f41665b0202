"""`seqtool eval MODEL DATA`: the right metric for whatever task the checkpoint holds."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from seqtool.cli._common import EncodingErrors, Threads, err_console, write


def eval_command(
    model: Annotated[str, typer.Argument(help="A seqtool checkpoint (.safetensors).")],
    data: Annotated[
        str, typer.Argument(help="Evaluation data in the task's format; - reads stdin.")
    ],
    fmt: Annotated[
        str, typer.Option("--format", help="table (stderr) | json (one object on stdout).")
    ] = "table",
    threads: Threads = 0,
    encoding_errors: EncodingErrors = "strict",
    text_column: Annotated[
        str | None, typer.Option(help="classifier: text column (default: as trained).")
    ] = None,
    label_column: Annotated[
        str | None, typer.Option(help="classifier: label column (default: as trained).")
    ] = None,
    tag_field: Annotated[
        str | None, typer.Option(help="tagger: upos | xpos (default: as trained).")
    ] = None,
    beam: Annotated[int | None, typer.Option(help="translator: beam size (default: 5).")] = None,
) -> None:
    """Evaluate a checkpoint on held-out data with its task's metric.

    lm: nats/char, bits/char and perplexity (carried-state, every character predicted
    with all the text before it).

    Examples:

      seqtool eval my.safetensors dev.txt

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

    table = Table(title=f"{model} on {data}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in metrics.items():
        if isinstance(v, int | float):
            table.add_row(k, f"{v:.4f}" if isinstance(v, float) else str(v))
    err_console().print(table)
    # Tasks may add their own tables (per-class scores, confusion matrix) from the metrics.
    for renderable in api.report(model, metrics):
        err_console().print(renderable)
