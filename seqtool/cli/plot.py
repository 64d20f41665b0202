"""`seqtool plot RUN...`: training curves of one or more runs (seqtool/plotting.py draws them)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from seqtool.cli import fields
from seqtool.cli._common import check_choice, status, write
from seqtool.cli.options import run_command
from seqtool.config import opt

FORMATS = ("auto", "png", "text", "json")


@dataclass(frozen=True)
class PlotOptions:
    runs: list[str] = opt(
        help="A trained model (its MODEL.run/ log is read), the .run folder, or its "
        "metrics.jsonl; several are overlaid.",
        argument=True,
        metavar="RUN",
    )
    output: str = opt(
        "curves.png", "The PNG to write.", flags=("--output", "-o"), metavar="FILE.png"
    )
    fmt: str = fields.fmt(
        "auto",
        "png (curves to --output, summary on stdout) | text (the summary only) | json (one "
        "summary object per run, on stdout) | auto (png when matplotlib is installed, else text).",
    )


@run_command(PlotOptions)
def plot(o: PlotOptions) -> None:
    """Draw training curves: train and dev loss and the task's main dev metric against steps
    and against training time, several runs overlaid, to a PNG; a summary table per run
    (steps, time, best dev metric and its step, final train loss) on stdout.

    The PNG needs matplotlib (pip install 'seqtool[plot]'); without it, or with --format
    text, only the summary is printed.

    Examples:

      seqtool train classifier corpora/sentiment-sample.csv --dev corpora/sentiment-behaviour.csv --steps 40 --threads 1 -o a.safetensors

      seqtool train classifier corpora/sentiment-sample.csv --dev corpora/sentiment-behaviour.csv --steps 40 --threads 1 --cell gru -o b.safetensors

      seqtool plot a.safetensors b.safetensors -o curves.png

      seqtool plot a.run --format text

      seqtool plot a.safetensors --format json | jq .best
    """
    from seqtool import plotting

    check_choice("--format", o.fmt, FORMATS)
    explicit = o.fmt == "png" or o.output != "curves.png"
    fmt = o.fmt
    if fmt == "auto":
        fmt = "png" if explicit or _has_matplotlib() else "text"
        if fmt == "text":
            from rich.markup import escape

            status(escape(f"matplotlib is not installed ({plotting.INSTALL}): summary only"))
    if fmt == "png":
        plotting.check_png(o.output)
    runs = [plotting.read_run(r) for r in o.runs]
    if fmt == "json":
        for run in runs:
            write(json.dumps(run.summary()) + "\n", flush=True)
        return
    if fmt == "png":
        plotting.draw(runs, o.output)
        status(f"wrote {o.output} ({len(runs)} run{'s' if len(runs) > 1 else ''})")
    _print_table(runs)


def _has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _print_table(runs: list[Any]) -> None:
    from rich.table import Table

    from seqtool.cli.evaluate import print_results
    from seqtool.plotting import duration

    table = Table()
    for name in ("run", "task", "steps", "time", "best dev", "at step", "final train loss"):
        table.add_column(name, justify="left" if name in ("run", "task", "best dev") else "right")
    for run in runs:
        s = run.summary()
        best = f"{s['metric']} {s['best']:.4g}" if s["best"] is not None else "no dev evaluation"
        loss = s["final_train_loss"]
        table.add_row(
            s["run"],
            s["task"] or "?",
            str(s["steps"]),
            duration(s["time_s"]),
            best,
            str(s["best_step"]) if s["best_step"] is not None else "-",
            f"{loss:.4f}" if loss is not None else "-",
        )
    notes = [f"{run.name}: warning: {w}" for run in runs for w in run.warnings]
    print_results(table, *notes)
