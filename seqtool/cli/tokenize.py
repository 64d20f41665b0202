"""`seqtool tokenize train | encode | decode`: tokenizers as stdin/stdout filters; and
`seqtool tokenize words | sentences`: the learnt segmenter as a filter over raw text."""

from __future__ import annotations

from dataclasses import dataclass

import typer

from seqtool.cli import fields
from seqtool.cli._common import (
    SEGMENT_CHUNK_CHARS,
    check_encoding_errors,
    load_segmenter,
    status,
    stdin_is_terminal,
    write,
)
from seqtool.cli._entry import verbatim_examples
from seqtool.cli.options import run_command
from seqtool.config import opt

app = typer.Typer(
    help=verbatim_examples(
        "Train character or sentencepiece (bpe, unigram) tokenizers; encode and decode lines; "
        "split raw text into words or sentences with the learnt segmenter.\n\n"
        "Examples:\n\n"
        "  seqtool tokenize train corpora/play-sample.txt --vocab-size 400 -o tok.model\n\n"
        '  echo "To be, or not to be" | seqtool tokenize encode --model tok.model\n\n'
        '  echo "I don\'t know. Do you?" | seqtool tokenize sentences | seqtool tokenize words'
    ),
    no_args_is_help=True,
)


@dataclass(frozen=True)
class TrainOptions:
    files: list[str] = opt(
        help="Text file(s) to learn the vocabulary from; - reads stdin.",
        argument=True,
        metavar="FILE",
    )
    output: str = opt(
        "tok.model", "Tokenizer file to write.", flags=("--output", "-o"), metavar="FILE"
    )
    model_type: str = opt("bpe", "bpe | unigram | char.", metavar="TYPE")
    vocab_size: int = opt(8000, "Vocabulary size (bpe/unigram; includes 256 byte pieces).")
    encoding_errors: str = fields.encoding_errors()


@app.command("train")
@run_command(TrainOptions)
def train(o: TrainOptions) -> None:
    """Train a tokenizer and write it to a file.

    bpe/unigram files are ordinary sentencepiece models and round-trip any text exactly
    (identity normalization, byte fallback; a literal U+2581 is kept as its bytes). A char
    tokenizer round-trips the characters it was trained on; others become <unk>.

    Examples:

      seqtool tokenize train corpora/play-sample.txt --model-type bpe --vocab-size 400 -o tok.model

      seqtool tokenize train corpora/play-sample.txt --model-type char -o chars.model
    """
    from seqtool import tokenizers
    from seqtool.checkpoint import atomic_write_bytes
    from seqtool.data.text import display_name, read_text
    from seqtool.errors import SeqtoolError

    if o.model_type not in ("bpe", "unigram", "char"):
        raise SeqtoolError(f"--model-type must be bpe, unigram or char, not {o.model_type!r}")
    texts = [read_text(f, o.encoding_errors) for f in o.files]
    if not any(t.strip() for t in texts):
        names = ", ".join(display_name(f) for f in o.files)
        raise SeqtoolError(f"{names}: no text to train a tokenizer on (empty input?)")
    tok = tokenizers.build(o.model_type, texts, o.vocab_size)
    atomic_write_bytes(o.output, tok.to_bytes())
    status(f"wrote {o.output}: {o.model_type} tokenizer, {tok.vocab_size} ids")


@dataclass(frozen=True)
class DecodeOptions:
    model: str = opt(help="Tokenizer file.", flags=("--model", "-m"), metavar="FILE")
    file: str = fields.file_argument("Encoded lines; - or nothing reads stdin.")
    fmt: str = fields.fmt("pieces", "pieces | ids (the format encode wrote).")


@dataclass(frozen=True)
class EncodeOptions(DecodeOptions):
    file: str = fields.file_argument("Input text; - or nothing reads stdin.")
    fmt: str = fields.fmt("pieces", "pieces | ids.")
    encoding_errors: str = fields.encoding_errors()


@app.command("encode")
@run_command(EncodeOptions)
def encode(o: EncodeOptions) -> None:
    """Encode each input line to space-separated pieces or ids (one output line per line).

    Examples:

      seqtool tokenize train corpora/play-sample.txt --vocab-size 400 -o tok.model

      seqtool tokenize encode --model tok.model < corpora/play-sample.txt | seqtool tokenize decode --model tok.model
    """
    from seqtool import tokenizers
    from seqtool.data.text import iter_lines
    from seqtool.errors import SeqtoolError

    if o.fmt not in ("pieces", "ids"):
        raise SeqtoolError(f"--format must be pieces or ids, not {o.fmt!r}")
    tok = tokenizers.load(o.model)
    for line in iter_lines(o.file, o.encoding_errors):
        if o.fmt == "ids":
            out = " ".join(map(str, tok.encode(line)))
        else:
            out = " ".join(_escape(p) for p in tok.encode_pieces(line))
        write(out + "\n", flush=True)


@app.command("decode")
@run_command(DecodeOptions)
def decode(o: DecodeOptions) -> None:
    """Decode lines of space-separated pieces or ids back to text.

    Examples:

      seqtool tokenize train corpora/play-sample.txt --vocab-size 400 -o tok.model

      echo "12 7 301" | seqtool tokenize decode --model tok.model --format ids
    """
    from seqtool import tokenizers
    from seqtool.data.text import display_name, iter_lines
    from seqtool.errors import DataError, SeqtoolError

    if o.fmt not in ("pieces", "ids"):
        raise SeqtoolError(f"--format must be pieces or ids, not {o.fmt!r}")
    tok = tokenizers.load(o.model)
    name = display_name(o.file)
    for n, line in enumerate(iter_lines(o.file), 1):
        fields = line.split(" ") if line else []
        if o.fmt == "ids":
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


@dataclass(frozen=True)
class WordsOptions:
    file: str = fields.file_argument("Sentences, one per line; - or nothing reads stdin.")
    model: str | None = fields.model("Segmenter checkpoint (default: shipped English).")
    batch_size: int = fields.batch_size(256, "Lines segmented and written (flushed) together.")
    threads: int = fields.threads()
    encoding_errors: str = fields.encoding_errors()


@dataclass(frozen=True)
class SentencesOptions(WordsOptions):
    file: str = fields.file_argument("Running text, each line a paragraph; - reads stdin.")


@app.command("words")
@run_command(WordsOptions)
def words(o: WordsOptions) -> None:
    """Split sentences (one per line) into words, space-separated.

    Multiword tokens are split into their words (don't -> do n't), punctuation off words;
    one output line per input line.

    Example:

      echo "I don't know, do you?" | seqtool tokenize words
    """
    _segment(o, split=False)


@app.command("sentences")
@run_command(SentencesOptions)
def sentences(o: SentencesOptions) -> None:
    """Split running text (a paragraph per line) into sentences, one per line.

    Sentences are written as they are in the text. An empty line stays an empty line, so
    blank-line paragraph breaks are kept.

    Example:

      head -8 corpora/play-sample.txt | seqtool tokenize sentences | seqtool tokenize words
    """
    _segment(o, split=True)


def _segment(o: WordsOptions, split: bool) -> None:
    """The segmenter over the lines of a file or stdin, output flushed batch by batch."""
    from seqtool.data.stream import batched, open_lines
    from seqtool.data.text import decode_lines
    from seqtool.errors import SeqtoolError
    from seqtool.training import runtime

    check_encoding_errors(o.encoding_errors)
    if o.batch_size < 1:
        raise SeqtoolError("--batch-size must be >= 1")
    if o.file == "-" and stdin_is_terminal():
        raise SeqtoolError("no input: give a file or pipe text in")
    lines = open_lines(o.file)  # a missing file or a directory fails before the model loads
    runtime.set_threads(o.threads)
    segmenter = load_segmenter(o.model, "tokenize")

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

    text = decode_lines(lines, lines.name, o.encoding_errors)
    batched(text, o.batch_size, process, lines, len, SEGMENT_CHUNK_CHARS)
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
