"""`seqtool generate`: text from a language model (`seqtool train lm` is generated from
the task's options, cli/options.py)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from seqtool.cli import fields
from seqtool.cli._common import err_console, write
from seqtool.cli.options import run_command
from seqtool.config import opt


@dataclass(frozen=True)
class GenerateOptions:
    prompt: str = opt(
        "", "Text to start from (printed first).", flags=("--prompt", "-p"), metavar="TEXT"
    )
    model: str | None = fields.model(
        "Language-model checkpoint (default: the shipped Shakespeare model)."
    )
    length: int = opt(500, "Tokens (characters) to generate.", flags=("--length", "-n"))
    temperature: float = opt(
        1.0, "Sampling temperature; 0 is greedy.", flags=("--temperature", "-t"), metavar="T"
    )
    top_k: int = opt(0, "Sample among the k most likely tokens (0: all).", metavar="K")
    top_p: float = opt(
        1.0, "Nucleus sampling: smallest set with this probability mass.", metavar="P"
    )
    seed: int | None = opt(None, "Random seed for reproducible samples.", metavar="N")
    num_samples: int = opt(1, "Independent samples to draw.", flags=("--num-samples", "-k"))
    fmt: str = fields.fmt("text", "text (streamed) | jsonl (one object per sample).")
    threads: int = fields.threads(1, "CPU threads (1 is fastest for batch-1 generation).")
    device: str = fields.device()
    stats: bool = opt(False, "Print characters/second on stderr.", flags=("--stats",))


@run_command(GenerateOptions)
def generate(o: GenerateOptions) -> None:
    """Generate text from a language model, streamed as it is sampled.

    Examples:

      seqtool generate --prompt "ROMEO:" --length 300

      seqtool train lm corpora/play-sample.txt --hidden 64 --steps 30 --threads 1 -o my.safetensors

      seqtool generate -m my.safetensors --prompt "To be" --length 400 --temperature 0.8 --top-k 20 --seed 7

      seqtool generate --num-samples 3 --length 100 --format jsonl | jq -r .text

      seqtool generate --length 100000 | head -c 100
    """
    from seqtool import api, paths
    from seqtool.errors import SeqtoolError
    from seqtool.training import runtime

    if o.fmt not in ("text", "jsonl"):
        raise SeqtoolError(f"--format must be text or jsonl, not {o.fmt!r}")
    if o.length < 0 or o.num_samples < 1:
        raise SeqtoolError("--length must be >= 0 and --num-samples >= 1")
    runtime.set_threads(o.threads)
    path = o.model or str(paths.default_model("lm"))
    lm = api.load(path, "lm", "generate", o.device)
    lm.check_prompt(o.prompt)
    produced, t0 = 0, time.perf_counter()
    for k in range(o.num_samples):
        s = None if o.seed is None else o.seed + k
        pieces = api.generate(lm, o.prompt, o.length, o.temperature, o.top_k, o.top_p, s)
        if o.fmt == "jsonl":
            text = "".join(pieces)
            produced += len(text)
            write(
                json.dumps({"sample": k, "prompt": o.prompt, "text": o.prompt + text}) + "\n",
                flush=True,
            )
            continue
        if k > 0:
            write("\n\n")
        write(o.prompt, flush=True)
        buf: list[str] = []
        for piece in pieces:
            buf.append(piece)
            produced += len(piece)
            if "\n" in piece or len(buf) >= 32:
                write("".join(buf), flush=True)
                buf.clear()
        write("".join(buf) + "\n", flush=True)
    if o.stats:
        dt = time.perf_counter() - t0
        err_console().print(
            f"{produced} chars in {dt:.2f} s: {produced / max(dt, 1e-9):,.0f} chars/s"
        )
