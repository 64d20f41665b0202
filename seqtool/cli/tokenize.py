"""`seqtool tokenize train | encode | decode`: tokenizers as stdin/stdout filters; and
`seqtool tokenize words | sentences`: the learnt segmenter as a filter over raw text."""

from __future__ import annotations

from typing import Annotated

import typer

from seqtool.cli._common import (
    EncodingErrors,
    Threads,
    batch_size_option,
    check_encoding_errors,
    input_argument,
    load_segmenter,
    model_option,
    status,
    stdin_is_terminal,
    write,
)

app = typer.Typer(
    help="Train character or sentencepiece (bpe, unigram) tokenizers; encode and decode lines; "
    "split raw text into words or sentences with the learnt segmenter.",
    no_args_is_help=True,
)
CHUNK_CHARS = 65536  # lines segmented together also close at this many characters
Segmenter = Annotated[str | None, model_option("Segmenter checkpoint (default: shipped English).")]
Lines = Annotated[int, batch_size_option("Lines segmented and written (flushed) together.")]


@app.command("train")
def train(
    files: Annotated[
        list[str],
        typer.Argument(
            metavar="FILE", help="Text file(s) to learn the vocabulary from; - reads stdin."
        ),
    ],
    output: Annotated[
        str, typer.Option("--output", "-o", metavar="FILE", help="Tokenizer file to write.")
    ] = "tok.model",
    model_type: Annotated[str, typer.Option(metavar="TYPE", help="bpe | unigram | char.")] = "bpe",
    vocab_size: Annotated[
        int,
        typer.Option(metavar="N", help="Vocabulary size (bpe/unigram; includes 256 byte pieces)."),
    ] = 8000,
    encoding_errors: EncodingErrors = "strict",
) -> None:
    """Train a tokenizer and write it to a file.

    bpe/unigram files are ordinary sentencepiece models and round-trip any text exactly
    (identity normalization, byte fallback; a literal U+2581 is kept as its bytes). A char
    tokenizer round-trips the characters it was trained on; others become <unk>.

    Examples:

      seqtool tokenize train corpus.txt --model-type bpe --vocab-size 8000 -o tok.model

      seqtool tokenize train corpus.txt --model-type char -o chars.model
    """
    from seqtool import tokenizers
    from seqtool.checkpoint import atomic_write_bytes
    from seqtool.data.text import read_text
    from seqtool.errors import SeqtoolError

    if model_type not in ("bpe", "unigram", "char"):
        raise SeqtoolError(f"--model-type must be bpe, unigram or char, not {model_type!r}")
    tok = tokenizers.build(model_type, [read_text(f, encoding_errors) for f in files], vocab_size)
    atomic_write_bytes(output, tok.to_bytes())
    status(f"wrote {output}: {model_type} tokenizer, {tok.vocab_size} ids")


@app.command("encode")
def encode(
    model: Annotated[str, typer.Option("--model", "-m", metavar="FILE", help="Tokenizer file.")],
    file: Annotated[str, input_argument("Input text; - or nothing reads stdin.")] = "-",
    fmt: Annotated[
        str, typer.Option("--format", metavar="FORMAT", help="pieces | ids.")
    ] = "pieces",
    encoding_errors: EncodingErrors = "strict",
) -> None:
    """Encode each input line to space-separated pieces or ids (one output line per line).

    Example:

      seqtool tokenize encode --model tok.model < in.txt | seqtool tokenize decode --model tok.model
    """
    from seqtool import tokenizers
    from seqtool.data.text import iter_lines
    from seqtool.errors import SeqtoolError

    if fmt not in ("pieces", "ids"):
        raise SeqtoolError(f"--format must be pieces or ids, not {fmt!r}")
    tok = tokenizers.load(model)
    for line in iter_lines(file, encoding_errors):
        if fmt == "ids":
            out = " ".join(map(str, tok.encode(line)))
        else:
            out = " ".join(_escape(p) for p in tok.encode_pieces(line))
        write(out + "\n", flush=True)


@app.command("decode")
def decode(
    model: Annotated[str, typer.Option("--model", "-m", metavar="FILE", help="Tokenizer file.")],
    file: Annotated[str, input_argument("Encoded lines; - or nothing reads stdin.")] = "-",
    fmt: Annotated[
        str,
        typer.Option("--format", metavar="FORMAT", help="pieces | ids (the format encode wrote)."),
    ] = "pieces",
) -> None:
    """Decode lines of space-separated pieces or ids back to text.

    Example:

      echo "12 7 301" | seqtool tokenize decode --model tok.model --format ids
    """
    from seqtool import tokenizers
    from seqtool.data.text import iter_lines
    from seqtool.errors import DataError, SeqtoolError

    if fmt not in ("pieces", "ids"):
        raise SeqtoolError(f"--format must be pieces or ids, not {fmt!r}")
    tok = tokenizers.load(model)
    name = "<stdin>" if file == "-" else file
    for n, line in enumerate(iter_lines(file), 1):
        fields = line.split(" ") if line else []
        if fmt == "ids":
            ids = []
            col = 1
            for f in fields:
                if not f.isdigit() or int(f) >= tok.vocab_size:
                    raise DataError(f"{f!r} is not an id below {tok.vocab_size}", name, n, col)
                ids.append(int(f))
                col += len(f) + 1
        else:
            ids = [tok.piece_to_id(_unescape(p)) for p in fields]
        write(tok.decode(ids) + "\n", flush=True)


@app.command("words")
def words(
    file: Annotated[
        str, input_argument("Sentences, one per line; - or nothing reads stdin.")
    ] = "-",
    model: Segmenter = None,
    batch_size: Lines = 256,
    threads: Threads = 1,
    encoding_errors: EncodingErrors = "strict",
) -> None:
    """Split sentences (one per line) into words, space-separated.

    Multiword tokens are split into their words (don't -> do n't), punctuation off words;
    one output line per input line.

    Example:

      echo "I don't know, do you?" | seqtool tokenize words
    """
    _segment(file, model, batch_size, threads, encoding_errors, split=False)


@app.command("sentences")
def sentences(
    file: Annotated[
        str, input_argument("Running text, each line a paragraph; - reads stdin.")
    ] = "-",
    model: Segmenter = None,
    batch_size: Lines = 256,
    threads: Threads = 1,
    encoding_errors: EncodingErrors = "strict",
) -> None:
    """Split running text (a paragraph per line) into sentences, one per line.

    Sentences are written as they are in the text. An empty line stays an empty line, so
    blank-line paragraph breaks are kept.

    Example:

      seqtool tokenize sentences article.txt | seqtool tokenize words
    """
    _segment(file, model, batch_size, threads, encoding_errors, split=True)


def _segment(
    file: str, model: str | None, batch_size: int, threads: int, errors: str, split: bool
) -> None:
    """The segmenter over the lines of a file or stdin, output flushed batch by batch."""
    from seqtool.data.stream import batched, open_lines
    from seqtool.data.text import decode_lines
    from seqtool.errors import SeqtoolError
    from seqtool.training import runtime

    check_encoding_errors(errors)
    if batch_size < 1:
        raise SeqtoolError("--batch-size must be >= 1")
    if file == "-" and stdin_is_terminal():
        raise SeqtoolError("no input: give a file or pipe text in")
    lines = open_lines(file)  # a missing file or a directory fails before the model loads
    runtime.set_threads(threads)
    segmenter = load_segmenter(model, "tokenize")

    def process(chunk: list[str]) -> None:
        out = []
        for text, sents in zip(chunk, segmenter.segment(chunk, split), strict=True):
            if not sents:
                out.append("\n")
            elif split:
                out += [text[s[0].start : s[-1].end] + "\n" for s in sents]
            else:
                out.append(" ".join(w for s in sents for t in s for w in t.words) + "\n")
        write("".join(out), flush=True)

    batched(decode_lines(lines, lines.name, errors), batch_size, process, lines, len, CHUNK_CHARS)
    lines.close()


# Pieces are space-separated on a line, so a piece holding a space, newline, tab or
# backslash is written escaped; decode reverses it.
_ESC = {"\\": "\\\\", " ": "\\s", "\t": "\\t", "\n": "\\n", "\r": "\\r"}
_UNESC = {v: k for k, v in _ESC.items()}


def _escape(piece: str) -> str:
    return "".join(_ESC.get(c, c) for c in piece)


def _unescape(s: str) -> str:
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 1 < len(s) and s[i : i + 2] in _UNESC:
            out.append(_UNESC[s[i : i + 2]])
            i += 2
        else:
            out.append(s[i])
            i += 1
    return "".join(out)
