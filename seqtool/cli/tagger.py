"""`seqtool tag`: the part-of-speech tagger (`seqtool train tagger` is generated from the
task's options, cli/options.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from seqtool.cli import fields
from seqtool.cli._common import (
    SEGMENT_CHUNK_CHARS,
    check_choice,
    check_encoding_errors,
    load_segmenter,
    stdin_is_terminal,
    write,
)
from seqtool.cli.options import run_command
from seqtool.config import opt

if TYPE_CHECKING:
    from seqtool.data.conllu import Sentence

FORMATS = ("default", "tsv", "conllu", "jsonl")
IN_FORMATS = ("auto", "text", "raw", "conllu")
CHUNK_TOKENS = 8192  # a batch also closes at this many words (long sentences, bounded memory)


@dataclass(frozen=True)
class TagOptions:
    file: str | None = fields.file_argument("Input file; - or none reads stdin.", None)
    model: str | None = fields.model("Tagger checkpoint (default: shipped English UPOS).")
    input_format: str = fields.fmt(
        "auto",
        "auto (a .conllu file is CoNLL-U; others and stdin: text) | text (one sentence per "
        "line) | raw (running text, each line a paragraph: sentences are split too) | conllu.",
        "--input-format",
    )
    fmt: str = fields.fmt(
        "default",
        "default (word/TAG) | tsv (word<TAB>tag, blank line after each sentence) | conllu | jsonl.",
    )
    pretokenized: bool = opt(
        False,
        "text input: the words are already split by spaces (no segmenter).",
        flags=("--pretokenized",),
    )
    segmenter: str | None = opt(
        None,
        "Segmenter that splits text into words and sentences (default: shipped English).",
        metavar="MODEL",
    )
    tokenize: bool = opt(
        False,
        "The default for text input, kept for older scripts: words by the segmenter.",
        flags=("--tokenize",),
    )
    batch_size: int = fields.batch_size(
        256,
        "Sentences tagged and written (flushed) together; a live feed is answered as soon as "
        "it pauses.",
    )
    threads: int = fields.threads()
    precision: str = fields.precision()
    device: str = fields.device()
    encoding_errors: str = fields.encoding_errors()


@run_command(TagOptions)
def tag(o: TagOptions) -> None:
    """Tag words with parts of speech; output streams in input order.

    Text is split into words (`don't` -> do n't) by the learnt segmenter; --pretokenized
    takes the spaces as word boundaries instead. CoNLL-U output from text carries `# text`,
    multiword ranges and SpaceAfter=No, and a flat tree (word 1 the root): there is no parser.

    Examples:

      echo "The old man the boats." | seqtool tag

      head -3 corpora/play-sample.txt | seqtool tag --input-format raw --format conllu > tagged.conllu

      echo "I do n't know , do you ?" | seqtool tag --pretokenized --format jsonl

      seqtool tag corpora/pos-sample.conllu --format conllu   # CoNLL-U by extension: fills the tag column

      cat corpora/pos-sample.conllu | seqtool tag --input-format conllu
    """
    from seqtool import api, paths
    from seqtool.data.conllu import Sentence, read_conllu, read_text_sentences
    from seqtool.data.stream import batched, open_lines
    from seqtool.data.text import check_input_path, decode_lines
    from seqtool.errors import SeqtoolError
    from seqtool.training import runtime

    check_choice("--format", o.fmt, FORMATS)
    input_format = o.input_format
    check_choice("--input-format", input_format, IN_FORMATS)
    check_encoding_errors(o.encoding_errors)
    if o.batch_size < 1:
        raise SeqtoolError("--batch-size must be >= 1")
    if o.precision not in ("fp32", "bf16"):
        raise SeqtoolError(f"--precision must be fp32 or bf16, not {o.precision!r}")
    path = o.file or "-"
    stdin = path == "-"
    if input_format == "auto":
        # an hf: dataset of word lists arrives as a .conllu copy (data/hub.py)
        conllu = not stdin and str(check_input_path(path)).lower().endswith(".conllu")
        input_format = "conllu" if conllu else "text"
        why = f"{path} is CoNLL-U by its extension: already tokenized"
    else:
        why = "CoNLL-U is already tokenized"
    given = {"--pretokenized": o.pretokenized, "--segmenter": o.segmenter, "--tokenize": o.tokenize}
    for flag in (f for f, v in given.items() if v):
        if input_format == "conllu":
            raise SeqtoolError(f"{flag} applies to text input; {why}")
        if flag != "--pretokenized" and o.pretokenized:
            raise SeqtoolError(f"{flag} and --pretokenized exclude each other")
    if o.pretokenized and input_format == "raw":
        raise SeqtoolError("--input-format raw needs the segmenter to split sentences")
    if stdin and stdin_is_terminal():
        raise SeqtoolError("no input: give a file or pipe sentences in (one per line)")
    lines = open_lines(path)  # a missing file or a directory fails here, before the model loads
    runtime.set_threads(o.threads)
    tagger = api.load(o.model or str(paths.default_model("tagger")), "tagger", "tag", o.device)
    field = tagger.config.tag_field
    text = decode_lines(lines, lines.name, o.encoding_errors)
    segment = input_format in ("text", "raw") and not o.pretokenized
    splitter = load_segmenter(o.segmenter, "tag") if segment else None

    def process(chunk: list[Sentence]) -> None:
        tags = tagger.predict([s.words for s in chunk])
        write(_tagged(chunk, tags, o.fmt, field), flush=True)

    read = 0  # input lines so far: jsonl from running text names each sentence's line

    def process_lines(chunk: list[str]) -> None:
        nonlocal read
        raw = input_format == "raw"
        groups = splitter.sentences(chunk, split=raw)
        for n, g in enumerate(groups, read + 1):
            if not g:  # an empty line: an empty sentence
                g.append(Sentence(words=[], metadata={"line": str(n), "text": ""} if raw else {}))
            for s in g if raw else ():
                s.metadata["line"] = str(n)
        read += len(chunk)
        process([s for g in groups for s in g])

    device = next(tagger.parameters()).device
    with runtime.autocast(device, o.precision, [tagger, splitter] if splitter else tagger):
        # Batches close at batch_size sentences or CHUNK_TOKENS words, as tag_stream's do;
        # a live feed that pauses gets what it has sent tagged at once.
        if segment:
            batched(text, o.batch_size, process_lines, lines, len, SEGMENT_CHUNK_CHARS)
        else:
            sentences = (
                read_conllu(text, lines.name, field)
                if input_format == "conllu"
                else read_text_sentences(text)
            )
            batched(sentences, o.batch_size, process, lines, lambda s: len(s.words), CHUNK_TOKENS)
    lines.close()


def _tagged(chunk: list[Sentence], tags: list[list[str]], fmt: str, field: str) -> str:
    from seqtool.data.conllu import to_conllu

    out = []
    for s, ts in zip(chunk, tags, strict=True):
        pairs = zip(s.words, ts, strict=True)
        if fmt == "default":
            out.append(" ".join(f"{w}/{t}" for w, t in pairs) + "\n")
        elif fmt == "tsv":
            out.append("".join(f"{w}\t{t}\n" for w, t in pairs) + "\n")
        elif fmt == "jsonl":
            obj: dict[str, Any] = {"words": s.words, "tags": ts}
            if "sent_id" in s.metadata:
                obj["sent_id"] = s.metadata["sent_id"]
            if "line" in s.metadata:  # a sentence of running text: its line and its text
                obj |= {"line": int(s.metadata["line"]), "text": s.metadata["text"]}
            out.append(json.dumps(obj, ensure_ascii=False) + "\n")
        elif s.words:  # conllu: an empty text line is no sentence
            out.append(to_conllu(s, ts, field))
    return "".join(out)
