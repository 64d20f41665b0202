"""`seqtool train translator` and `seqtool translate`: the attention encoder-decoder."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from seqtool.cli._common import (
    run_training,
    status,
    stdin_is_terminal,
    training_command,
    write,
)


@training_command(
    cell="lstm",
    layers=1,
    hidden=256,
    embedding_dim=256,
    dropout=0.2,
    embedding_dropout=0.1,
    bidirectional=True,
)
def train(
    files: Annotated[
        list[str] | None,
        typer.Argument(help="TSV file of `source<TAB>target` lines; - reads stdin."),
    ] = None,
    source: Annotated[
        str | None, typer.Option(help="Source-side file (with --target: line-aligned files).")
    ] = None,
    target: Annotated[
        str | None, typer.Option(help="Target-side file, line-aligned with --source.")
    ] = None,
    dev: Annotated[str | None, typer.Option(help="Dev TSV for BLEU, chrF and dev losses.")] = None,
    dev_fraction: Annotated[
        float,
        typer.Option(
            help="Hold out this tail fraction of the pairs as dev when --dev is not given."
        ),
    ] = 0.0,
    attention: Annotated[
        str,
        typer.Option(
            help="none (plain context-vector seq2seq) | additive (Bahdanau) | dot (Luong)."
        ),
    ] = "dot",
    input_feeding: Annotated[
        bool,
        typer.Option(
            "--input-feeding/--no-input-feeding",
            help="Feed the previous attentional vector to the decoder (Luong); steps the decoder.",
        ),
    ] = False,
    decoder_layers: Annotated[int, typer.Option(help="Decoder layers (0: as --layers).")] = 0,
    decoder_hidden: Annotated[
        int, typer.Option(help="Decoder hidden size (0: the encoder's output size).")
    ] = 0,
    output_dropout: Annotated[
        float | None, typer.Option(help="Dropout on the attentional vector (default: --dropout).")
    ] = None,
    label_smoothing: Annotated[
        float, typer.Option(help="Label smoothing of the training loss.")
    ] = 0.1,
    teacher_forcing: Annotated[
        float,
        typer.Option(
            help="Teacher-forcing ratio: probability of feeding the reference token rather than "
            "the model's own prediction (the final ratio when a schedule decays it from 1.0)."
        ),
    ] = 1.0,
    teacher_forcing_schedule: Annotated[
        str,
        typer.Option(
            help="constant | linear | inverse-sigmoid (decay from 1.0 to --teacher-forcing)."
        ),
    ] = "constant",
    tokenizer: Annotated[
        str,
        typer.Option(
            help="bpe | unigram (sentencepiece trained on the pairs) or a tokenizer file."
        ),
    ] = "bpe",
    vocab_size: Annotated[
        int, typer.Option(help="Vocabulary size (per side with --separate-vocab).")
    ] = 8000,
    separate_vocab: Annotated[
        bool,
        typer.Option("--separate-vocab", help="One tokenizer per side instead of a joint one."),
    ] = False,
    tokenizer_sample: Annotated[
        int,
        typer.Option(
            help="bpe/unigram learn from at most this many characters of the pairs (every "
            "k-th pair; bounds memory on big files); 0: all pairs."
        ),
    ] = 10_000_000,
    max_length: Annotated[
        int, typer.Option(help="Skip training pairs longer than this many tokens.")
    ] = 100,
    encoding_errors: Annotated[
        str, typer.Option(help="strict | replace | ignore for non-UTF-8 input.")
    ] = "strict",
    *,
    train_cfg=None,
    backbone=None,
    run=None,
) -> None:
    """Train an encoder-decoder translator (bidirectional encoder, attention decoder).

    Examples:

      seqtool train translator train.tsv --dev dev.tsv -o en-de.safetensors

      seqtool train translator --source train.en --target train.de --dev dev.tsv -o m.safetensors

      seqtool train translator train.tsv --dev dev.tsv --teacher-forcing 0.5 --attention additive

      seqtool train translator train.tsv --attention none --cell gru   # plain seq2seq
    """
    run_training(
        "translator",
        train_cfg,
        run,
        files=files,
        source=source,
        target=target,
        backbone=backbone,
        dev=dev,
        dev_fraction=dev_fraction,
        attention=attention,
        input_feeding=input_feeding,
        decoder_layers=decoder_layers,
        decoder_hidden=decoder_hidden,
        output_dropout=output_dropout,
        label_smoothing=label_smoothing,
        teacher_forcing=teacher_forcing,
        teacher_forcing_schedule=teacher_forcing_schedule,
        tokenizer=tokenizer,
        tokenizer_sample=tokenizer_sample,
        vocab_size=vocab_size,
        separate_vocab=separate_vocab,
        max_length=max_length,
        encoding_errors=encoding_errors,
    )


def translate(
    file: Annotated[
        str, typer.Argument(help="Source sentences, one per line; - or nothing reads stdin.")
    ] = "-",
    model: Annotated[
        str | None,
        typer.Option(
            "--model", "-m", help="Translator checkpoint (default: the shipped en-de model)."
        ),
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
    threads: Annotated[int, typer.Option(help="CPU threads (0: torch's default).")] = 1,
    encoding_errors: Annotated[
        str, typer.Option(help="strict | replace | ignore for non-UTF-8 input.")
    ] = "strict",
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
