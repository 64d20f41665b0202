"""`seqtool inspect trace | gradients | params`: the RNN/LSTM/GRU lessons, run on real models.

Tables and charts go to stderr; `--format jsonl` writes every number to stdout.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any

import typer

from seqtool.cli._common import err_console, status, stdin_is_terminal, write
from seqtool.errors import SeqtoolError

app = typer.Typer(
    help="Look inside recurrent networks: hidden states and gates step by step, gradient "
    "decay through time, parameter counts per cell.",
    no_args_is_help=True,
)

_FORMATS = ("table", "jsonl")


def _check_format(fmt: str) -> None:
    if fmt not in _FORMATS:
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


def _show_token(tok: str) -> str:
    return tok.replace("\n", "\\n").replace("\t", "\\t").replace(" ", "␣")


# -- trace -------------------------------------------------------------------------------------


@app.command("trace")
def trace(
    text: Annotated[
        str | None,
        typer.Argument(help="Text to step through; - or nothing reads stdin (one text per line)."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Any seqtool checkpoint (default: the shipped LM)."),
    ] = None,
    layer: Annotated[
        list[int] | None,
        typer.Option(
            "--layer", "-l", help="Layer(s) to show, 0 = nearest the input (default: all)."
        ),
    ] = None,
    units: Annotated[
        bool, typer.Option("--units", help="Show every gate's per-unit activations.")
    ] = False,
    top: Annotated[
        int, typer.Option(help="Most active units listed when H is too large to print whole.")
    ] = 4,
    fmt: Annotated[
        str, typer.Option("--format", help="table (stderr) | jsonl (every number, stdout).")
    ] = "table",
    threads: Annotated[int, typer.Option(help="CPU threads.")] = 1,
) -> None:
    """Step TEXT through a model's encoder and show, per token and layer, the hidden state,
    the LSTM cell state and each gate's activation.

    The states come from the lesson equations (backbone/cells.py) run on the checkpoint's own
    weights; the status line reports how closely they match the fused torch module.

    Examples:

      seqtool inspect trace "the cat sat" --model lm.safetensors

      seqtool inspect trace "This movie was great" -m sent.safetensors --layer 1 --format jsonl

      echo "the cat sat" | seqtool inspect trace -m lm.safetensors --units
    """
    from seqtool import inspection
    from seqtool.training import runtime

    _check_format(fmt)
    runtime.set_threads(threads)
    if text is None and stdin_is_terminal():
        raise SeqtoolError("give TEXT as an argument or pipe it on stdin")
    texts = _stdin_lines() if text in (None, "-") else [text]
    m = _load(model)
    for i, t in enumerate(texts):
        tr = inspection.trace(m, t, sorted(set(layer)) if layer else None)
        status(
            f"{m.task} encoder: {tr.cell}, {tr.layers} layer(s), "
            f"{'bidirectional' if tr.directions == 2 else 'unidirectional'}, H={tr.hidden_size}, "
            f"{len(tr.tokens)} tokens; lesson cells match the fused module to {tr.max_abs_diff:.1e}"
        )
        if fmt == "jsonl":
            for r in tr.records:
                obj = {
                    "text": i,
                    "t": r.t,
                    "token": r.token,
                    "layer": r.layer,
                    "direction": inspection.DIRECTIONS[r.direction],
                    "hidden_norm": r.hidden_norm,
                    "hidden": r.hidden,
                }
                if r.cell is not None:
                    obj["cell"] = r.cell
                if r.gates:
                    obj["gate_means"] = r.gate_means()
                    obj["gates"] = r.gates
                write(json.dumps(obj) + "\n", flush=True)
        else:
            _trace_tables(tr, units, top)


def _vector(v: list[float], top: int) -> str:
    if len(v) <= 8:
        return " ".join(f"{x:+.2f}" for x in v)
    norm = math.sqrt(sum(x * x for x in v))
    best = sorted(range(len(v)), key=lambda j: -abs(v[j]))[:top]
    return f"‖·‖ {norm:.2f}  " + " ".join(f"u{j} {v[j]:+.2f}" for j in best)


def _heat(v: list[float], width: int = 48) -> Any:
    """One coloured block per unit: blue positive, red negative, brightness |value|."""
    from rich.text import Text

    out = Text()
    for x in v[:width]:
        a = min(1.0, abs(x))
        lo = int(255 * (1 - a))
        color = f"rgb({lo},{lo},255)" if x >= 0 else f"rgb(255,{lo},{lo})"
        out.append("█", style=color)
    if len(v) > width:
        out.append("…")
    return out


def _trace_tables(tr: Any, units: bool, top: int) -> None:
    from rich.table import Table

    from seqtool.inspection import DIRECTIONS, GATES

    gates = GATES[tr.cell]
    for k in tr.shown_layers:
        for d in range(tr.directions):
            table = Table(
                title=f"layer {k} {DIRECTIONS[d]}: {tr.cell}, H={tr.hidden_size}",
                title_justify="left",
            )
            for col in ("t", "token", "h", "heat h"):
                table.add_column(col, justify="right" if col == "t" else "left")
            if tr.cell == "lstm":
                table.add_column("c")
            for g in gates:
                label = {"candidate": "c̃" if tr.cell == "lstm" else "h̃"}.get(g, f"{g} gate")
                table.add_column(label, justify="right")
            for r in tr.records:
                if r.layer != k or r.direction != d:
                    continue
                row = [str(r.t), _show_token(r.token), _vector(r.hidden, top), _heat(r.hidden)]
                if r.cell is not None:
                    row.append(_vector(r.cell, top))
                means = r.gate_means()
                for g in gates:
                    cell = f"{means[g]:.2f}"
                    if units:
                        cell += " [" + " ".join(f"{x:.2f}" for x in r.gates[g]) + "]"
                    row.append(cell)
                table.add_row(*row)
            err_console().print(table)


# -- gradients ---------------------------------------------------------------------------------


@app.command("gradients")
def gradients(
    text: Annotated[
        str | None,
        typer.Argument(
            help="With --model: text to measure on; - reads stdin (a sequence per line). "
            "Default: random token sequences."
        ),
    ] = None,
    cells: Annotated[
        str, typer.Option(help="Fresh cells to compare, comma-separated: rnn,lstm,gru.")
    ] = "rnn,lstm,gru",
    length: Annotated[int, typer.Option(help="Sequence length (time steps).")] = 100,
    hidden: Annotated[int, typer.Option(help="Hidden units of the fresh cells.")] = 64,
    input_size: Annotated[
        int, typer.Option("--input", help="Input vector size of the fresh cells.")
    ] = 32,
    layers: Annotated[
        int, typer.Option(help="Stacked layers of the fresh cells (the top one is measured).")
    ] = 1,
    batch: Annotated[int, typer.Option(help="Random sequences per repeat (fresh cells).")] = 16,
    init: Annotated[
        str,
        typer.Option(
            help="chrono (gate biases for time scales up to --length steps, Tallec & Ollivier "
            "2018: what a gated cell can keep) | torch (torch's default init, as `seqtool "
            "train` starts: every gate near 0.5) | forget-bias (torch's, LSTM forget bias +1). "
            "The tanh RNN has no gate: torch's init under all three."
        ),
    ] = "chrono",
    weight_scale: Annotated[
        float,
        typer.Option(help="Multiply every W_hh by this: < 1 vanishes faster, > 1 can explode."),
    ] = 1.0,
    clip: Annotated[
        float | None,
        typer.Option(
            help="Also measure with the gradient into every step's state clipped to this norm."
        ),
    ] = None,
    repeats: Annotated[
        int, typer.Option(help="Seeds averaged (geometric mean): seed, seed+1, ...")
    ] = 3,
    seed: Annotated[int, typer.Option(help="Random seed (weights, inputs, readout).")] = 0,
    model: Annotated[
        str | None,
        typer.Option(
            "--model", "-m", help="Measure this checkpoint's encoder instead of fresh cells."
        ),
    ] = None,
    layer: Annotated[
        int, typer.Option(help="With --model: layer measured (-1: the top one).")
    ] = -1,
    threshold: Annotated[
        float,
        typer.Option(
            help="Effective memory: first distance where the norm is below this fraction "
            "of its last-step value."
        ),
    ] = 1e-3,
    plot: Annotated[
        str | None,
        typer.Option(
            help="Draw the curves to this PNG file (needs matplotlib: pip install 'seqtool[plot]')."
        ),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="table (stderr) | jsonl (one curve per line with the full series, stdout).",
        ),
    ] = "table",
    threads: Annotated[int, typer.Option(help="CPU threads.")] = 1,
) -> None:
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
    from seqtool import inspection
    from seqtool.training import runtime

    _check_format(fmt)
    runtime.set_threads(threads)
    if not 0 < threshold < 1:
        raise SeqtoolError(f"--threshold must be in (0, 1), not {threshold}")
    if model is None:
        if text is not None:
            raise SeqtoolError("TEXT needs --model (fresh cells run on random inputs)")
        curves = inspection.fresh_gradients(
            inspection.parse_cells(cells), length, hidden, input_size, layers, batch,
            weight_scale, clip, repeats, seed, init, threshold,
        )  # fmt: skip
        what = (
            f"fresh cells ({init} init), H={hidden}, input {input_size}, {layers} layer(s), "
            f"length {length}, {batch} sequences x {repeats} seed(s)"
        )
    else:
        texts = None if text is None else (_stdin_lines() if text == "-" else [text])
        m = _load(model)
        curves = inspection.model_gradients(
            m, texts, length, layer, weight_scale, clip, repeats, seed, threshold
        )
        s = curves[0].settings
        src = "given text" if texts else f"random {length}-token sequences"
        what = f"{model} ({m.task}), encoder layer {s['layer']} forward, {s['sequences']} x {src}"
    if weight_scale != 1.0:
        what += f", W_hh x {weight_scale:g}"
    if fmt == "jsonl":
        for c in curves:
            write(json.dumps(_curve_dict(c)) + "\n", flush=True)
    else:
        _gradient_table(curves, what)
        _terminal_chart(curves)
    if plot:
        _plot(curves, plot, what)
        status(f"wrote {plot}")


def _curve_dict(c: Any) -> dict[str, Any]:
    return {
        "label": c.label,
        "cell": c.cell,
        "clip": c.clip,
        "effective_memory": c.effective_memory,
        "threshold": c.threshold,
        "decay_per_step": c.decay_per_step,
        "param_grad_norm": c.param_grad_norm,
        "settings": c.settings,
        "norms": c.norms,
        "relative": c.relative,
    }


def _gradient_table(curves: list[Any], what: str) -> None:
    from rich.table import Table

    T = len(curves[0].norms)
    marks = [d for d in (1, 5, 10, 20, 50, 100, 200, 500) if d < T - 1] + [T - 1]
    table = Table(
        title=f"‖∂L/∂h_t‖ by distance d from the last step, relative to d=0 — {what}",
        title_justify="left",
    )
    table.add_column("cell")
    table.add_column("effective memory", justify="right")
    table.add_column("decay/step", justify="right")
    table.add_column("‖∂L/∂h‖ last", justify="right")
    for d in marks:
        table.add_column(f"d={d}", justify="right")
    table.add_column("‖∂L/∂θ‖", justify="right")
    for c in curves:
        eff = str(c.effective_memory) if c.effective_memory is not None else f"> {T - 1}"
        table.add_row(
            c.label,
            eff,
            f"x{c.decay_per_step:.3f}",
            f"{c.norms[0]:.3g}",
            *[f"{c.relative[d]:.1e}" for d in marks],
            f"{c.param_grad_norm:.3g}",
        )
    err_console().print(table)


_MARKS = ["red", "green", "blue", "magenta", "cyan", "yellow"]


def _terminal_chart(curves: list[Any], width: int = 64, height: int = 12) -> None:
    """log10(relative norm) against distance, one coloured letter per curve."""
    from rich.text import Text

    T = len(curves[0].relative)
    cols = min(width, T)
    xs = [round(i * (T - 1) / max(cols - 1, 1)) for i in range(cols)]
    logs = [[math.log10(max(c.relative[x], 1e-300)) for x in xs] for c in curves]
    top = max(0.0, max(max(v) for v in logs))
    bottom = max(min(min(v) for v in logs), top - 20)
    bottom = min(bottom, top - 1)
    grid = [[(" ", "")] * cols for _ in range(height)]
    for n, (c, v) in enumerate(zip(curves, logs, strict=True)):
        mark = (c.label[0].upper() if c.clip is None else c.label[0]), _MARKS[n % len(_MARKS)]
        for j, y in enumerate(v):
            if y < bottom:
                continue
            row = round((top - y) / (top - bottom) * (height - 1))
            grid[row][j] = mark
    out = Text()
    for r in range(height):
        level = top - r * (top - bottom) / (height - 1)
        label = f"1e{round(level):+d}" if top - bottom >= height else f"1e{level:+.1f}"
        out.append(label.rjust(8) + " │")
        for ch, style in grid[r]:
            out.append(ch, style=style)
        out.append("\n")
    out.append(" " * 9 + "└" + "─" * cols + "\n")
    out.append(" " * 10 + "0" + f"distance from the last step → {T - 1}".rjust(cols - 1) + "\n")
    legend = "   ".join(
        f"{c.label[0].upper() if c.clip is None else c.label[0]} {c.label}" for c in curves
    )
    out.append(
        " " * 10 + legend + f"   (relative norm; effective memory below {curves[0].threshold:g})"
    )
    err_console().print(out)


def _plot(curves: list[Any], path: str, what: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SeqtoolError(
            "--plot needs matplotlib: pip install 'seqtool[plot]' (or pip install matplotlib)"
        ) from None
    fig, ax = plt.subplots(figsize=(8, 5))
    for c in curves:
        eff = c.effective_memory if c.effective_memory is not None else f"> {len(c.norms) - 1}"
        ax.semilogy(range(len(c.relative)), c.relative, label=f"{c.label} (memory {eff})")
    ax.axhline(curves[0].threshold, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("distance from the last step (time steps)")
    ax.set_ylabel("‖∂L/∂h_t‖ / ‖∂L/∂h_T‖")
    ax.set_title(what, fontsize=8)
    ax.legend()
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=120)
    except OSError as e:
        raise SeqtoolError(f"{path}: {e.strerror or e}") from None
    finally:
        plt.close(fig)


# -- params ------------------------------------------------------------------------------------


@app.command("params")
def params(
    model: Annotated[
        str | None,
        typer.Argument(help="A checkpoint to count (any task). Without it: the sizes below."),
    ] = None,
    cell: Annotated[str, typer.Option(help="rnn | lstm | gru.")] = "lstm",
    input_size: Annotated[
        int, typer.Option("--input", help="Input vector size (the embedding size with --vocab).")
    ] = 64,
    hidden: Annotated[int, typer.Option(help="Hidden units per layer and direction.")] = 256,
    layers: Annotated[int, typer.Option(help="Stacked layers.")] = 1,
    bidirectional: Annotated[
        bool, typer.Option("--bidirectional/--unidirectional", help="Two directions per layer.")
    ] = False,
    vocab: Annotated[
        int | None, typer.Option(help="Add a token embedding of this vocabulary size.")
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="table (stderr) | jsonl (stdout).")
    ] = "table",
) -> None:
    """Count parameters per component (embedding, each layer and direction, heads) of a
    checkpoint or of a recurrent stack of the given sizes; for sizes, also compare the three
    cells (LSTM = 4x, GRU = 3x a vanilla RNN) against the lesson's formula.

    Examples:

      seqtool inspect params --cell lstm --input 10 --hidden 64 --layers 2

      seqtool inspect params sent.safetensors

      seqtool inspect params lm.safetensors --format jsonl | jq .params
    """
    from seqtool import inspection

    _check_format(fmt)
    if model is not None:
        m = _load(model)
        title = f"{model} ({m.task})"
        compare = None
    else:
        if input_size < 1:
            raise SeqtoolError(f"--input must be >= 1, not {input_size}")
        m = inspection.config_model(
            cell, input_size, hidden, layers, bidirectional, vocab, input_size if vocab else None
        )
        title = (
            f"{cell}, input {input_size}, hidden {hidden}, {layers} layer(s)"
            + (", bidirectional" if bidirectional else "")
            + (f", vocabulary {vocab}" if vocab else "")
        )
        compare = inspection.compare_cells(input_size, hidden, layers, bidirectional)
    rows = inspection.count_params(m)
    total = sum(p.numel() for p in m.parameters())
    counted = sum(r.params for r in rows)
    if counted != total:  # the rows partition named_parameters; a mismatch is a bug
        raise RuntimeError(f"per-component counts sum to {counted}, the model has {total}")
    if fmt == "jsonl":
        for r in rows:
            write(
                json.dumps({"component": r.component, "detail": r.detail, "params": r.params})
                + "\n"
            )
        write(json.dumps({"component": "total", "params": total}) + "\n")
        for c in compare or []:
            write(
                json.dumps(
                    {
                        "cell": c.cell,
                        "params": c.params,
                        "formula": c.formula,
                        "ratio_to_rnn": c.ratio_to_rnn,
                    }
                )
                + "\n"
            )
        return
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("component")
    table.add_column("shape / cell")
    table.add_column("params", justify="right")
    table.add_column("share", justify="right")
    for r in rows:
        table.add_row(r.component, r.detail, f"{r.params:,}", f"{r.params / max(total, 1):.1%}")
    table.add_row("total", "", f"{total:,}", "100%", style="bold")
    err_console().print(table)
    if compare:
        t2 = Table(
            title="the three cells at these sizes (recurrent layers only)", title_justify="left"
        )
        for col in ("cell", "torch's count", "lesson formula", "x vanilla RNN"):
            t2.add_column(col, justify="left" if col == "cell" else "right")
        for c in compare:
            t2.add_row(c.cell, f"{c.params:,}", f"{c.formula:,}", f"{c.ratio_to_rnn:.2f}")
        err_console().print(t2)
        status("formula per layer and direction: G x (H x (I + H) + 2H), G = 1 rnn, 4 lstm, 3 gru")
