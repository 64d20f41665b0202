"""`seqtool eval MODEL DATA`: the right metric for whatever task the checkpoint holds.

Also `print_results`, which `seqtool inspect` shares: a command's tables are its result, so
they go to stdout.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from seqtool.cli import fields
from seqtool.cli._common import OutputClosed, status, write
from seqtool.cli.options import run_command
from seqtool.config import opt

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


@dataclass(frozen=True)
class EvalOptions:
    model: str = opt(help="A seqtool checkpoint (.safetensors).", argument=True, metavar="MODEL")
    data: str = opt(
        help="Evaluation data in the task's format; - reads stdin.", argument=True, metavar="FILE"
    )
    fmt: str = fields.fmt(
        "table", "table (for people) | json (one object, for machines); both on stdout."
    )
    threads: int = fields.threads(0)
    device: str = fields.device()
    encoding_errors: str = fields.encoding_errors()
    text_column: str | None = opt(
        None, "classifier: text column (default: as trained).", metavar="COLUMN"
    )
    label_column: str | None = opt(
        None, "classifier: label column (default: as trained).", metavar="COLUMN"
    )
    tag_field: str | None = opt(None, "tagger: upos | xpos (default: as trained).", metavar="FIELD")
    beam: int | None = opt(None, "translator: beam size (default: 5).", metavar="N")
    plot: str | None = opt(
        None,
        "classifier: draw the reliability diagram (accuracy against confidence) to this PNG "
        "(needs matplotlib: pip install 'seqtool[plot]').",
        metavar="FILE.png",
    )


@run_command(EvalOptions)
def eval_command(o: EvalOptions) -> None:
    """Evaluate a checkpoint on held-out data with its task's metric.

    The metrics of each task (the first is the one training keeps the best checkpoint by):

      lm          nats_per_char, bits_per_char, perplexity, nats_per_token
      classifier  accuracy, macro_f1, ece, nll, brier; per-class P/R/F1, confusion
      tagger      accuracy, oov_accuracy (words unseen in training); per-tag P/R/F1
      translator  bleu, chrf (sacreBLEU), loss_teacher_forced, loss_free_running
      segmenter   words_f1, tokens_f1, sentences_f1; udeval's CoNLL 2018 scores

    The LM is scored with carried state: every character is predicted with all the text
    before it. The data is in the task's training format (text, CSV/TSV/JSONL, CoNLL-U, TSV
    pairs).

    Examples:

      seqtool eval checkpoints/sentiment.safetensors corpora/sentiment-sample.csv

      seqtool eval checkpoints/pos-en.safetensors corpora/pos-sample.conllu > scores.txt

      seqtool eval checkpoints/sentiment.safetensors corpora/sentiment-behaviour.csv --plot reliability.png

      seqtool eval checkpoints/lm-shakespeare.safetensors corpora/play-sample.txt --format json | jq .bits_per_char

      head -20 corpora/translation-sample.tsv > test.tsv

      seqtool eval checkpoints/translate-en-de.safetensors test.tsv --beam 1
    """
    from seqtool import api
    from seqtool.cli._progress import with_progress
    from seqtool.errors import SeqtoolError

    if o.fmt not in ("table", "json"):
        raise SeqtoolError(f"--format must be table or json, not {o.fmt!r}")
    if o.plot:
        from seqtool import plotting, reliability

        plotting.check_png(o.plot, "--plot")
        if api.load_header(o.model).task != "classifier":
            raise SeqtoolError("--plot draws a classifier's reliability diagram; "
                               f"{o.model} is not a classifier checkpoint")  # fmt: skip
    task_options = {
        k: getattr(o, k)
        for k in ("text_column", "label_column", "tag_field", "beam")
        if getattr(o, k) is not None
    }
    # Progress on stderr once it takes a few seconds (a big dev set, a beam search).
    metrics = with_progress(f"evaluating {o.model} on {o.data}", api.evaluate)(
        o.model,
        o.data,
        threads=o.threads,
        device=o.device,
        encoding_errors=o.encoding_errors,
        **task_options,
    )
    if o.plot:
        title = f"{os.path.basename(o.model)} on {os.path.basename(o.data)}"
        reliability.draw(metrics["reliability"], o.plot, title, metrics["ece"])
        status(f"wrote {o.plot}")
    if o.fmt == "json":
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
    print_results(f"{o.model} on {o.data}", table, *api.report(o.model, metrics))
