"""`seqtool models`: the models `-m NAME` can name (shipped, then $SEQTOOL_MODELS)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqtool.cli import fields
from seqtool.cli._common import check_choice, write
from seqtool.cli.options import run_command

# Dev metrics where lower is better (the rest: higher); the first metric of a run's dev
# records is its headline (the task's main metric comes first in what evaluate returns).
_LOWER = ("loss", "nats", "bits", "perplexity", "ece", "nll")


@dataclass(frozen=True)
class ModelsOptions:
    fmt: str = fields.fmt("table", "table (for people) | json (one list of objects).")


@run_command(ModelsOptions)
def models(o: ModelsOptions) -> None:
    """List the models that -m NAME names: the shipped ones, then your own in the folder(s)
    of $SEQTOOL_MODELS (.safetensors files; the name is the file name without it). A name is
    looked up before a path, in every command that takes -m/--model.

    Examples:

      seqtool models

      seqtool models --format json

      echo "a fine film" | seqtool classify -m sentiment

      SEQTOOL_MODELS=~/models seqtool models
    """
    from seqtool import paths

    check_choice("--format", o.fmt, ("table", "json"))
    rows = [_describe(name, path, origin) for name, path, origin in paths.named_models()]
    if o.fmt == "json":
        write(json.dumps(rows, indent=1) + "\n", flush=True)
        return
    from rich.table import Table

    from seqtool.cli.evaluate import print_results

    table = Table()
    for col in ("name", "task", "size", "dev", "origin", "path"):
        table.add_column(col, justify="right" if col == "size" else "left")
    for r in rows:
        size = f"{r['parameters'] / 1e6:.2f} M params, {r['megabytes']:.1f} MB"
        table.add_row(r["name"], r["task"], size, r["dev"] or "-", r["origin"], r["path"])
    if not rows:
        write("no models found (set $SEQTOOL_MODELS to a folder of .safetensors files)\n")
        return
    print_results(table)


def _describe(name: str, path: Path, origin: str) -> dict[str, Any]:
    """What the checkpoint says about itself (no weights read): task, size, dev score."""
    from seqtool import checkpoint, paths
    from seqtool.errors import SeqtoolError

    row: dict[str, Any] = {"name": name, "task": "?", "parameters": 0, "dev": None}
    row |= {"megabytes": round(path.stat().st_size / 1e6, 2), "origin": origin, "path": str(path)}
    try:
        row["task"] = checkpoint.read_header(path).task
        row["parameters"] = _parameters(path)
    except SeqtoolError as e:  # a foreign file in the folder: listed, with why
        row["task"] = f"unreadable ({e})"
        return row
    row["dev"] = paths.SHIPPED_DEV.get(name) if origin == "shipped" else _run_dev(path)
    return row


def _parameters(path: Path) -> int:
    from safetensors import safe_open

    total = 0
    with safe_open(str(path), framework="numpy") as f:
        for k in f.keys():  # noqa: SIM118 (safe_open is no dict)
            n = 1
            for d in f.get_slice(k).get_shape():
                n *= d
            total += n
    return total


def _run_dev(path: Path) -> str | None:
    """The best headline dev score in the run's metrics log beside the checkpoint
    (`NAME.run/metrics.jsonl`), as training wrote it; None without one."""
    log = path.with_name(path.name.removesuffix(".safetensors") + ".run") / "metrics.jsonl"
    best: tuple[str, float] | None = None
    try:
        lines = log.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for line in lines:
        try:
            dev = json.loads(line).get("dev")
        except (json.JSONDecodeError, AttributeError):
            continue
        if not isinstance(dev, dict):
            continue
        key, value = next(
            ((k, v) for k, v in dev.items() if isinstance(v, int | float)), (None, None)
        )
        if key is None:
            continue
        lower = any(w in key for w in _LOWER)
        if best is None or (value < best[1] if lower else value > best[1]):
            best = (key, float(value))
    return f"{best[0]} {best[1]:.4g}" if best else None
