"""`seqtool train tagger` and `seqtool tag`: the part-of-speech tagger."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from seqtool.cli._common import run_training, stdin_is_terminal, training_command, write

FORMATS = ("default", "tsv", "conllu", "jsonl")


@training_command(
    cell="lstm",
    layers=2,
    hidden=200,
    embedding_dim=100,
    dropout=0.33,
    embedding_dropout=0.33,
    bidirectional=True,
)
def train(
    files: Annotated[list[str], typer.Argument(help="Training CoNLL-U file(s); - reads stdin.")],
    dev: Annotated[str | None, typer.Option(help="Dev CoNLL-U file for evaluation.")] = None,
    dev_fraction: Annotated[
        float,
        typer.Option(help="Hold out this tail fraction of sentences as dev without --dev."),
    ] = 0.05,
    tag_field: Annotated[str, typer.Option(help="Column to learn: upos | xpos.")] = "upos",
    char_dim: Annotated[int, typer.Option(help="Character embedding size.")] = 32,
    char_hidden: Annotated[int, typer.Option(help="Char encoder hidden units per direction.")] = 64,
    word_dropout: Annotated[
        float,
        typer.Option(help="alpha: a word seen c times becomes <unk> w.p. alpha/(alpha+c)."),
    ] = 0.25,
    encoding_errors: Annotated[
        str, typer.Option(help="strict (error with line and column) | replace | ignore.")
    ] = "strict",
    *,
    train_cfg=None,
    backbone=None,
    run=None,
) -> None:
    """Train a part-of-speech tagger on CoNLL-U (UPOS by default).

    The model: word embedding + a char BiLSTM per word -> bidirectional LSTM -> one tag per word.

    Examples:

      seqtool train tagger train.conllu --dev dev.conllu -o pos.safetensors

      seqtool train tagger train.conllu --dev dev.conllu --tag-field xpos -o xpos.safetensors

      seqtool train tagger train.conllu --dev dev.conllu --threads 1 --max-time 30 --save-dtype fp16
    """
    run_training(
        "tagger",
        train_cfg,
        run,
        files=files,
        backbone=backbone,
        dev=dev,
        dev_fraction=dev_fraction,
        tag_field=tag_field,
        char_dim=char_dim,
        char_hidden=char_hidden,
        word_dropout=word_dropout,
        encoding_errors=encoding_errors,
    )


def tag(
    file: Annotated[str | None, typer.Argument(help="Input file; - or none reads stdin.")] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Tagger checkpoint (default: shipped English UPOS)."),
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
    threads: Annotated[int, typer.Option(help="CPU threads (0: torch's default).")] = 1,
    precision: Annotated[
        str,
        typer.Option(help="fp32 | bf16 (autocast: ~1.6x faster on CPUs with native bf16)."),
    ] = "fp32",
    encoding_errors: Annotated[
        str, typer.Option(help="strict | replace | ignore for non-UTF-8 input.")
    ] = "strict",
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
    from seqtool.tasks.tagger import tag_stream
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
        _write_tagged(tag_stream(tagger, sentences, chunk_sentences=batch_size), fmt, field)


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
