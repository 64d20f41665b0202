"""Everything `seqtool inspect` shows: rich tables and the terminal chart (the CLI prints them
on stdout, as the command's result), the matplotlib plot, and the records it writes as jsonl.

Torch-free: the results come in as plain dataclasses of floats.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

from seqtool.errors import SeqtoolError

if TYPE_CHECKING:
    from seqtool.inspect.gradients import GradientCurve
    from seqtool.inspect.params import CellComparison, ParamRow
    from seqtool.inspect.trace import Trace


# -- trace -------------------------------------------------------------------------------------


def _show_token(tok: str) -> str:
    return tok.replace("\n", "\\n").replace("\t", "\\t").replace(" ", "␣")


def _vector(v: list[float], top: int) -> str:
    """Short vectors whole; longer ones as their norm and the `top` largest units."""
    if len(v) <= 8:
        return " ".join(f"{x:+.2f}" for x in v)
    norm = math.sqrt(sum(x * x for x in v))
    best = sorted(range(len(v)), key=lambda j: -abs(v[j]))[:top]
    return f"‖·‖ {norm:.2f}  " + " ".join(f"u{j} {v[j]:+.2f}" for j in best)


def _heat(v: list[float], width: int = 48) -> Text:
    """One coloured block per unit: blue positive, red negative, brightness |value|."""
    out = Text()
    for x in v[:width]:
        a = min(1.0, abs(x))
        lo = int(255 * (1 - a))
        color = f"rgb({lo},{lo},255)" if x >= 0 else f"rgb(255,{lo},{lo})"
        out.append("█", style=color)
    if len(v) > width:
        out.append("…")
    return out


def trace_status(task: str, tr: Trace) -> str:
    """The status line above a trace: the encoder's shape and the lesson cells' accuracy."""
    return (
        f"{task} encoder: {tr.cell}, {tr.layers} layer(s), "
        f"{'bidirectional' if tr.directions == 2 else 'unidirectional'}, H={tr.hidden_size}, "
        f"{len(tr.tokens)} tokens; lesson cells match the fused module to {tr.max_abs_diff:.1e}"
    )


def trace_records(tr: Trace, text: int) -> list[dict[str, Any]]:
    """One jsonl record per step, layer and direction; `text` numbers the input line."""
    from seqtool.inspect.trace import DIRECTIONS  # here: the trace module imports torch

    out = []
    for r in tr.records:
        obj: dict[str, Any] = {
            "text": text,
            "t": r.t,
            "token": r.token,
            "layer": r.layer,
            "direction": DIRECTIONS[r.direction],
            "hidden_norm": r.hidden_norm,
            "hidden": r.hidden,
        }
        if r.cell is not None:
            obj["cell"] = r.cell
        if r.gates:
            obj["gate_means"] = r.gate_means()
            obj["gates"] = r.gates
        out.append(obj)
    return out


def trace_tables(tr: Trace, units: bool, top: int) -> list[Table]:
    """A table per shown layer and direction: a row per token."""
    from seqtool.inspect.trace import DIRECTIONS, GATES  # here: the trace module imports torch

    gates = GATES[tr.cell]
    tables = []
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
            tables.append(table)
    return tables


# -- gradients ---------------------------------------------------------------------------------


def fresh_setup(s: dict[str, Any]) -> str:
    """What `fresh_gradients` measured, from a curve's settings (for titles)."""
    what = (
        f"fresh cells ({s['init']} init), H={s['hidden']}, input {s['input']}, "
        f"{s['layers']} layer(s), length {s['length']}, {s['batch']} sequences x "
        f"{s['repeats']} seed(s)"
    )
    return what + _scaled(s)


def model_setup(model: str, task: str, s: dict[str, Any], source: str) -> str:
    """What `model_gradients` measured: checkpoint, layer and inputs (`source`)."""
    what = f"{model} ({task}), encoder layer {s['layer']} forward, {s['sequences']} x {source}"
    return what + _scaled(s)


def _scaled(s: dict[str, Any]) -> str:
    return f", W_hh x {s['weight_scale']:g}" if s["weight_scale"] != 1.0 else ""


def curve_record(c: GradientCurve) -> dict[str, Any]:
    """A curve as one jsonl record, with the full series."""
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


def gradient_table(curves: list[GradientCurve]) -> Table:
    """A row per curve: its relative norm at a few distances (1, 5, 10, ... and the last).
    What was measured (fresh_setup / model_setup) is printed above it on a line of its own,
    so a long checkpoint path is never broken by the table's width."""
    T = len(curves[0].norms)
    marks = [d for d in (1, 5, 10, 20, 50, 100, 200, 500) if d < T - 1] + [T - 1]
    table = Table(
        title="‖∂L/∂h_t‖ by distance d from the last step, relative to d=0", title_justify="left"
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
    return table


_MARKS = ["red", "green", "blue", "magenta", "cyan", "yellow"]


def terminal_chart(curves: list[GradientCurve], width: int = 64, height: int = 12) -> Text:
    """log10(relative norm) against distance, one coloured letter per curve (upper case
    unclipped, lower case clipped)."""
    T = len(curves[0].relative)
    cols = min(width, T)
    xs = [round(i * (T - 1) / max(cols - 1, 1)) for i in range(cols)]
    logs = [[math.log10(max(c.relative[x], 1e-300)) for x in xs] for c in curves]
    top = max(0.0, max(max(v) for v in logs))
    # At most 20 decades shown (below is off the chart), and at least one.
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
        # The row's value as a number (3.2e-02), not an exponent with decimals (1e-1.5).
        out.append(f"{10**level:.1e}".rjust(8) + " │")
        for ch, style in grid[r]:
            out.append(ch, style=style)
        out.append("\n")
    out.append(" " * 9 + "└" + "─" * cols + "\n")
    out.append(" " * 10 + _x_axis(cols, T - 1))
    legend = "   ".join(
        f"{c.label[0].upper() if c.clip is None else c.label[0]} {c.label}" for c in curves
    )
    out.append(
        " " * 10 + legend + f"   (relative norm; effective memory below {curves[0].threshold:g})"
    )
    return out


def _x_axis(cols: int, last: int) -> str:
    """The distance axis under a chart `cols` wide: 0 under the first column, `last` under
    the last, the axis name between them when it fits with a space each side, else below."""
    name, end = "distance from the last step →", str(last)
    gap = cols - 1 - len(end)  # columns between the two ticks
    if gap >= len(name) + 2:
        return "0" + name.center(gap) + end + "\n"
    return "0" + end.rjust(max(gap, 1) + len(end)) + "\n" + " " * 10 + name + "\n"


def check_plot(path: str) -> None:
    """Before any work: `--plot` needs matplotlib and a folder to write into."""
    from seqtool.plotting import check_png

    check_png(path, "--plot")


def log_ticks(values: list[float], most: int = 9) -> list[int]:
    """Exponents of the y ticks of a log plot of `values`, top down: whole decades from 10^0
    (or above, for values above 1), every `step` of them so that at most `most` are labelled,
    the last one at or below the smallest positive value."""
    shown = [v for v in values if v > 0]
    hi = max(0, math.ceil(math.log10(max(shown))))
    lo = min(math.floor(math.log10(min(shown))), hi - 1)
    step = math.ceil((hi - lo) / (most - 1))
    return list(range(hi, hi - step * math.ceil((hi - lo) / step) - 1, -step))


def plot(curves: list[GradientCurve], path: str, what: str) -> None:
    """Draw the relative norms on a log scale to the PNG file `path`."""
    import textwrap

    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display needed
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise SeqtoolError(
            "--plot needs matplotlib: pip install 'seqtool[plot]' (or pip install matplotlib)"
        ) from None
    fig, ax = plt.subplots(figsize=(8, 5))
    last = len(curves[0].relative) - 1
    for c in curves:
        eff = c.effective_memory if c.effective_memory is not None else f"> {last}"
        ax.semilogy(range(len(c.relative)), c.relative, label=f"{c.label} (memory {eff})")
    threshold = curves[0].threshold
    ax.axhline(threshold, color="grey", linestyle="--", linewidth=1,
               label=f"effective-memory threshold ({threshold:g})")  # fmt: skip
    # Whole steps on x; on y whole decades (10^0, 10^-5, ...), the threshold in view.
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(0, max(last, 1))
    decades = log_ticks([v for c in curves for v in c.relative] + [threshold])
    ax.set_ylim(10.0 ** decades[-1], 10.0 ** decades[0])
    ax.set_yticks([10.0**k for k in decades])
    ax.set_xlabel("distance $d$ from the last step (time steps)")
    ax.set_ylabel(r"$\|\partial L/\partial h_{T-d}\|\ /\ \|\partial L/\partial h_T\|$")
    # The setup names the checkpoint: wrap it between words, never inside a path.
    title = textwrap.fill(what, 110, break_long_words=False, break_on_hyphens=False)
    ax.set_title(title, fontsize=8)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=120)
    except OSError as e:
        raise SeqtoolError(f"{path}: {e.strerror or e}") from None
    finally:
        plt.close(fig)


# -- params ------------------------------------------------------------------------------------


def sizes_title(
    cell: str, input_size: int, hidden: int, layers: int, bidirectional: bool, vocab: int | None
) -> str:
    """The title of a count of given sizes (a checkpoint's is its path and task)."""
    return (
        f"{cell}, input {input_size}, hidden {hidden}, {layers} layer(s)"
        + (", bidirectional" if bidirectional else "")
        + (f", vocabulary {vocab}" if vocab else "")
    )


def param_records(
    rows: list[ParamRow], total: int, compare: list[CellComparison] | None
) -> list[dict[str, Any]]:
    """The jsonl records: a row per component, the total, then the cell comparison."""
    out: list[dict[str, Any]] = [
        {"component": r.component, "detail": r.detail, "params": r.params} for r in rows
    ]
    out.append({"component": "total", "params": total})
    for c in compare or []:
        out.append(
            {
                "cell": c.cell,
                "params": c.params,
                "formula": c.formula,
                "ratio_to_rnn": c.ratio_to_rnn,
            }
        )
    return out


def params_table(rows: list[ParamRow], total: int) -> Table:
    """A row per component. Its title (a checkpoint's path and task, or sizes_title) is
    printed above it on a line of its own, so a long path is never broken."""
    table = Table()
    table.add_column("component")
    table.add_column("shape / cell")
    table.add_column("params", justify="right")
    table.add_column("share", justify="right")
    for r in rows:
        table.add_row(r.component, r.detail, f"{r.params:,}", f"{r.params / max(total, 1):.1%}")
    table.add_row("total", "", f"{total:,}", "100%", style="bold")
    return table


# Printed under cells_table: how its "lesson formula" column is computed.
CELLS_FORMULA = "formula per layer and direction: G x (H x (I + H) + 2H), G = 1 rnn, 4 lstm, 3 gru"


def cells_table(compare: list[CellComparison]) -> Table:
    t2 = Table(title="the three cells at these sizes (recurrent layers only)", title_justify="left")
    for col in ("cell", "torch's count", "lesson formula", "x vanilla RNN"):
        t2.add_column(col, justify="left" if col == "cell" else "right")
    for c in compare:
        t2.add_row(c.cell, f"{c.params:,}", f"{c.formula:,}", f"{c.ratio_to_rnn:.2f}")
    return t2
