"""`seqtool calibrate MODEL DEV...`: fit a classifier checkpoint's probability calibration."""

from __future__ import annotations

import json
from dataclasses import dataclass

from seqtool.cli import fields
from seqtool.cli._common import status, write
from seqtool.cli.options import run_command
from seqtool.config import opt

METHODS = ("length", "temperature")


@dataclass(frozen=True)
class CalibrateOptions:
    model: str = opt(help="A classifier checkpoint (.safetensors).", argument=True, metavar="MODEL")
    data: list[str] = opt(
        help="Labelled dev file(s) (CSV/TSV/JSONL), pooled for the fit; not training data.",
        argument=True,
        metavar="DEV...",
    )
    output: str | None = opt(
        None,
        "Write the calibrated model here (atomically) and leave MODEL as it is "
        "(default: update MODEL in place).",
        flags=("--output", "-o"),
        metavar="FILE",
    )
    method: str = opt(
        "length",
        "length: a temperature that depends on the text's length (log T = a + b log tokens), "
        "for models that read both short and long texts | temperature: one temperature.",
        metavar="METHOD",
    )
    fmt: str = fields.fmt("table", "table (for people) | json (one object, for machines).")
    text_column: str | None = opt(None, "Text column (default: as trained).", metavar="COLUMN")
    label_column: str | None = opt(None, "Label column (default: as trained).", metavar="COLUMN")
    threads: int = fields.threads(0)
    encoding_errors: str = fields.encoding_errors()


@run_command(CalibrateOptions)
def calibrate(o: CalibrateOptions) -> None:
    """Calibrate a classifier's probabilities on dev data: fit a temperature by NLL and store
    it in the checkpoint, so `classify`, `pseudo-label` and `eval` print scores that mean what
    they say (a score of 0.8 is right about 80 % of the time). Labels do not change.

    Training already does this on its --dev set(s); use it for older checkpoints, or to
    calibrate on other data. Fewer than 50 texts, or one class only: a warning, and T = 1.

    Examples:

      seqtool train classifier corpora/sentiment-sample.csv --steps 40 --threads 1 -o sent.safetensors

      seqtool calibrate sent.safetensors corpora/sentiment-behaviour.csv

      seqtool calibrate checkpoints/sentiment.safetensors corpora/sentiment-sample.csv corpora/sentiment-behaviour.csv -o calibrated.safetensors

      sed '1s/text,label/sentence,label/' corpora/sentiment-sample.csv > dev.csv

      seqtool calibrate sent.safetensors dev.csv --text-column sentence --method temperature
    """
    from seqtool import api
    from seqtool.errors import SeqtoolError

    if o.method not in METHODS:
        raise SeqtoolError(f"--method must be one of {', '.join(METHODS)}, not {o.method!r}")
    if o.fmt not in ("table", "json"):
        raise SeqtoolError(f"--format must be table or json, not {o.fmt!r}")
    options = {
        k: getattr(o, k) for k in ("text_column", "label_column") if getattr(o, k) is not None
    }
    result = api.calibrate(
        o.model, list(o.data), o.method, o.output, o.threads,
        encoding_errors=o.encoding_errors, **options,
    )  # fmt: skip
    if result["warning"]:
        status(f"warning: {result['warning']}; temperature 1 stored")
    status(f"wrote {result['output']}")
    if o.fmt == "json":
        write(json.dumps(result) + "\n", flush=True)
        return
    from rich.table import Table

    from seqtool.cli.evaluate import print_results

    table = Table()
    for col in ("dev set", "texts", "accuracy", "ECE before", "ECE after", "NLL before",
                "NLL after"):  # fmt: skip
        table.add_column(col, justify="left" if col == "dev set" else "right")
    for r in result["sets"]:
        table.add_row(
            r["set"], f"{r['examples']:,}", f"{r['accuracy']:.4f}", f"{r['ece_before']:.4f}",
            f"{r['ece_after']:.4f}", f"{r['nll_before']:.4f}", f"{r['nll_after']:.4f}",
        )  # fmt: skip
    print_results(f"{o.model}: calibration {result['previous']} -> {result['description']}", table)
