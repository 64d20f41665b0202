"""`seqtool pseudo-label`: sentence-level training data from labelled documents, labelled
by a teacher classifier (or an ensemble); the recipe is seqtool/recipes/pseudo_label.py."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Annotated, Any

import typer

from seqtool.cli._common import Output, Precision, Threads, input_argument, status
from seqtool.cli._tables import InputFormat, check_run_options, chunks, open_records, open_table
from seqtool.errors import SeqtoolError


def pseudo_label(
    input: Annotated[
        str | None,
        input_argument(
            "Documents: a CSV/TSV/JSONL table (by extension) or text lines; - or none reads "
            "stdin (a table when --text-column or --label-column is given)."
        ),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            metavar="MODEL",
            help="The teacher classifier (default: the shipped sentiment model); repeat for an "
            "ensemble whose class probabilities are averaged.",
        ),
    ] = None,
    output: Output = None,
    min_score: Annotated[
        float,
        typer.Option(
            metavar="P", help="Keep units the teacher labels with at least this probability."
        ),
    ] = 0.9,
    sentences: Annotated[
        bool,
        typer.Option(
            "--sentences/--whole", help="Cut each document into sentences, or label it whole."
        ),
    ] = True,
    min_words: Annotated[int, typer.Option(metavar="N", help="Drop units of fewer words.")] = 4,
    max_words: Annotated[
        int, typer.Option(metavar="N", help="Drop units of more words (0: no limit).")
    ] = 60,
    text_column: Annotated[
        str | None,
        typer.Option(
            metavar="NAME", help="Column/key with the document text (tables; default: text)."
        ),
    ] = None,
    label_column: Annotated[
        str | None,
        typer.Option(
            metavar="NAME",
            help="Column/key with the document's label: a unit is kept only where the teacher "
            "agrees with it (default: 'label' when the table has it; none for text lines).",
        ),
    ] = None,
    veto: Annotated[
        bool | None,
        typer.Option(
            "--veto/--no-veto",
            help="Drop units whose teacher label differs from their document's label, or keep "
            "them with the teacher's label (for distillation: all units with the teacher's "
            "scores, `--no-veto --min-score 0`, then `train classifier --score-column score`). "
            "Needs document labels.  [default: veto]",
            show_default=False,
        ),
    ] = None,
    normalize: Annotated[
        bool,
        typer.Option(
            "--normalize",
            help="Write units with punctuation and clitics split off (don't -> do n't), as "
            "PTB-tokenized corpora such as SST-2 are.",
        ),
    ] = False,
    lowercase: Annotated[bool, typer.Option("--lowercase", help="Write units lowercased.")] = False,
    input_format: InputFormat = "auto",
    batch_size: Annotated[
        int, typer.Option("--batch-size", "-b", metavar="N", help="Units per forward pass.")
    ] = 256,
    threads: Threads = 1,
    precision: Precision = "fp32",
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
    from seqtool.data.atomic import open_output
    from seqtool.data.text import decode_lines
    from seqtool.errors import DataError
    from seqtool.recipes.pseudo_label import Ensemble, PseudoLabelStats
    from seqtool.recipes.pseudo_label import pseudo_label as label_units
    from seqtool.training import runtime

    if not 0.0 <= min_score <= 1.0:
        raise SeqtoolError(f"--min-score must be in [0, 1], not {min_score}")
    if min_words < 1 or max_words < 0:
        raise SeqtoolError("--min-words must be >= 1 and --max-words >= 0")
    # Options only a table can use make stdin a table (its format sniffed from the first line).
    table_option = None
    if label_column is not None:
        table_option = "--label-column"
    elif text_column is not None:
        table_option = "--text-column"
    input_format = check_run_options(input, input_format, batch_size, precision, table_option)
    if input_format == "text" and veto is not None:
        raise SeqtoolError(
            f"--{'' if veto else 'no-'}veto needs documents with labels: a CSV/TSV/JSONL table"
        )
    lines, input_format, sniffed = open_records(input, input_format)
    text_column = text_column or "text"
    runtime.set_threads(threads)
    teacher = Ensemble(
        [
            api.load(m, "classifier", "pseudo-label")
            for m in model or [str(paths.default_model("classifier"))]
        ]
    )
    known = set(teacher.labels)
    name = lines.name
    label_key: str | None = None
    if input_format == "text":
        records: Iterator[tuple[int, Any]] = (
            (n, {text_column: t}) for n, t in enumerate(decode_lines(lines, name), 1)
        )
    else:
        table, name, keys = open_table(lines, input_format, text_column, sniffed=sniffed)
        if table is None:
            raise DataError("no documents (an empty table)", name)
        records = table
        if label_column is not None and label_column not in keys:
            raise DataError(
                f"no label column {label_column!r}; the columns are: {', '.join(map(repr, keys))}",
                name,
            )
        label_key = label_column or ("label" if "label" in keys else None)
        if label_key is None and veto is not None:
            raise DataError(
                f"--{'' if veto else 'no-'}veto needs the documents' labels: no 'label' column "
                f"(the columns are: {', '.join(map(repr, keys))}; choose with --label-column)",
                name,
            )

    def field(rec: dict, key: str, line: int) -> str:
        value = rec.get(key)
        if value is None:
            raise DataError(f"no key {key!r} in this record", name, line)
        return str(value)

    stats = PseudoLabelStats()
    device = next(teacher.models[0].parameters()).device
    with open_output(output, newline="") as out:
        out.write("text,label,score\n")
        with runtime.autocast(device, precision):
            for rows in chunks(records, max(batch_size, 128)):  # documents per round
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
                    veto=veto is not False,
                )
                buf = io.StringIO()
                cw = csv.writer(buf, lineterminator="\n")
                cw.writerows((s, y, f"{p:.4f}") for s, y, p in kept)
                out.write(buf.getvalue())
                out.flush()
        if stats.documents == 0:
            raise DataError("no documents (empty input)", name)
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
