"""The options of `seqtool inspect trace | gradients | params` (cli/inspect.py runs them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from seqtool.cli import fields
from seqtool.config import opt


def _table_or_jsonl(jsonl: str) -> Any:
    return fields.fmt("table", f"table (for people) | jsonl ({jsonl}); both on stdout.")


def _device() -> Any:
    """inspect runs the lesson equations (float64) on the CPU: --device is checked, not moved."""
    return opt(
        "auto",
        "auto | cpu: the lesson equations run in float64 on the CPU (cuda/mps are refused).",
        metavar="DEVICE",
    )


def _text(help_: str) -> Any:
    """The TEXT argument: what to run the model on (stdin with `-`)."""
    return opt(None, help_, argument=True, metavar="TEXT")


@dataclass(frozen=True)
class TraceOptions:
    text: str | None = _text("Text to step through; - or nothing reads stdin (one text per line).")
    model: str | None = fields.model("Any seqtool checkpoint (default: the shipped LM).")
    layer: list[int] | None = opt(
        None,
        "Layer to show, 0 = nearest the input; repeat for more (default: all).",
        flags=("--layer", "-l"),
        metavar="K",
    )
    units: bool = opt(False, "Show every gate's per-unit activations.", flags=("--units",))
    top: int = opt(4, "Most active units listed when H is too large to print whole.")
    fmt: str = _table_or_jsonl("every number, for machines")
    threads: int = fields.threads(1, "CPU threads.")
    device: str = _device()


@dataclass(frozen=True)
class GradientsOptions:
    text: str | None = _text(
        "With --model: text to measure on; - reads stdin (a sequence per line). Default: random "
        "token sequences."
    )
    cells: str = opt(
        "rnn,lstm,gru", "Fresh cells to compare, comma-separated: rnn,lstm,gru.", metavar="CELL,..."
    )
    length: int = opt(100, "Sequence length (time steps).")
    hidden: int = opt(64, "Hidden units of the fresh cells.")
    input_size: int = opt(32, "Input vector size of the fresh cells.", flags=("--input",))
    layers: int = opt(1, "Stacked layers of the fresh cells (the top one is measured).")
    batch: int = opt(16, "Random sequences per repeat (fresh cells).")
    init: str = opt(
        "chrono",
        "chrono (gate biases for time scales up to --length steps, Tallec & Ollivier 2018: what "
        "a gated cell can keep) | torch (torch's default init, as `seqtool train` starts: every "
        "gate near 0.5) | forget-bias (torch's, LSTM forget bias +1). The tanh RNN has no gate: "
        "torch's init under all three.",
    )
    weight_scale: float = opt(
        1.0, "Multiply every W_hh by this: < 1 vanishes faster, > 1 can explode.", metavar="X"
    )
    clip: float | None = opt(
        None,
        "Also measure with the gradient into every step's state clipped to this norm.",
        metavar="NORM",
    )
    repeats: int = opt(3, "Seeds averaged (geometric mean): seed, seed+1, ...")
    seed: int = opt(0, "Random seed (weights, inputs, readout).")
    model: str | None = fields.model("Measure this checkpoint's encoder instead of fresh cells.")
    layer: int = opt(-1, "With --model: layer measured (-1: the top one).", metavar="K")
    threshold: float = opt(
        1e-3,
        "Effective memory: first distance where the norm is below this fraction of its "
        "last-step value.",
        metavar="FRACTION",
    )
    plot: str | None = opt(
        None,
        "Draw the curves to this PNG file (needs matplotlib: pip install 'seqtool[plot]').",
        metavar="FILE.png",
    )
    fmt: str = _table_or_jsonl("one curve per line with the full series")
    threads: int = fields.threads(1, "CPU threads.")
    device: str = _device()


@dataclass(frozen=True)
class ParamsOptions:
    model: str | None = opt(
        None,
        "A checkpoint to count (any task). Without it: the sizes below.",
        argument=True,
        metavar="MODEL",
    )
    cell: str = opt("lstm", "rnn | lstm | gru.", metavar="CELL")
    input_size: int = opt(
        64, "Input vector size (the embedding size with --vocab).", flags=("--input",)
    )
    hidden: int = opt(256, "Hidden units per layer and direction.")
    layers: int = opt(1, "Stacked layers.")
    bidirectional: bool = opt(
        False, "Two directions per layer.", flags=("--bidirectional/--unidirectional",)
    )
    vocab: int | None = opt(None, "Add a token embedding of this vocabulary size.")
    fmt: str = _table_or_jsonl("for machines")
    device: str = _device()


def _builtin_probes() -> str:
    from seqtool.inspect.cells_probes import BUILTINS  # torch- and numpy-free

    return "; ".join(f"{k} ({v})" for k, v in BUILTINS.items())


@dataclass(frozen=True)
class CellsOptions:
    text: str | None = _text(
        "Text to read, a text file, a labelled table (.csv/.tsv/.jsonl, with a classifier), or "
        "- / nothing for stdin."
    )
    model: str | None = fields.model("Any seqtool checkpoint (default: the shipped LM).")
    probe: list[str] | None = opt(
        None,
        "NAME=REGEX: a probe that is 1 on the characters inside a match (multiline), 0 elsewhere; "
        "or the NAME of a built-in (then only the named built-ins run). Repeat for more. "
        f"Built-ins: {_builtin_probes()}.",
        metavar="NAME[=REGEX]",
    )
    top: int = opt(5, "Units listed per probe, by |r| (Pearson r over tokens).", metavar="K")
    fmt: str = _table_or_jsonl("one object per probe and unit")
    html: str | None = opt(
        None,
        "Write one self-contained page: the text coloured by each probe's best unit (and each "
        "--unit), the value on hover.",
        metavar="FILE.html",
    )
    png: str | None = opt(
        None,
        "Draw the same strips to this PNG (needs matplotlib: pip install 'seqtool[plot]').",
        metavar="FILE.png",
    )
    unit: list[str] | None = opt(
        None,
        "Also show this unit on the page: LAYER:UNIT[:STATE[:DIRECTION]], STATE h (default) or c "
        "(LSTM), DIRECTION forward (default) or backward; e.g. 1:417:c. Repeat for more.",
        metavar="SPEC",
    )
    show: int = opt(2000, "Tokens drawn on the page and the PNG (from the start).", metavar="N")
    streams: int = opt(
        0,
        "LM only: read the text as N parallel streams, each warmed up on the text before it "
        "(faster; 1 = exact; 0 = by length, up to 64).",
        metavar="N",
    )
    warmup: int = opt(1000, "LM only: tokens of warm-up before each stream but the first.")
    threads: int = fields.threads(1, "CPU threads.")
    device: str = _device()
