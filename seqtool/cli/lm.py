"""`seqtool generate`: text from a language model (`seqtool train lm` is generated from
the task's options, cli/options.py)."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer

from seqtool.cli._common import err_console, model_option, write


def generate(
    prompt: Annotated[
        str,
        typer.Option("--prompt", "-p", metavar="TEXT", help="Text to start from (printed first)."),
    ] = "",
    model: Annotated[
        str | None,
        model_option("Language-model checkpoint (default: the shipped Shakespeare model)."),
    ] = None,
    length: Annotated[
        int, typer.Option("--length", "-n", metavar="N", help="Tokens (characters) to generate.")
    ] = 500,
    temperature: Annotated[
        float,
        typer.Option("--temperature", "-t", metavar="T", help="Sampling temperature; 0 is greedy."),
    ] = 1.0,
    top_k: Annotated[
        int, typer.Option(metavar="K", help="Sample among the k most likely tokens (0: all).")
    ] = 0,
    top_p: Annotated[
        float,
        typer.Option(
            metavar="P", help="Nucleus sampling: smallest set with this probability mass."
        ),
    ] = 1.0,
    seed: Annotated[
        int | None, typer.Option(metavar="N", help="Random seed for reproducible samples.")
    ] = None,
    num_samples: Annotated[
        int, typer.Option("--num-samples", "-k", metavar="N", help="Independent samples to draw.")
    ] = 1,
    fmt: Annotated[
        str,
        typer.Option(
            "--format", metavar="FORMAT", help="text (streamed) | jsonl (one object per sample)."
        ),
    ] = "text",
    threads: Annotated[
        int, typer.Option(metavar="N", help="CPU threads (1 is fastest for batch-1 generation).")
    ] = 1,
    stats: Annotated[
        bool, typer.Option("--stats", help="Print characters/second on stderr.")
    ] = False,
) -> None:
    """Generate text from a language model, streamed as it is sampled.

    Examples:

      seqtool generate --prompt "ROMEO:"

      seqtool generate -m my.safetensors --prompt "To be" --length 400 --temperature 0.8 --top-k 20 --seed 7

      seqtool generate --num-samples 3 --format jsonl | jq -r .text

      seqtool generate --length 100000 | head -c 100
    """
    from seqtool import api, paths
    from seqtool.errors import SeqtoolError
    from seqtool.training import runtime

    if fmt not in ("text", "jsonl"):
        raise SeqtoolError(f"--format must be text or jsonl, not {fmt!r}")
    if length < 0 or num_samples < 1:
        raise SeqtoolError("--length must be >= 0 and --num-samples >= 1")
    runtime.set_threads(threads)
    path = model or str(paths.default_model("lm"))
    lm = api.load(path, "lm", "generate")
    lm.check_prompt(prompt)
    produced, t0 = 0, time.perf_counter()
    for k in range(num_samples):
        s = None if seed is None else seed + k
        pieces = api.generate(lm, prompt, length, temperature, top_k, top_p, s)
        if fmt == "jsonl":
            text = "".join(pieces)
            produced += len(text)
            write(
                json.dumps({"sample": k, "prompt": prompt, "text": prompt + text}) + "\n",
                flush=True,
            )
            continue
        if k > 0:
            write("\n\n")
        write(prompt, flush=True)
        buf: list[str] = []
        for piece in pieces:
            buf.append(piece)
            produced += len(piece)
            if "\n" in piece or len(buf) >= 32:
                write("".join(buf), flush=True)
                buf.clear()
        write("".join(buf) + "\n", flush=True)
    if stats:
        dt = time.perf_counter() - t0
        err_console().print(
            f"{produced} chars in {dt:.2f} s: {produced / max(dt, 1e-9):,.0f} chars/s"
        )
