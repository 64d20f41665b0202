"""`seqtool classify`: label texts with the (bi)LSTM text classifier (`seqtool train
classifier` is generated from the task's options, cli/options.py)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from seqtool.cli import fields
from seqtool.cli._common import check_encoding_errors, status
from seqtool.cli._tables import check_run_options, open_records, open_table
from seqtool.cli.options import run_command
from seqtool.config import opt
from seqtool.errors import SeqtoolError

if TYPE_CHECKING:
    from seqtool.data.stream import Lines

OUT_FORMATS = ("auto", "text", "csv", "tsv", "jsonl")


@dataclass(frozen=True)
class ClassifyOptions:
    input: str | None = fields.table_file(
        "Text lines, or a CSV/TSV/JSONL file (by extension)", "--text-column or --format csv|tsv"
    )
    model: str | None = fields.model(
        "Classifier checkpoint (default: the shipped sentiment model)."
    )
    fmt: str = fields.fmt(
        "auto",
        "auto (as the input: text lines get label<TAB>score) | text | csv | tsv | jsonl (all "
        "class probabilities).",
    )
    input_format: str = fields.table_input_format()
    text_column: str | None = opt(
        None,
        "Column/key with the text (default: the model's, usually 'text'); tables only.",
        metavar="NAME",
    )
    output: str | None = fields.output()
    batch_size: int = fields.batch_size(
        256, "Texts per forward pass (a live feed is answered as soon as it pauses)."
    )
    threads: int = fields.threads()
    precision: str = fields.precision()
    device: str = fields.device()
    encoding_errors: str = fields.encoding_errors()


@run_command(ClassifyOptions)
def classify(o: ClassifyOptions) -> None:
    """Label texts with a classifier, streamed in batches (bounded memory on any input size).

    CSV/TSV in: the same table out with `label` and `score` (probability of the chosen label)
    appended (`predicted_label`/`predicted_score` when those names exist). Plain lines in: one
    `label<TAB>score` per line, in order. --format jsonl adds all class probabilities.

    Examples:

      seqtool classify corpora/sentiment-sample.csv > labelled.csv

      printf 'a warm and funny film\\nflat, dull and far too long\\n' | seqtool classify

      cat corpora/sentiment-sample.csv | seqtool classify --text-column text   # a table option: stdin is a table

      seqtool classify corpora/sentiment-sample.csv --format jsonl | jq .label

      sed '1s/text,label/tweet,label/' corpora/sentiment-sample.csv > tweets.csv

      seqtool classify -m checkpoints/sentiment.safetensors tweets.csv --text-column tweet -o out.csv

      seqtool classify corpora/sentiment-sample.csv --batch-size 256 --threads 1 > labelled.csv
    """
    from seqtool import api, paths
    from seqtool.data.atomic import open_output
    from seqtool.training import runtime

    if o.fmt not in OUT_FORMATS:
        raise SeqtoolError(f"--format must be one of {', '.join(OUT_FORMATS)}, not {o.fmt!r}")
    check_encoding_errors(o.encoding_errors)
    # Options only a table can use make stdin a table (its format sniffed from the first line).
    table_option = None
    if o.text_column is not None:
        table_option = "--text-column"
    elif o.fmt in ("csv", "tsv"):
        table_option = f"--format {o.fmt}"
    input_format = check_run_options(
        o.input, o.input_format, o.batch_size, o.precision, table_option
    )
    lines, input_format, sniffed = open_records(o.input, input_format)
    out_fmt = o.fmt
    if out_fmt == "auto":
        out_fmt = {"text": "text", "csv": "csv", "tsv": "tsv", "jsonl": "jsonl"}[input_format]
    if out_fmt in ("csv", "tsv") and input_format not in ("csv", "tsv"):
        raise SeqtoolError(
            f"--format {out_fmt} needs CSV/TSV input; use text or jsonl for {input_format} input"
        )
    runtime.set_threads(o.threads)
    model = o.model or str(paths.default_model("classifier"))
    clf = api.load(model, "classifier", "classify", o.device)
    col = o.text_column or clf.text_column
    device = next(clf.parameters()).device
    with open_output(o.output, newline="") as out, runtime.autocast(device, o.precision, clf):
        _classify_stream(
            clf, lines, input_format, out_fmt, col, o.batch_size, o.encoding_errors, out, sniffed
        )
    lines.close()
    if o.output:
        status(f"wrote {o.output}")


def _classify_stream(
    clf: Any,
    lines: Lines,
    in_fmt: str,
    out_fmt: str,
    column: str,
    batch_size: int,
    encoding_errors: str,
    out: Any,
    sniffed: bool = False,
) -> None:
    from seqtool.data.stream import batched
    from seqtool.data.text import decode_lines
    from seqtool.errors import DataError

    labels = clf.labels
    chunk = max(batch_size * 8, 1024)  # rows read per round: sorted by length inside, then restored
    header: list[str] | None = None
    label_key, score_key = "label", "score"
    if in_fmt == "text":
        records: Iterator[tuple[int, Any]] = enumerate(
            decode_lines(lines, lines.name, encoding_errors), 1
        )

        def text_of(rec: Any, line: int) -> str:
            return rec
    else:
        table, name, keys = open_table(lines, in_fmt, column, encoding_errors, sniffed)
        if table is None:
            return
        records = table
        if in_fmt in ("csv", "tsv"):
            header = keys
            if "label" in header or "score" in header:
                label_key, score_key = "predicted_label", "predicted_score"

        def text_of(rec: Any, line: int) -> str:
            value = rec.get(column)
            if value is None:
                keys = ", ".join(map(repr, rec)) or "none"
                raise DataError(
                    f"no text key {column!r} (keys: {keys}; choose with --text-column)", name, line
                )
            return str(value)

    writer = _writer(out_fmt, in_fmt, header, label_key, score_key, labels)
    wrote_header = False
    blank = 0

    def process(rows: list[tuple[int, Any]]) -> None:
        nonlocal wrote_header, blank
        texts = [text_of(rec, line) for line, rec in rows]
        # Blank in, blank out: an empty text gets no invented label.
        full = [i for i, t in enumerate(texts) if t.strip()]
        preds: list[Any] = [None] * len(texts)
        for i, pred in zip(full, clf.predict([texts[i] for i in full], batch_size), strict=True):
            preds[i] = pred
        blank += len(texts) - len(full)
        buf = io.StringIO()
        if not wrote_header and header is not None and out_fmt in ("csv", "tsv"):
            writer(buf, None, header + [label_key, score_key], None)
            wrote_header = True
        for (_, rec), text, pred in zip(rows, texts, preds, strict=True):
            writer(buf, rec, text, pred)
        out.write(buf.getvalue())
        out.flush()  # per round, so pipelines see results as they come

    # Rounds of `chunk` rows; a live feed that stalls gets what it has sent so far.
    batched(records, chunk, process, lines)
    if blank:
        status(f"{blank:,} blank text{'s' if blank > 1 else ''} left unlabelled")


def _writer(
    out_fmt: str,
    in_fmt: str,
    header: list[str] | None,
    label_key: str,
    score_key: str,
    labels: list[str],
) -> Callable[[io.StringIO, Any, Any, Any], None]:
    if out_fmt == "text":

        def w(buf: io.StringIO, rec: Any, text: Any, pred: Any) -> None:
            buf.write(f"{pred[0]}\t{pred[1]:.4f}\n" if pred else "\n")

        return w
    if out_fmt == "jsonl":

        def w(buf: io.StringIO, rec: Any, text: Any, pred: Any) -> None:
            obj = dict(rec) if isinstance(rec, dict) else {"text": text}
            lk = label_key if label_key not in obj or in_fmt != "jsonl" else "predicted_label"
            sk = score_key if lk == label_key else "predicted_score"
            obj[lk] = pred[0] if pred else None
            obj[sk] = round(pred[1], 6) if pred else None
            obj["probs"] = (
                {name: round(p, 6) for name, p in zip(labels, pred[2], strict=True)}
                if pred
                else None
            )
            buf.write(json.dumps(obj, ensure_ascii=False) + "\n")

        return w
    if out_fmt == "tsv":

        def w(buf: io.StringIO, rec: Any, text: Any, pred: Any) -> None:
            if rec is None:  # the header row
                buf.write("\t".join(text) + "\n")
                return
            buf.write("\t".join([*rec.values(), *_cells(pred)]) + "\n")

        return w

    def w(buf: io.StringIO, rec: Any, text: Any, pred: Any) -> None:
        cw = csv.writer(buf, lineterminator="\n")
        if rec is None:
            cw.writerow(text)
            return
        cw.writerow([*rec.values(), *_cells(pred)])

    return w


def _cells(pred: Any) -> list[str]:
    """A table's label and score cells; empty for a blank text."""
    return [pred[0], f"{pred[1]:.4f}"] if pred else ["", ""]
