"""`seqtool translate`: the attention encoder-decoder (`seqtool train translator` is generated
from the task's options, cli/options.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from seqtool.cli import fields
from seqtool.cli._common import check_choice, check_encoding_errors, status, write
from seqtool.cli.options import run_command
from seqtool.config import opt

IN_FORMATS = ("auto", "text", "tsv")


@dataclass(frozen=True)
class TranslateOptions:
    file: str = fields.file_argument(
        "Source sentences, one per line (of a .tsv file: the first column); - or nothing "
        "reads stdin."
    )
    model: str | None = fields.model("Translator checkpoint (default: the shipped en-de model).")
    beam: int = opt(5, "Beam size (1: greedy).", metavar="K")
    length_penalty: float = opt(
        1.0, "GNMT length penalty alpha; 0 ranks by raw log-probability.", metavar="ALPHA"
    )
    n_best: int = opt(1, "Hypotheses per sentence (<= beam).", flags=("--n-best",), metavar="K")
    max_length_ratio: float | None = opt(
        None, "Output length limit: this times the source tokens, + 10 (default 2).", metavar="R"
    )
    fmt: str = fields.fmt("text", "text | jsonl (with scores).")
    input_format: str = fields.fmt(
        "auto",
        "auto (a .tsv/.tab file is source<TAB>target pairs; others and stdin: text) | text | "
        "tsv (translate the first column).",
        "--input-format",
    )
    batch_size: int = fields.batch_size(
        32, "Sentences per batch; a live feed is answered as soon as it pauses."
    )
    threads: int = fields.threads()
    device: str = fields.device()
    encoding_errors: str = fields.encoding_errors()


@run_command(TranslateOptions)
def translate(o: TranslateOptions) -> None:
    """Translate sentences, one per line, streaming output in input order.

    An empty input line gives an empty output line. With --n-best K the text format prints
    K lines per sentence (best first) and jsonl gives one object per sentence.

    Examples:

      echo "A man is riding a bicycle ." | seqtool translate

      head -5 corpora/translation-sample.tsv | cut -f1 > english.txt

      seqtool translate english.txt -m checkpoints/translate-en-de.safetensors --beam 5 --length-penalty 1.0

      seqtool translate --n-best 3 --format jsonl < english.txt

      head -5 corpora/translation-sample.tsv > pairs.tsv

      seqtool translate pairs.tsv   # the source column of a parallel file
    """
    from seqtool import api, paths
    from seqtool.data.stream import batched, open_lines
    from seqtool.data.text import check_input_path, decode_lines
    from seqtool.errors import SeqtoolError
    from seqtool.training import runtime

    check_choice("--format", o.fmt, ("text", "jsonl"))
    input_format = o.input_format
    check_choice("--input-format", input_format, IN_FORMATS)
    check_encoding_errors(o.encoding_errors)
    if o.beam < 1 or not 1 <= o.n_best <= o.beam:
        raise SeqtoolError(
            f"need --beam >= 1 and 1 <= --n-best <= --beam (got {o.beam}, {o.n_best})"
        )
    if o.batch_size < 1:
        raise SeqtoolError("--batch-size must be >= 1")
    if o.max_length_ratio is not None and o.max_length_ratio <= 0:
        raise SeqtoolError("--max-length-ratio must be > 0")
    if input_format == "auto":
        # an hf: dataset of sentence pairs arrives as a .tsv copy (data/hub.py)
        ext = str(check_input_path(o.file)).lower().rpartition(".")[2] if o.file != "-" else ""
        input_format = "tsv" if ext in ("tsv", "tab") else "text"
    lines = open_lines(o.file)  # a missing file or a directory fails here, before the model loads
    runtime.set_threads(o.threads)
    path = o.model or str(paths.default_model("translator"))
    tr = api.load(path, "translator", "translate", o.device)

    def flush(batch: list[str]) -> None:
        results = tr.translate(
            batch, o.beam, o.length_penalty, o.n_best, o.batch_size, o.max_length_ratio
        )
        out = []
        for src, hyps in zip(batch, results, strict=True):
            if o.fmt == "jsonl":
                out.append(json.dumps({"source": src, "translations": hyps}, ensure_ascii=False))
            else:
                out += [h["text"] for h in hyps]
        write("".join(line + "\n" for line in out), flush=True)

    sources = decode_lines(lines, lines.name, o.encoding_errors)
    if input_format == "tsv":
        sources = (line.split("\t", 1)[0] for line in sources)
    # Piped files go in batches; a terminal or a live feed is answered as soon as it pauses.
    n = batched(sources, o.batch_size, flush, lines)
    lines.close()
    if n == 0:
        status("translate: no input lines")
