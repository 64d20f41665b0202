"""`seqtool train classifier` and `seqtool classify`: the (bi)LSTM text classifier."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from seqtool.cli._common import err_console, status, training_command
from seqtool.errors import SeqtoolError

IN_FORMATS = ("auto", "text", "csv", "tsv", "jsonl")
OUT_FORMATS = ("auto", "text", "csv", "tsv", "jsonl")


@training_command(
    cell="lstm",
    layers=1,
    hidden=128,
    embedding_dim=128,
    dropout=0.0,
    embedding_dropout=0.1,
    bidirectional=True,
)
def train(
    files: Annotated[
        list[str],
        typer.Argument(help="Labelled CSV/TSV/JSONL file(s) (columns text,label by default)."),
    ],
    dev: Annotated[
        list[str] | None,
        typer.Option(
            help="Dev file(s) for evaluation; repeat for several (each also reported alone)."
        ),
    ] = None,
    dev_fraction: Annotated[
        float,
        typer.Option(
            help="Hold out this random fraction of the training rows when --dev is not given "
            "(0: none)."
        ),
    ] = 0.05,
    select: Annotated[
        str,
        typer.Option(
            help="With several --dev sets, keep the checkpoint with the best mean of their "
            "accuracies (mean: each set counts the same) or the best accuracy over all their "
            "rows together (pooled: a big set outweighs a small one)."
        ),
    ] = "mean",
    text_column: Annotated[
        str, typer.Option(help="Column (CSV/TSV header or JSON key) holding the text.")
    ] = "text",
    label_column: Annotated[
        str, typer.Option(help="Column holding the label (any strings; two or more classes).")
    ] = "label",
    score_column: Annotated[
        str | None,
        typer.Option(
            help="Learn soft targets: this column (in [0, 1], as `pseudo-label` writes it) is "
            "the probability the row's label should get, the rest spread over the other "
            "labels (distillation from a teacher). Files without the column train on their "
            "labels as certain."
        ),
    ] = None,
    tokenizer: Annotated[
        str,
        typer.Option(
            help="unigram | bpe | char (trained on the training texts) or a tokenizer file "
            "from `seqtool tokenize train`."
        ),
    ] = "unigram",
    vocab_size: Annotated[int, typer.Option(help="Vocabulary size for unigram/bpe.")] = 16000,
    tokenizer_sample: Annotated[
        int,
        typer.Option(
            help="unigram/bpe learn from at most this many characters of training text "
            "(every k-th row; bounds memory on big tables); 0: all rows."
        ),
    ] = 10_000_000,
    pool: Annotated[
        str,
        typer.Option(help="last (final forward+backward states) | max | mean (over real tokens)."),
    ] = "last",
    head_dropout: Annotated[float, typer.Option(help="Dropout before the output layer.")] = 0.3,
    max_length: Annotated[
        int,
        typer.Option(
            help="Tokens kept per text: the first quarter and the last three quarters (0: all)."
        ),
    ] = 256,
    max_tokens: Annotated[
        int,
        typer.Option(
            help="Cap tokens per batch (longest x count); 0: --batch-size texts per batch."
        ),
    ] = 0,
    lowercase: Annotated[
        bool, typer.Option("--lowercase", help="Fold case before tokenizing (stored in the model).")
    ] = False,
    normalize: Annotated[
        bool,
        typer.Option(
            "--normalize",
            help="Split punctuation and clitics off words (don't -> do n't) and drop <br /> "
            "before tokenizing, so raw and PTB-tokenized texts share word forms (stored in "
            "the model).",
        ),
    ] = False,
    ngrams: Annotated[
        int,
        typer.Option(
            help="Add a fastText-style bag of hashed token n-grams up to this order beside the "
            "recurrent backbone (2: tokens and token pairs; 0: none). It reads the whole text, "
            "learns on its own loss, and its log-probabilities are averaged with the "
            "backbone's: an ensemble in one model that costs little time.",
        ),
    ] = 0,
    ngram_buckets: Annotated[
        int, typer.Option(help="Hash buckets for the n-grams of --ngrams (rows of its table).")
    ] = 262_144,
    ngram_dim: Annotated[int, typer.Option(help="Vector size of the --ngrams bag.")] = 8,
    init_from: Annotated[
        list[str] | None,
        typer.Option(
            help="Start embedding + recurrent layers from this LM checkpoint (its tokenizer "
            "and sizes are used). Give it twice, a forward LM and a `train lm --reverse` one, "
            "to start each direction from its own LM."
        ),
    ] = None,
    *,
    train_cfg=None,
    backbone=None,
    run=None,
) -> None:
    """Train a text classifier (bidirectional LSTM by default) on labelled CSV/TSV/JSONL.

    Examples:

      seqtool train classifier reviews.csv --dev dev.csv -o sent.safetensors

      seqtool train classifier data.tsv --text-column sentence --label-column topic --pool max

      seqtool train classifier train.csv --dev dev.csv --max-length 256 --precision bf16 --threads 1

      seqtool train lm reviews.txt --tokenizer tok.model -o lm.safetensors

      seqtool train classifier train.csv --dev dev.csv --init-from lm.safetensors

      seqtool train classifier reviews.csv --dev dev.csv --pool max --ngrams 2

      seqtool train classifier train.csv --dev dev.csv --init-from fwd.safetensors --init-from bwd.safetensors
    """
    from seqtool import api

    summary = api.train(
        "classifier",
        run["output"],
        train_cfg,
        resume=run["resume"],
        save_dtype=run["save_dtype"],
        console=err_console(),
        files=files,
        backbone=backbone,
        dev=dev,
        dev_fraction=dev_fraction,
        select=select,
        score_column=score_column,
        text_column=text_column,
        label_column=label_column,
        tokenizer=tokenizer,
        vocab_size=vocab_size,
        tokenizer_sample=tokenizer_sample,
        pool=pool,
        head_dropout=head_dropout,
        max_length=max_length,
        max_tokens=max_tokens,
        lowercase=lowercase,
        normalize=normalize,
        ngrams=ngrams,
        ngram_buckets=ngram_buckets,
        ngram_dim=ngram_dim,
        init_from=init_from,
    )
    best = {k: v for k, v in summary["best"].items() if isinstance(v, int | float)}
    detail = "  ".join(f"{k} {v:.4g}" for k, v in best.items()) if best else "no dev data"
    status(
        f"saved {summary['output']} after {summary['steps']} steps in "
        f"{summary['elapsed_s'] / 60:.1f} min ({summary['stopped']}); best dev: {detail}"
    )


def classify(
    input: Annotated[
        str | None,
        typer.Argument(
            help="Text lines, or a CSV/TSV/JSONL file (by extension); - or none reads stdin."
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="Classifier checkpoint (default: the shipped English sentiment model).",
        ),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="auto (as the input: text lines get label<TAB>score) | text | csv | tsv | "
            "jsonl (all class probabilities).",
        ),
    ] = "auto",
    input_format: Annotated[
        str, typer.Option(help="auto (by extension; stdin: text) | text | csv | tsv | jsonl.")
    ] = "auto",
    text_column: Annotated[
        str | None,
        typer.Option(help="Column/key with the text (default: the model's, usually 'text')."),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", help="Write to this file (atomically) instead of stdout."),
    ] = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", "-b", help="Texts per forward pass.")
    ] = 256,
    threads: Annotated[int, typer.Option(help="CPU threads (0: torch's default).")] = 1,
    precision: Annotated[
        str,
        typer.Option(help="fp32 | bf16 (autocast: ~1.6x faster on CPUs with native bf16)."),
    ] = "fp32",
    encoding_errors: Annotated[
        str, typer.Option(help="text input: strict | replace | ignore for non-UTF-8.")
    ] = "strict",
) -> None:
    """Label texts with a classifier, streamed in batches (bounded memory on any input size).

    CSV/TSV in: the same table out with `label` and `score` (probability of the chosen label)
    appended (`predicted_label`/`predicted_score` when those names exist). Plain lines in: one
    `label<TAB>score` per line, in order. --format jsonl adds all class probabilities.

    Examples:

      seqtool classify reviews.csv > labelled.csv

      cat lines.txt | seqtool classify

      seqtool classify reviews.csv --format jsonl | jq .label

      seqtool classify -m sent.safetensors tweets.tsv --text-column tweet -o out.tsv

      seqtool classify big.csv --precision bf16 > labelled.csv
    """
    from seqtool import api, paths
    from seqtool.training import runtime

    if fmt not in OUT_FORMATS:
        raise SeqtoolError(f"--format must be one of {', '.join(OUT_FORMATS)}, not {fmt!r}")
    input_format = _check_run_options(input, input_format, batch_size, precision)
    out_fmt = fmt
    if out_fmt == "auto":
        out_fmt = {"text": "text", "csv": "csv", "tsv": "tsv", "jsonl": "jsonl"}[input_format]
    if out_fmt in ("csv", "tsv") and input_format not in ("csv", "tsv"):
        raise SeqtoolError(
            f"--format {out_fmt} needs CSV/TSV input; use text or jsonl for {input_format} input"
        )
    runtime.set_threads(threads)
    clf = api.load(model or str(paths.default_model("classifier")), "classifier", "classify")
    col = text_column or clf.text_column
    sink = _AtomicFile(output) if output else None
    out = sink.stream if sink else sys.stdout
    device = next(clf.parameters()).device
    try:
        with runtime.autocast(device, precision):
            _classify_stream(
                clf, input, input_format, out_fmt, col, batch_size, encoding_errors, out
            )
    except BaseException:
        if sink:
            sink.discard()
        raise
    if sink:
        sink.commit()
        status(f"wrote {output}")


def _check_run_options(
    input: str | None, input_format: str, batch_size: int, precision: str
) -> str:
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


def _open_table(
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


class _AtomicFile:
    """Text output to a temp file beside the target, renamed into place on success."""

    def __init__(self, path: str) -> None:
        import tempfile

        p = Path(path)
        if p.is_dir():
            raise SeqtoolError(f"{p}: is a directory")
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent or ".")
        self.path, self.tmp = p, Path(tmp)
        self.stream = open(fd, "w", encoding="utf-8", newline="")  # noqa: SIM115 (closed in commit/discard)

    def commit(self) -> None:
        import os

        self.stream.flush()
        os.fsync(self.stream.fileno())
        self.stream.close()
        os.replace(self.tmp, self.path)

    def discard(self) -> None:
        self.stream.close()
        self.tmp.unlink(missing_ok=True)


def _chunks(it: Iterator[Any], n: int) -> Iterator[list[Any]]:
    buf: list[Any] = []
    for x in it:
        buf.append(x)
        if len(buf) >= n:
            yield buf
            buf = []
    if buf:
        yield buf


def _classify_stream(
    clf: Any,
    path: str | None,
    in_fmt: str,
    out_fmt: str,
    column: str,
    batch_size: int,
    encoding_errors: str,
    out: Any,
) -> None:
    from seqtool.data.text import iter_lines
    from seqtool.errors import DataError

    labels = clf.labels
    chunk = max(batch_size * 8, 1024)  # rows read per round: sorted by length inside, then restored
    header: list[str] | None = None
    label_key, score_key = "label", "score"
    if in_fmt == "text":
        records: Iterator[tuple[int, Any]] = enumerate(iter_lines(path, encoding_errors), 1)

        def text_of(rec: Any, line: int) -> str:
            return rec
    else:
        table, name, keys = _open_table(path, in_fmt, column)
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
    for rows in _chunks(records, chunk):
        texts = [text_of(rec, line) for line, rec in rows]
        preds = clf.predict(texts, batch_size)
        buf = io.StringIO()
        if not wrote_header and header is not None and out_fmt in ("csv", "tsv"):
            writer(buf, None, header + [label_key, score_key], None)
            wrote_header = True
        for (_, rec), text, pred in zip(rows, texts, preds, strict=True):
            writer(buf, rec, text, pred)
        out.write(buf.getvalue())
        out.flush()  # per batch, so pipelines see results as they come


def _prepend(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest


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
            buf.write(f"{pred[0]}\t{pred[1]:.4f}\n")

        return w
    if out_fmt == "jsonl":

        def w(buf: io.StringIO, rec: Any, text: Any, pred: Any) -> None:
            obj = dict(rec) if isinstance(rec, dict) else {"text": text}
            lk = label_key if label_key not in obj or in_fmt != "jsonl" else "predicted_label"
            sk = score_key if lk == label_key else "predicted_score"
            obj[lk] = pred[0]
            obj[sk] = round(pred[1], 6)
            obj["probs"] = {name: round(p, 6) for name, p in zip(labels, pred[2], strict=True)}
            buf.write(json.dumps(obj, ensure_ascii=False) + "\n")

        return w
    if out_fmt == "tsv":

        def w(buf: io.StringIO, rec: Any, text: Any, pred: Any) -> None:
            if rec is None:  # the header row
                buf.write("\t".join(text) + "\n")
                return
            buf.write("\t".join([*rec.values(), pred[0], f"{pred[1]:.4f}"]) + "\n")

        return w

    def w(buf: io.StringIO, rec: Any, text: Any, pred: Any) -> None:
        cw = csv.writer(buf, lineterminator="\n")
        if rec is None:
            cw.writerow(text)
            return
        cw.writerow([*rec.values(), pred[0], f"{pred[1]:.4f}"])

    return w


def pseudo_label(
    input: Annotated[
        str | None,
        typer.Argument(
            help="Documents: a CSV/TSV/JSONL table (by extension) or text lines; - or none reads "
            "stdin."
        ),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            help="The teacher classifier (default: the shipped sentiment model); repeat for an "
            "ensemble whose class probabilities are averaged.",
        ),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", help="Write the CSV here (atomically) instead of stdout."),
    ] = None,
    min_score: Annotated[
        float, typer.Option(help="Keep units the teacher labels with at least this probability.")
    ] = 0.9,
    sentences: Annotated[
        bool,
        typer.Option(
            "--sentences/--whole", help="Cut each document into sentences, or label it whole."
        ),
    ] = True,
    min_words: Annotated[int, typer.Option(help="Drop units of fewer words.")] = 4,
    max_words: Annotated[int, typer.Option(help="Drop units of more words (0: no limit).")] = 60,
    text_column: Annotated[
        str, typer.Option(help="Column/key with the document text (tables).")
    ] = "text",
    label_column: Annotated[
        str | None,
        typer.Option(
            help="Column/key with the document's label: a unit is kept only where the teacher "
            "agrees with it (default: 'label' when the table has it; none for text lines)."
        ),
    ] = None,
    veto: Annotated[
        bool,
        typer.Option(
            "--veto/--no-veto",
            help="Drop units whose teacher label differs from their document's label, or keep "
            "them with the teacher's label (for distillation: all units with the teacher's "
            "scores, `--no-veto --min-score 0`, then `train classifier --score-column score`).",
        ),
    ] = True,
    normalize: Annotated[
        bool,
        typer.Option(
            "--normalize",
            help="Write units with punctuation and clitics split off (don't -> do n't), as "
            "PTB-tokenized corpora such as SST-2 are.",
        ),
    ] = False,
    lowercase: Annotated[bool, typer.Option("--lowercase", help="Write units lowercased.")] = False,
    input_format: Annotated[
        str, typer.Option(help="auto (by extension; stdin: text) | text | csv | tsv | jsonl.")
    ] = "auto",
    batch_size: Annotated[
        int, typer.Option("--batch-size", "-b", help="Units per forward pass.")
    ] = 256,
    threads: Annotated[int, typer.Option(help="CPU threads (0: torch's default).")] = 1,
    precision: Annotated[str, typer.Option(help="fp32 | bf16 (autocast).")] = "fp32",
) -> None:
    """Sentence-level training data from labelled documents, labelled by a teacher model.

    Each document is cut into sentences; the teacher labels each one, and a sentence is kept
    (a CSV row text,label,score) when its score is at least --min-score and, for a table with
    a label column, the teacher agrees with the document's label. Reviews labelled as wholes
    so become sentences labelled one by one, with the neutral ones (plot summary) left out:
    extra training data for a classifier of short texts.

    Examples:

      seqtool pseudo-label imdb_train.csv -o imdb_sentences.csv

      seqtool pseudo-label reviews.csv -m a.safetensors -m b.safetensors --min-score 0.95 --normalize --lowercase

      seqtool train classifier sst2_train.csv imdb_sentences.csv imdb_train.csv --dev sst2_dev.csv

      cat unlabelled.txt | seqtool pseudo-label --whole > self_trained.csv

      seqtool pseudo-label reviews.csv --no-veto --min-score 0 -o soft.csv   # then: train classifier ... soft.csv --score-column score
    """
    from seqtool import api, paths
    from seqtool.data.text import iter_lines
    from seqtool.errors import DataError
    from seqtool.tasks.classifier import Ensemble, PseudoLabelStats
    from seqtool.tasks.classifier import pseudo_label as label_units
    from seqtool.training import runtime

    if not 0.0 <= min_score <= 1.0:
        raise SeqtoolError(f"--min-score must be in [0, 1], not {min_score}")
    if min_words < 1 or max_words < 0:
        raise SeqtoolError("--min-words must be >= 1 and --max-words >= 0")
    input_format = _check_run_options(input, input_format, batch_size, precision)
    if input_format == "text" and label_column:
        raise SeqtoolError("--label-column needs a CSV/TSV/JSONL table, not text lines")
    runtime.set_threads(threads)
    teacher = Ensemble(
        [
            api.load(m, "classifier", "pseudo-label")
            for m in model or [str(paths.default_model("classifier"))]
        ]
    )
    known = set(teacher.labels)
    name = "<stdin>" if input in (None, "-") else input
    label_key: str | None = None
    if input_format == "text":
        records: Iterator[tuple[int, Any]] = (
            (n, {text_column: t}) for n, t in enumerate(iter_lines(input), 1)
        )
    else:
        table, name, keys = _open_table(input, input_format, text_column)
        if table is None:
            raise DataError("no documents (an empty table)", name)
        records = table
        if label_column is not None and label_column not in keys:
            raise DataError(
                f"no label column {label_column!r}; the columns are: {', '.join(map(repr, keys))}",
                name,
            )
        label_key = label_column or ("label" if "label" in keys else None)

    def field(rec: dict, key: str, line: int) -> str:
        value = rec.get(key)
        if value is None:
            raise DataError(f"no key {key!r} in this record", name, line)
        return str(value)

    sink = _AtomicFile(output) if output else None
    out = sink.stream if sink else sys.stdout
    stats = PseudoLabelStats()
    device = next(teacher.models[0].parameters()).device
    try:
        out.write("text,label,score\n")
        with runtime.autocast(device, precision):
            for rows in _chunks(records, max(batch_size, 128)):  # documents per round
                texts = [field(rec, text_column, line) for line, rec in rows]
                labels = None
                if label_key is not None:
                    labels = [field(rec, label_key, line) for line, rec in rows]
                    for (line, _), y in zip(rows, labels, strict=True):
                        if y not in known:
                            raise DataError(
                                f"label {y!r} is not one of the teacher's labels "
                                f"({', '.join(teacher.labels)})",
                                name,
                                line,
                            )
                kept = label_units(
                    teacher,
                    texts,
                    labels,
                    stats,
                    sentences=sentences,
                    min_score=min_score,
                    min_words=min_words,
                    max_words=max_words,
                    normalize=normalize,
                    lowercase=lowercase,
                    batch_size=batch_size,
                    veto=veto,
                )
                buf = io.StringIO()
                cw = csv.writer(buf, lineterminator="\n")
                cw.writerows((s, y, f"{p:.4f}") for s, y, p in kept)
                out.write(buf.getvalue())
                out.flush()
        if stats.documents == 0:
            raise DataError("no documents (empty input)", name)
    except BaseException:
        if sink:
            sink.discard()
        raise
    if sink:
        sink.commit()
    total = sum(stats.kept.values())
    per = ", ".join(f"{k} {v:,}" for k, v in sorted(stats.kept.items())) or "none"
    agree = (
        f"; the teacher agreed with the document's label on {stats.agreed / stats.units:.1%}"
        if label_key is not None and stats.units
        else ""
    )
    unit = "sentences" if sentences else "texts"
    status(
        f"{stats.documents:,} documents, {stats.units:,} {unit} of {min_words}-{max_words or 'any'} "
        f"words{agree}; kept {total:,} ({per})" + (f"; wrote {output}" if output else "")
    )
