"""What `seqtool inspect cells` shows: the ranking as a table or jsonl records, one
self-contained HTML page with the text coloured by each chosen unit (red below zero, blue
above, as in Karpathy et al. 2015; the value on hover), and the same strips as a PNG.

Torch-free apart from reading the values out of the tensors it is handed.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from seqtool.inspect.cells import CellStats, Ranked, Source
    from seqtool.inspect.cells_labels import LabelUnit

DIRECTIONS = ("forward", "backward")
LEVELS = 10  # colour steps on each side of zero
PNG_COLUMNS = 100
PNG_CHARS = 1500  # a PNG strip shows at most this many characters


@dataclass
class Strip:
    """One unit drawn over the shown text."""

    label: str  # why it is shown: "line-position #1 (r = -0.91)", "--unit 1:417:c"
    layer: int
    direction: int
    state: str
    unit: int
    values: list[float]  # one per shown token

    @property
    def name(self) -> str:
        d = f" {DIRECTIONS[self.direction]}" if self.direction else ""
        return f"layer {self.layer}{d} {self.state} unit {self.unit}"

    @property
    def scale(self) -> float:
        """h is a tanh (within ±1); c is unbounded: its own largest value sets the scale."""
        if self.state == "h":
            return 1.0
        return max((abs(v) for v in self.values), default=1.0) or 1.0


def unit_name(r: Ranked) -> tuple[int, str, str, int]:
    return r.group.layer, DIRECTIONS[r.group.direction], r.group.state, r.unit


def unit_label(u: LabelUnit) -> str:
    d = f" {DIRECTIONS[u.group.direction]}" if u.group.direction else ""
    return f"layer {u.group.layer}{d} {u.group.state} unit {u.unit}"


def records(ranked: list[Ranked], n: int) -> list[dict[str, Any]]:
    return [
        {"probe": r.probe, "rank": r.rank, "layer": r.group.layer,
         "direction": DIRECTIONS[r.group.direction], "state": r.group.state, "unit": r.unit,
         "r": round(r.r, 6), "tokens": n}
        for r in ranked
    ]  # fmt: skip


def table(ranked: list[Ranked], title: str) -> Any:
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for col in ("probe", "rank", "layer", "direction", "state", "unit", "r"):
        t.add_column(col, justify="right" if col in ("rank", "layer", "unit", "r") else "left")
    for r in ranked:
        layer, direction, state, unit = unit_name(r)
        t.add_row(r.probe, str(r.rank), str(layer), direction, state, str(unit), f"{r.r:+.3f}")
    return t


def label_record(u: LabelUnit, model_accuracy: float | None) -> dict[str, Any]:
    return {"probe": "label", "rank": u.rank, "layer": u.group.layer,
            "direction": DIRECTIONS[u.group.direction], "state": u.group.state, "unit": u.unit,
            "r": round(u.r, 6), "accuracy": round(u.accuracy, 6),
            "model_accuracy": model_accuracy}  # fmt: skip


def label_table(units: list[LabelUnit], model_accuracy: float | None) -> Any:
    from rich.table import Table

    acc = "" if model_accuracy is None else f"; the full model: accuracy {model_accuracy:.3f}"
    t = Table(title=f"one-unit classifiers (pooled unit, threshold fit on the table){acc}",
              title_justify="left")  # fmt: skip
    for col in ("rank", "layer", "direction", "state", "unit", "r", "accuracy"):
        t.add_column(col, justify="left" if col in ("direction", "state") else "right")
    for u in units:
        t.add_row(str(u.rank), str(u.group.layer), DIRECTIONS[u.group.direction], u.group.state,
                  str(u.unit), f"{u.r:+.3f}", f"{u.accuracy:.3f}")  # fmt: skip
    return t


def strips(
    stats: CellStats,
    ranked: list[Ranked],
    chosen: list[tuple[int, int, str, int]],
    label_units: list[LabelUnit] = (),
) -> list[Strip]:
    """Each ranked probe's best unit, the best label unit, then the --unit choices; a unit
    shown once (with every reason)."""
    out: dict[tuple[int, int, str, int], Strip] = {}
    picks = [(f"{r.probe} #1 (r = {r.r:+.2f})", (r.group.layer, r.group.direction,
              r.group.state, r.unit)) for r in ranked if r.rank == 1]  # fmt: skip
    picks += [(f"label #1 (accuracy {u.accuracy:.3f})", (u.group.layer, u.group.direction,
               u.group.state, u.unit)) for u in label_units[:1]]  # fmt: skip
    picks += [(f"--unit {k}:{u}:{s}" + (":backward" if d else ""), (k, d, s, u))
              for k, d, s, u in chosen]  # fmt: skip
    for label, key in picks:
        if key in out:
            out[key].label += ", " + label
            continue
        k, d, s, u = key
        g = stats.find(k, d, s)
        out[key] = Strip(label, k, d, s, u, stats.shown[:, g, u].tolist())
    return list(out.values())


def shown_tokens(source: Source, count: int) -> list[str]:
    """The text of the first `count` tokens, each with the text before it (spaces, line ends),
    so that they join back into the text exactly."""
    ends = source.ends[:count].tolist()
    starts = [0, *ends[:-1]]
    return [source.text[a:b] for a, b in zip(starts, ends, strict=True)]


_STYLE = """body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse}td,th{padding:2px 8px;text-align:left}
h2{font-size:15px;margin:1.4em 0 .3em}.strip{font:13px/1.45 monospace;white-space:pre-wrap;
border:1px solid #ddd;padding:6px;max-width:110ch}.strip i{font-style:normal}
#tip{position:fixed;display:none;background:#333;color:#fff;padding:2px 6px;font:12px monospace;
border-radius:3px;pointer-events:none}.skip{color:#777}"""
_SCRIPT = """const tip=document.getElementById('tip');for(const s of document.querySelectorAll(
'.strip')){const v=s.dataset.v.split(',');[...s.children].forEach((e,i)=>{e.dataset.i=i});
s.addEventListener('mousemove',ev=>{const e=ev.target;if(e.tagName!=='I')return;const i=+e.dataset.i;
tip.textContent='token '+i+' '+JSON.stringify(e.textContent)+' = '+v[i];tip.style.display='block';
tip.style.left=(ev.clientX+12)+'px';tip.style.top=(ev.clientY+12)+'px'});
s.addEventListener('mouseleave',()=>{tip.style.display='none'})}"""


def _level_css() -> str:
    """Class k0..k20: red (most negative) through white (0) to blue (most positive)."""
    out = []
    for k in range(2 * LEVELS + 1):
        a = abs(k - LEVELS) / LEVELS
        lo = round(255 * (1 - 0.85 * a))
        rgb = f"255,{lo},{lo}" if k < LEVELS else f"{lo},{lo},255"
        out.append(f".k{k}{{background:rgb({rgb})}}")
    return "".join(out)


def _level(v: float, scale: float) -> int:
    return max(0, min(2 * LEVELS, round((v / scale + 1) * LEVELS)))


def page(title: str, facts: list[str], ranked: list[Ranked], skipped: dict[str, str],
         shown: list[Strip], tokens: list[str]) -> str:  # fmt: skip
    """The self-contained page: no network, one inline style and script."""
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(r.probe)}</td><td>{r.rank}</td><td>{r.group.layer}</td>"
        f"<td>{DIRECTIONS[r.group.direction]}</td><td>{r.group.state}</td><td>{r.unit}</td>"
        f"<td>{r.r:+.3f}</td></tr>"
        for r in ranked
    )
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{e(title)}</title>",
        f"<style>{_STYLE}{_level_css()}</style></head><body><h1>{e(title)}</h1>",
        *(f"<p>{e(f)}</p>" for f in facts),
        "<table><tr><th>probe</th><th>rank</th><th>layer</th><th>direction</th><th>state</th>"
        f"<th>unit</th><th>r</th></tr>{rows}</table>",
        *(f"<p class='skip'>{e(n)}: skipped, {e(why)}</p>" for n, why in skipped.items()),
    ]
    texts = [e(t, quote=False) for t in tokens]
    for s in shown:
        sc = s.scale
        vals = ",".join(f"{v:.3g}" for v in s.values)
        spans = "".join(
            f"<i class=k{_level(v, sc)}>{t}</i>" for v, t in zip(s.values, texts, strict=True)
        )
        parts.append(
            f"<h2>{e(s.name)} <small>{e(s.label)}; colour ±{sc:.3g}</small></h2>"
            f"<div class='strip' data-unit='{e(s.name)}' data-v='{vals}'>{spans}</div>"
        )
    parts.append(f"<div id='tip'></div><script>{_SCRIPT}</script></body></html>")
    return "".join(parts)


def check_png(path: str) -> None:
    """Before any work: a folder that exists, and matplotlib installed."""
    from seqtool.plotting import check_png as check

    check(path, "--png", " (or use --html)")


def _grid(tokens: list[str], values: list[float]) -> tuple[list[str], list[list[float]]]:
    """Characters laid out as printed (a row per line, wrapped at PNG_COLUMNS), each with the
    value of the token it belongs to; NaN where there is no character."""
    rows, vals = [""], [[]]
    budget = PNG_CHARS
    for tok, v in zip(tokens, values, strict=True):
        for ch in tok:
            if budget == 0:
                break
            budget -= 1
            if ch == "\n":
                rows.append("")
                vals.append([])
                continue
            if len(rows[-1]) == PNG_COLUMNS:
                rows.append("")
                vals.append([])
            rows[-1] += ch if ch.isprintable() else " "
            vals[-1].append(v)
    width = PNG_COLUMNS
    return rows, [r + [float("nan")] * (width - len(r)) for r in vals]


def draw_png(path: str, title: str, shown: list[Strip], tokens: list[str]) -> None:
    """The strips in one PNG: each character on its unit's colour (RdBu: red < 0 < blue)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from seqtool.data.atomic import write_bytes

    cell = 0.1  # inches per character cell
    grids = [_grid(tokens, s.values) for s in shown]
    heights = [len(rows) * cell * 1.6 + 0.35 for rows, _ in grids]
    fig = plt.figure(figsize=(PNG_COLUMNS * cell + 0.4, sum(heights) + 0.5))
    fig.suptitle(title, fontsize=10, x=0.01, y=1 - 0.12 / fig.get_figheight(), ha="left")
    top = 1 - 0.45 / fig.get_figheight()
    for s, (rows, vals), h in zip(shown, grids, heights, strict=True):
        frac = h / fig.get_figheight()
        ax = fig.add_axes((0.2 / fig.get_figwidth(), top - frac, 1 - 0.4 / fig.get_figwidth(),
                           frac - 0.3 / fig.get_figheight()))  # fmt: skip
        top -= frac
        sc = s.scale
        ax.imshow(np.array(vals), cmap="RdBu", vmin=-sc, vmax=sc, aspect="auto",
                  interpolation="nearest", extent=(0, PNG_COLUMNS, len(rows), 0))  # fmt: skip
        for i, row in enumerate(rows):
            ax.text(0.1, i + 0.5, row, family="monospace", fontsize=cell * 72 / 0.6 * 0.98,
                    va="center", ha="left")  # fmt: skip
        ax.set_axis_off()
        ax.set_title(f"{s.name}: {s.label}; colour ±{sc:.3g}", fontsize=9, loc="left")
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    write_bytes(path, buf.getvalue())


def facts_line(stats: CellStats, source_name: str, model: str) -> list[str]:
    streams = (
        f"read as {stats.streams} parallel streams with {stats.warmup} tokens of warm-up each "
        "(stream 0 exact)"
        if stats.streams > 1
        else "read exactly, one pass"
    )
    return [
        f"model {model}: {stats.cell}, {len({g.layer for g in stats.groups})} layer(s), "
        f"H={stats.hidden}; {source_name}: {stats.tokens} tokens, {streams}",
        *stats.notes,
    ]


def to_json(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)
