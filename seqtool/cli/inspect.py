"""`seqtool inspect trace | gradients | params`: the RNN/LSTM/GRU lessons, run on real models.

Tables and charts are the result: stdout (`--format jsonl`: every number); status: stderr.
The work is done by `seqtool.inspect`, imported inside each command: no torch on import.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from seqtool.cli._common import status, stdin_is_terminal, write
from seqtool.cli.evaluate import print_results
from seqtool.errors import SeqtoolError

app = typer.Typer(
    help="Look inside recurrent networks: hidden states and gates step by step, gradient "
    "decay through time, parameter counts per cell.",
    no_args_is_help=True,
)


def _check_format(fmt: str) -> None:
    if fmt not in ("table", "jsonl"):
        raise SeqtoolError(f"--format must be table or jsonl, not {fmt!r}")


def _stdin_lines() -> list[str]:
    from seqtool.data.text import iter_lines

    lines = [ln for ln in iter_lines("-") if ln.strip()]
    if not lines:
        raise SeqtoolError("no text on stdin")
    return lines


def _load(model: str | None) -> Any:
    from seqtool import api, paths

    return api.load(model or str(paths.default_model("lm")))


# The command signatures are hand-wrapped (`# fmt: skip`), two lines or so per option, so
# that each command stays short enough to read at once.


@app.command("trace")
def trace(
    text: Annotated[str | None, typer.Argument(metavar="TEXT",
        help="Text to step through; - or nothing reads stdin (one text per line).")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", metavar="MODEL",
        help="Any seqtool checkpoint (default: the shipped LM).")] = None,
    layer: Annotated[list[int] | None, typer.Option("--layer", "-l", metavar="K",
        help="Layer to show, 0 = nearest the input; repeat for more (default: all).")] = None,
    units: Annotated[bool, typer.Option(
        "--units", help="Show every gate's per-unit activations.")] = False,
    top: Annotated[int, typer.Option(metavar="N",
        help="Most active units listed when H is too large to print whole.")] = 4,
    fmt: Annotated[str, typer.Option("--format", metavar="FORMAT",
        help="table (for people) | jsonl (every number, for machines); both on stdout.")
    ] = "table",
    threads: Annotated[int, typer.Option(metavar="N", help="CPU threads.")] = 1,
) -> None:  # fmt: skip
    """Step TEXT through a model's encoder and show, per token and layer, the hidden state,
    the LSTM cell state and each gate's activation.

    The states come from the lesson equations (backbone/cells.py) run on the checkpoint's own
    weights; the status line reports how closely they match the fused torch module.

    Examples:

      seqtool inspect trace "the cat sat" --model lm.safetensors

      seqtool inspect trace "This movie was great" -m sent.safetensors --layer 1 --format jsonl

      echo "the cat sat" | seqtool inspect trace -m lm.safetensors --units
    """
    from seqtool.inspect import render
    from seqtool.inspect.trace import trace as run_trace
    from seqtool.training import runtime

    _check_format(fmt)
    runtime.set_threads(threads)
    if text is None and stdin_is_terminal():
        raise SeqtoolError("give TEXT as an argument or pipe it on stdin")
    texts = _stdin_lines() if text in (None, "-") else [text]
    m = _load(model)
    for i, t in enumerate(texts):
        tr = run_trace(m, t, sorted(set(layer)) if layer else None)
        status(render.trace_status(m.task, tr))
        if fmt == "jsonl":
            for obj in render.trace_records(tr, i):
                write(json.dumps(obj) + "\n", flush=True)
        else:
            print_results(*render.trace_tables(tr, units, top))


@app.command("gradients")
def gradients(
    text: Annotated[str | None, typer.Argument(metavar="TEXT",
        help="With --model: text to measure on; - reads stdin (a sequence per line). "
        "Default: random token sequences.")] = None,
    cells: Annotated[str, typer.Option(metavar="CELL,...",
        help="Fresh cells to compare, comma-separated: rnn,lstm,gru.")] = "rnn,lstm,gru",
    length: Annotated[int, typer.Option(
        metavar="N", help="Sequence length (time steps).")] = 100,
    hidden: Annotated[int, typer.Option(
        metavar="N", help="Hidden units of the fresh cells.")] = 64,
    input_size: Annotated[int, typer.Option(
        "--input", metavar="N", help="Input vector size of the fresh cells.")] = 32,
    layers: Annotated[int, typer.Option(metavar="N",
        help="Stacked layers of the fresh cells (the top one is measured).")] = 1,
    batch: Annotated[int, typer.Option(
        metavar="N", help="Random sequences per repeat (fresh cells).")] = 16,
    init: Annotated[str, typer.Option(metavar="INIT",
        help="chrono (gate biases for time scales up to --length steps, Tallec & Ollivier "
        "2018: what a gated cell can keep) | torch (torch's default init, as `seqtool "
        "train` starts: every gate near 0.5) | forget-bias (torch's, LSTM forget bias +1). "
        "The tanh RNN has no gate: torch's init under all three.")] = "chrono",
    weight_scale: Annotated[float, typer.Option(metavar="X",
        help="Multiply every W_hh by this: < 1 vanishes faster, > 1 can explode.")] = 1.0,
    clip: Annotated[float | None, typer.Option(metavar="NORM", help="Also measure with the "
        "gradient into every step's state clipped to this norm.")] = None,
    repeats: Annotated[int, typer.Option(metavar="N",
        help="Seeds averaged (geometric mean): seed, seed+1, ...")] = 3,
    seed: Annotated[int, typer.Option(
        metavar="N", help="Random seed (weights, inputs, readout).")] = 0,
    model: Annotated[str | None, typer.Option("--model", "-m", metavar="MODEL",
        help="Measure this checkpoint's encoder instead of fresh cells.")] = None,
    layer: Annotated[int, typer.Option(metavar="K",
        help="With --model: layer measured (-1: the top one).")] = -1,
    threshold: Annotated[float, typer.Option(metavar="FRACTION",
        help="Effective memory: first distance where the norm is below this fraction "
        "of its last-step value.")] = 1e-3,
    plot: Annotated[str | None, typer.Option(metavar="FILE.png", help="Draw the curves to "
        "this PNG file (needs matplotlib: pip install 'seqtool[plot]').")] = None,
    fmt: Annotated[str, typer.Option("--format", metavar="FORMAT", help="table (for people) "
        "| jsonl (one curve per line with the full series); both on stdout.")] = "table",
    threads: Annotated[int, typer.Option(metavar="N", help="CPU threads.")] = 1,
) -> None:  # fmt: skip
    """Measure how gradient decays back through time: back-propagate a loss at the last
    step and report ‖∂L/∂h_t‖ against the distance from it, the decay per step and the
    "effective memory" (the distance where the norm falls below 1e-3 of its last-step value).

    The loss is a random linear readout of the last output; inputs are N(0, 1) vectors (or
    the model's own inputs for TEXT); computed in float64 through the lesson equations.

    Examples:

      seqtool inspect gradients --cells rnn,lstm,gru --length 100 --hidden 64

      seqtool inspect gradients --cells rnn --weight-scale 4 --clip 1   # explodes, then clipped

      seqtool inspect gradients --cells rnn,lstm,gru --plot decay.png

      seqtool inspect gradients --model lm.safetensors "To be, or not to be, that is the question"
    """
    from seqtool.inspect import render  # torch-free: the checks below fail fast

    _check_format(fmt)
    if not 0 < threshold < 1:
        raise SeqtoolError(f"--threshold must be in (0, 1), not {threshold}")
    if plot:
        render.check_plot(plot)  # before torch loads and the curves are computed
    from seqtool.inspect import gradients as grad
    from seqtool.training import runtime

    runtime.set_threads(threads)
    if model is None:
        if text is not None:
            raise SeqtoolError("TEXT needs --model (fresh cells run on random inputs)")
        curves = grad.fresh_gradients(
            grad.parse_cells(cells), length, hidden, input_size, layers, batch,
            weight_scale, clip, repeats, seed, init, threshold,
        )  # fmt: skip
        what = render.fresh_setup(curves[0].settings)
    else:
        texts = None if text is None else (_stdin_lines() if text == "-" else [text])
        m = _load(model)
        curves = grad.model_gradients(
            m, texts, length, layer, weight_scale, clip, repeats, seed, threshold
        )
        src = "given text" if texts else f"random {length}-token sequences"
        what = render.model_setup(model, m.task, curves[0].settings, src)
    if fmt == "jsonl":
        for c in curves:
            write(json.dumps(render.curve_record(c)) + "\n", flush=True)
    else:
        print_results(what, render.gradient_table(curves), render.terminal_chart(curves))
    if plot:
        render.plot(curves, plot, what)
        status(f"wrote {plot}")


@app.command("params")
def params(
    model: Annotated[str | None, typer.Argument(metavar="MODEL",
        help="A checkpoint to count (any task). Without it: the sizes below.")] = None,
    cell: Annotated[str, typer.Option(metavar="CELL", help="rnn | lstm | gru.")] = "lstm",
    input_size: Annotated[int, typer.Option("--input", metavar="N",
        help="Input vector size (the embedding size with --vocab).")] = 64,
    hidden: Annotated[int, typer.Option(
        metavar="N", help="Hidden units per layer and direction.")] = 256,
    layers: Annotated[int, typer.Option(metavar="N", help="Stacked layers.")] = 1,
    bidirectional: Annotated[bool, typer.Option(
        "--bidirectional/--unidirectional", help="Two directions per layer.")] = False,
    vocab: Annotated[int | None, typer.Option(
        metavar="N", help="Add a token embedding of this vocabulary size.")] = None,
    fmt: Annotated[str, typer.Option("--format", metavar="FORMAT",
        help="table (for people) | jsonl (for machines); both on stdout.")] = "table",
) -> None:  # fmt: skip
    """Count parameters per component (embedding, each layer and direction, heads) of a
    checkpoint or of a recurrent stack of the given sizes; for sizes, also compare the three
    cells (LSTM = 4x, GRU = 3x a vanilla RNN) against the lesson's formula.

    Examples:

      seqtool inspect params --cell lstm --input 10 --hidden 64 --layers 2

      seqtool inspect params sent.safetensors

      seqtool inspect params lm.safetensors --format jsonl | jq .params
    """
    from seqtool.inspect import params as counts
    from seqtool.inspect import render

    _check_format(fmt)
    if model is not None:
        m = _load(model)
        title = f"{model} ({m.task})"
        compare = None
    else:
        if input_size < 1:
            raise SeqtoolError(f"--input must be >= 1, not {input_size}")
        m = counts.config_model(
            cell, input_size, hidden, layers, bidirectional, vocab, input_size if vocab else None
        )
        title = render.sizes_title(cell, input_size, hidden, layers, bidirectional, vocab)
        compare = counts.compare_cells(input_size, hidden, layers, bidirectional)
    rows, total = counts.checked_counts(m)
    if fmt == "jsonl":
        for obj in render.param_records(rows, total, compare):
            write(json.dumps(obj) + "\n")
        return
    shown = [title, render.params_table(rows, total)]
    if compare:
        shown += [render.cells_table(compare), render.CELLS_FORMULA]
    print_results(*shown)
