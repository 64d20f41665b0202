"""`seqtool tag`: the part-of-speech tagger (`seqtool train tagger` is generated from the
task's options, cli/options.py)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from seqtool.cli._common import (
    EncodingErrors,
    Precision,
    Threads,
    model_option,
    stdin_is_terminal,
    write,
)

FORMATS = ("default", "tsv", "conllu", "jsonl")


def tag(
    file: Annotated[str | None, typer.Argument(help="Input file; - or none reads stdin.")] = None,
    model: Annotated[
        str | None, model_option("Tagger checkpoint (default: shipped English UPOS).")
    ] = None,
    input_format: Annotated[
        str, typer.Option("--input-format", help="text (one sentence per line) | conllu.")
    ] = "text",
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="default (word/TAG) | tsv (word<TAB>tag, blank line after each sentence) "
            "| conllu | jsonl.",
        ),
    ] = "default",
    tokenize: Annotated[
        bool,
        typer.Option(
            "--tokenize",
            help="text input: split punctuation and clitics off words (default: whitespace).",
        ),
    ] = False,
    batch_size: Annotated[
        int,
        typer.Option("--batch-size", "-b", help="Sentences tagged and written (flushed) together."),
    ] = 256,
    threads: Threads = 1,
    precision: Precision = "fp32",
    encoding_errors: EncodingErrors = "strict",
) -> None:
    """Tag words with parts of speech; output streams in input order.

    Examples:

      echo "The old man the boats ." | seqtool tag

      seqtool tag --tokenize --format jsonl < sentences.txt

      seqtool tag --format conllu < sentences.txt > tagged.conllu

      seqtool tag --input-format conllu test.conllu --format conllu   # fills the tag column
    """
    from seqtool import api, paths
    from seqtool.data.conllu import read_conllu_file, read_text_sentences
    from seqtool.data.text import iter_lines
    from seqtool.errors import SeqtoolError
    from seqtool.training import runtime

    if fmt not in FORMATS:
        raise SeqtoolError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if input_format not in ("text", "conllu"):
        raise SeqtoolError(f"--input-format must be text or conllu, not {input_format!r}")
    if batch_size < 1:
        raise SeqtoolError("--batch-size must be >= 1")
    if precision not in ("fp32", "bf16"):
        raise SeqtoolError(f"--precision must be fp32 or bf16, not {precision!r}")
    if tokenize and input_format == "conllu":
        raise SeqtoolError("--tokenize applies to text input; CoNLL-U is already tokenized")
    if (file is None or file == "-") and stdin_is_terminal():
        raise SeqtoolError("no input: give a file or pipe sentences in (one per line)")
    runtime.set_threads(threads)
    tagger = api.load(model or str(paths.default_model("tagger")), "tagger", "tag")
    field = tagger.config.tag_field
    path = file or "-"
    if input_format == "conllu":
        sentences = read_conllu_file(path, field, encoding_errors)
    else:
        sentences = read_text_sentences(iter_lines(path, encoding_errors), tokenize)
    device = next(tagger.parameters()).device
    with runtime.autocast(device, precision):  # active while the generator below runs
        _write_tagged(tagger.tag_stream(sentences, chunk_sentences=batch_size), fmt, field)


def _write_tagged(chunks, fmt: str, field: str) -> None:
    from seqtool.data.conllu import to_conllu

    for chunk in chunks:
        out = []
        for s, tags in chunk:
            pairs = zip(s.words, tags, strict=True)
            if fmt == "default":
                out.append(" ".join(f"{w}/{t}" for w, t in pairs) + "\n")
            elif fmt == "tsv":
                out.append("".join(f"{w}\t{t}\n" for w, t in pairs) + "\n")
            elif fmt == "jsonl":
                obj = {"words": s.words, "tags": tags}
                if "sent_id" in s.metadata:
                    obj["sent_id"] = s.metadata["sent_id"]
                out.append(json.dumps(obj, ensure_ascii=False) + "\n")
            elif s.words:  # conllu: an empty text line is no sentence
                out.append(to_conllu(s, tags, field))
        write("".join(out), flush=True)
