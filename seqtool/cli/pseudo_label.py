"""`seqtool pseudo-label`: sentence-level training data from labelled documents, labelled
by a teacher classifier (or an ensemble); the recipe is seqtool/recipes/pseudo_label.py."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from seqtool.cli import fields
from seqtool.cli._common import status
from seqtool.cli._tables import check_run_options, chunks, open_records, open_table
from seqtool.cli.options import run_command
from seqtool.config import opt
from seqtool.errors import SeqtoolError


@dataclass(frozen=True)
class PseudoLabelOptions:
    input: str | None = fields.table_file(
        "Documents: a CSV/TSV/JSONL table (by extension) or text lines",
        "--text-column or --label-column",
    )
    model: list[str] | None = fields.model(
        "The teacher classifier (default: the shipped sentiment model); repeat for an ensemble "
        "whose class probabilities are averaged."
    )
    output: str | None = fields.output()
    min_score: float = opt(
        0.9, "Keep units the teacher labels with at least this probability.", metavar="P"
    )
    sentences: bool = opt(
        True,
        "Cut each document into sentences, or label it whole.",
        flags=("--sentences/--whole",),
    )
    min_words: int = opt(4, "Drop units of fewer words.")
    max_words: int = opt(60, "Drop units of more words (0: no limit).")
    text_column: str | None = opt(
        None, "Column/key with the document text (tables; default: text).", metavar="NAME"
    )
    label_column: str | None = opt(
        None,
        "Column/key with the document's label: a unit is kept only where the teacher agrees "
        "with it (default: 'label' when the table has it; none for text lines).",
        metavar="NAME",
    )
    veto: bool | None = opt(
        None,
        "Drop units whose teacher label differs from their document's label, or keep them "
        "with the teacher's label (for distillation: all units with the teacher's scores, "
        "`--no-veto --min-score 0`, then `train classifier --score-column score`). Needs "
        "document labels.  [default: veto]",
        flags=("--veto/--no-veto",),
        show_default=False,
    )
    normalize: bool = opt(
        False,
        "Write units with punctuation and clitics split off (don't -> do n't), as "
        "PTB-tokenized corpora such as SST-2 are.",
        flags=("--normalize",),
    )
    lowercase: bool = opt(False, "Write units lowercased.", flags=("--lowercase",))
    input_format: str = fields.table_input_format()
    batch_size: int = fields.batch_size(256, "Units per forward pass.")
    threads: int = fields.threads()
    precision: str = fields.precision()
    device: str = fields.device()


@run_command(PseudoLabelOptions)
def pseudo_label(o: PseudoLabelOptions) -> None:
    """Sentence-level training data from labelled documents, labelled by a teacher model.

    Each document is cut into sentences; the teacher labels each one, and a sentence is kept
    (a CSV row text,label,score) when its score is at least --min-score and, for a table with
    a label column, the teacher agrees with the document's label. Reviews labelled as wholes
    so become sentences labelled one by one, with the neutral ones (plot summary) left out:
    extra training data for a classifier of short texts.

    Examples:

      seqtool pseudo-label corpora/sentiment-sample.csv -o sentences.csv

      seqtool train classifier corpora/sentiment-sample.csv --steps 40 --threads 1 -o b.safetensors

      seqtool pseudo-label corpora/sentiment-sample.csv -m checkpoints/sentiment.safetensors -m b.safetensors --min-score 0.9 --normalize --lowercase

      seqtool train classifier corpora/sentiment-sample.csv sentences.csv --steps 40 --threads 1 -o student.safetensors

      printf 'A fine film. The ending drags.\\n' | seqtool pseudo-label --whole > self_trained.csv

      seqtool pseudo-label corpora/sentiment-sample.csv --no-veto --min-score 0 -o soft.csv   # then: train classifier ... soft.csv --score-column score
    """
    from seqtool import api, paths
    from seqtool.data.atomic import open_output
    from seqtool.data.text import decode_lines
    from seqtool.errors import DataError
    from seqtool.recipes.pseudo_label import Ensemble, PseudoLabelStats
    from seqtool.recipes.pseudo_label import pseudo_label as label_units
    from seqtool.training import runtime

    if not 0.0 <= o.min_score <= 1.0:
        raise SeqtoolError(f"--min-score must be in [0, 1], not {o.min_score}")
    if o.min_words < 1 or o.max_words < 0:
        raise SeqtoolError("--min-words must be >= 1 and --max-words >= 0")
    # Options only a table can use make stdin a table (its format sniffed from the first line).
    table_option = None
    if o.label_column is not None:
        table_option = "--label-column"
    elif o.text_column is not None:
        table_option = "--text-column"
    input_format = check_run_options(
        o.input, o.input_format, o.batch_size, o.precision, table_option
    )
    if input_format == "text" and o.veto is not None:
        raise SeqtoolError(
            f"--{'' if o.veto else 'no-'}veto needs documents with labels: a CSV/TSV/JSONL table"
        )
    lines, input_format, sniffed = open_records(o.input, input_format)
    text_column = o.text_column or "text"
    runtime.set_threads(o.threads)
    teacher = Ensemble(
        [
            api.load(m, "classifier", "pseudo-label", o.device)
            for m in o.model or [str(paths.default_model("classifier"))]
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
        if o.label_column is not None and o.label_column not in keys:
            raise DataError(
                f"no label column {o.label_column!r}; the columns are: {', '.join(map(repr, keys))}",
                name,
            )
        label_key = o.label_column or ("label" if "label" in keys else None)
        if label_key is None and o.veto is not None:
            raise DataError(
                f"--{'' if o.veto else 'no-'}veto needs the documents' labels: no 'label' column "
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
    with open_output(o.output, newline="") as out:
        out.write("text,label,score\n")
        with runtime.autocast(device, o.precision, teacher.models):
            for rows in chunks(records, max(o.batch_size, 128)):  # documents per round
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
                    sentences=o.sentences,
                    min_score=o.min_score,
                    min_words=o.min_words,
                    max_words=o.max_words,
                    normalize=o.normalize,
                    lowercase=o.lowercase,
                    batch_size=o.batch_size,
                    veto=o.veto is not False,
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
    unit = "sentences" if o.sentences else "texts"
    status(
        f"{stats.documents:,} documents, {stats.units:,} {unit} of {o.min_words}-{o.max_words or 'any'} "
        f"words{agree}; kept {total:,} ({per})" + (f"; wrote {o.output}" if o.output else "")
    )
