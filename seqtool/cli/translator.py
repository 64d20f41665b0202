"""`seqtool translate`: the attention encoder-decoder (`seqtool train translator` is generated
from the task's options, cli/options.py)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from seqtool.cli._common import (
    EncodingErrors,
    Threads,
    model_option,
    status,
    stdin_is_terminal,
    write,
)


def translate(
    file: Annotated[
        str, typer.Argument(help="Source sentences, one per line; - or nothing reads stdin.")
    ] = "-",
    model: Annotated[
        str | None, model_option("Translator checkpoint (default: the shipped en-de model).")
    ] = None,
    beam: Annotated[int, typer.Option(help="Beam size (1: greedy).")] = 5,
    length_penalty: Annotated[
        float, typer.Option(help="GNMT length penalty alpha; 0 ranks by raw log-probability.")
    ] = 1.0,
    n_best: Annotated[int, typer.Option("--n-best", help="Hypotheses per sentence (<= beam).")] = 1,
    max_length_ratio: Annotated[
        float | None,
        typer.Option(help="Output length limit: this times the source tokens, + 10 (default 2)."),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="text | jsonl (with scores).")] = "text",
    batch_size: Annotated[
        int, typer.Option("--batch-size", "-b", help="Sentences per batch.")
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
    """
    from seqtool import api, paths
    from seqtool.data.text import iter_lines
    from seqtool.errors import SeqtoolError
    from seqtool.training import runtime

    if fmt not in ("text", "jsonl"):
        raise SeqtoolError(f"--format must be text or jsonl, not {fmt!r}")
    if beam < 1 or not 1 <= n_best <= beam:
        raise SeqtoolError(f"need --beam >= 1 and 1 <= --n-best <= --beam (got {beam}, {n_best})")
    if batch_size < 1:
        raise SeqtoolError("--batch-size must be >= 1")
    if max_length_ratio is not None and max_length_ratio <= 0:
        raise SeqtoolError("--max-length-ratio must be > 0")
    runtime.set_threads(threads)
    path = model or str(paths.default_model("translator"))
    tr = api.load(path, "translator", "translate")

    def flush(lines: list[str]) -> None:
        results = tr.translate(lines, beam, length_penalty, n_best, batch_size, max_length_ratio)
        out = []
        for src, hyps in zip(lines, results, strict=True):
            if fmt == "jsonl":
                out.append(json.dumps({"source": src, "translations": hyps}, ensure_ascii=False))
            else:
                out += [h["text"] for h in hyps]
        write("".join(line + "\n" for line in out), flush=True)

    # Typed at a terminal, each line is answered at once; piped input goes in batches.
    per_batch = 1 if file == "-" and stdin_is_terminal() else batch_size
    buf: list[str] = []
    n = 0
    for line in iter_lines(file, encoding_errors):
        buf.append(line)
        if len(buf) >= per_batch:
            flush(buf)
            n += len(buf)
            buf = []
    if buf:
        flush(buf)
        n += len(buf)
    if n == 0:
        status("translate: no input lines")
