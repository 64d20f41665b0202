"""`seqtool translate`: the attention encoder-decoder (`seqtool train translator` is generated
from the task's options, cli/options.py)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from seqtool.cli._common import (
    EncodingErrors,
    Threads,
    batch_size_option,
    check_choice,
    check_encoding_errors,
    format_option,
    input_argument,
    model_option,
    status,
    write,
)

IN_FORMATS = ("auto", "text", "tsv")


def translate(
    file: Annotated[
        str,
        input_argument(
            "Source sentences, one per line (of a .tsv file: the first column); - or nothing "
            "reads stdin."
        ),
    ] = "-",
    model: Annotated[
        str | None, model_option("Translator checkpoint (default: the shipped en-de model).")
    ] = None,
    beam: Annotated[int, typer.Option(metavar="K", help="Beam size (1: greedy).")] = 5,
    length_penalty: Annotated[
        float,
        typer.Option(
            metavar="ALPHA", help="GNMT length penalty alpha; 0 ranks by raw log-probability."
        ),
    ] = 1.0,
    n_best: Annotated[
        int, typer.Option("--n-best", metavar="K", help="Hypotheses per sentence (<= beam).")
    ] = 1,
    max_length_ratio: Annotated[
        float | None,
        typer.Option(
            metavar="R",
            help="Output length limit: this times the source tokens, + 10 (default 2).",
        ),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", metavar="FORMAT", help="text | jsonl (with scores).")
    ] = "text",
    input_format: Annotated[
        str,
        format_option(
            "auto (a .tsv/.tab file is source<TAB>target pairs; others and stdin: text) | "
            "text | tsv (translate the first column).",
            "--input-format",
        ),
    ] = "auto",
    batch_size: Annotated[
        int,
        batch_size_option("Sentences per batch; a live feed is answered as soon as it pauses."),
    ] = 32,
    threads: Threads = 1,
    encoding_errors: EncodingErrors = "strict",
) -> None:
    """Translate sentences, one per line, streaming output in input order.

    An empty input line gives an empty output line. With --n-best K the text format prints
    K lines per sentence (best first) and jsonl gives one object per sentence.

    Examples:

      echo "A man is riding a bicycle ." | seqtool translate

      seqtool translate english.txt -m en-de.safetensors --beam 5 --length-penalty 1.0

      seqtool translate --n-best 3 --format jsonl < english.txt

      seqtool translate pairs.tsv   # the source column of a parallel file
    """
    from seqtool import api, paths
    from seqtool.data.stream import batched, open_lines
    from seqtool.data.text import decode_lines
    from seqtool.errors import SeqtoolError
    from seqtool.training import runtime

    check_choice("--format", fmt, ("text", "jsonl"))
    check_choice("--input-format", input_format, IN_FORMATS)
    check_encoding_errors(encoding_errors)
    if beam < 1 or not 1 <= n_best <= beam:
        raise SeqtoolError(f"need --beam >= 1 and 1 <= --n-best <= --beam (got {beam}, {n_best})")
    if batch_size < 1:
        raise SeqtoolError("--batch-size must be >= 1")
    if max_length_ratio is not None and max_length_ratio <= 0:
        raise SeqtoolError("--max-length-ratio must be > 0")
    if input_format == "auto":
        ext = file.lower().rpartition(".")[2] if file != "-" else ""
        input_format = "tsv" if ext in ("tsv", "tab") else "text"
    lines = open_lines(file)  # a missing file or a directory fails here, before the model loads
    runtime.set_threads(threads)
    path = model or str(paths.default_model("translator"))
    tr = api.load(path, "translator", "translate")

    def flush(batch: list[str]) -> None:
        results = tr.translate(batch, beam, length_penalty, n_best, batch_size, max_length_ratio)
        out = []
        for src, hyps in zip(batch, results, strict=True):
            if fmt == "jsonl":
                out.append(json.dumps({"source": src, "translations": hyps}, ensure_ascii=False))
            else:
                out += [h["text"] for h in hyps]
        write("".join(line + "\n" for line in out), flush=True)

    sources = decode_lines(lines, lines.name, encoding_errors)
    if input_format == "tsv":
        sources = (line.split("\t", 1)[0] for line in sources)
    # Piped files go in batches; a terminal or a live feed is answered as soon as it pauses.
    n = batched(sources, batch_size, flush, lines)
    lines.close()
    if n == 0:
        status("translate: no input lines")
