"""Training curves: read a run's log (model.run/metrics.jsonl, written by
training.callbacks.MetricsLog), summarise it, and draw train/dev loss and the task's main
metric against steps and training time, several runs overlaid (matplotlib, the `plot` extra).

The log holds one JSON object per line: `{"step", "time", "loss", "lr", ...}` for a logged
training step and `{"step", "time", "dev": {...}}` for a dev evaluation; any other record (a
warning) is kept aside and not drawn. `time` is the run's training time in seconds (evaluation
excluded), carried across --resume.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seqtool.errors import DataError, SeqtoolError

# Dev metrics that are a loss comparable to the training loss (nats per token), by task.
DEV_LOSS_KEYS = ("loss", "nll", "loss_teacher_forced", "nats_per_token")
# Metric names where lower is better, for a log whose task is unknown.
_LOWER = ("loss", "nll", "nats", "bits", "perplexity", "ppl", "ece")
INSTALL = "pip install 'seqtool[plot]' (or pip install matplotlib)"


@dataclass
class Run:
    """One training run's curves."""

    name: str  # the legend label: the RUN argument without .safetensors/.run
    log: Path
    task: str | None = None
    train: list[tuple[int, float, float]] = field(default_factory=list)  # (step, time, loss)
    dev: list[tuple[int, float, dict[str, Any]]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    metric: str | None = None  # the main dev metric the trainer ranks checkpoints by
    higher_is_better: bool = True

    def series(self, key: str) -> list[tuple[int, float, float]]:
        """(step, time, value) of a scalar dev metric, where it was logged."""
        return [
            (s, t, float(m[key])) for s, t, m in self.dev if isinstance(m.get(key), int | float)
        ]

    @property
    def dev_loss_key(self) -> str | None:
        return next((k for k in DEV_LOSS_KEYS if self.series(k)), None)

    def best(self) -> tuple[int, float] | None:
        """(step, value) of the best main-metric evaluation (the first of equals, as the
        trainer keeps it)."""
        found = self.series(self.metric) if self.metric else []
        if not found:
            return None
        sign = 1 if self.higher_is_better else -1
        step, _, value = max(found, key=lambda r: (sign * r[2], -r[0]))
        return step, value

    def summary(self) -> dict[str, Any]:
        """The numbers of the text table and of --format json."""
        last = max([r[:2] for r in self.train] + [r[:2] for r in self.dev])
        best = self.best()
        return {
            "run": self.name,
            "task": self.task,
            "steps": last[0],
            "time_s": last[1],
            "evaluations": len(self.dev),
            "metric": self.metric,
            "best": best[1] if best else None,
            "best_step": best[0] if best else None,
            "final_train_loss": self.train[-1][2] if self.train else None,
            "warnings": len(self.warnings),
        }


def log_path(run: str) -> Path:
    """The metrics log of RUN: a model path (model.safetensors -> model.run/), its .run
    folder, or the metrics.jsonl file itself."""
    p = Path(run)
    if p.is_file() and p.suffix == ".jsonl":
        return p
    if p.is_dir() and p.suffix != ".run":
        if (p / "metrics.jsonl").is_file():
            return p / "metrics.jsonl"
        raise SeqtoolError(f"{run}: is a directory, not a model or its .run folder")
    folder = p if p.suffix == ".run" else p.with_name(p.name.removesuffix(".safetensors") + ".run")
    log = folder / "metrics.jsonl"
    if not log.is_file():
        what = "no such run folder" if not folder.is_dir() else "no metrics.jsonl in it"
        raise SeqtoolError(f"{run}: no training log ({folder}: {what})")
    return log


def _keep(rows: list[Any], step: int) -> None:
    """A step logged again (a run resumed from an earlier save): drop what it replaces."""
    while rows and rows[-1][0] >= step:
        rows.pop()


def read_run(run: str) -> Run:
    """Read RUN's log; a malformed line is an error naming file and line (a last line
    still being written, without its newline, is skipped)."""
    log = log_path(run)
    named = str(log.parent) if log.name == "metrics.jsonl" and run.endswith(".jsonl") else run
    name = named.rstrip("/").removesuffix(".safetensors").removesuffix(".run")
    out = Run(name=name, log=log)
    try:
        text = log.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise SeqtoolError(f"{log}: cannot read: {getattr(e, 'strerror', None) or e}") from None
    lines = text.split("\n")
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            if i == len(lines):  # no newline yet: the trainer is writing it
                break
            raise DataError(f"not a JSON record: {e.msg}", str(log), i, e.colno) from None
        if not isinstance(rec, dict) or not isinstance(rec.get("step"), int):
            if isinstance(rec, dict) and "warning" in rec:
                out.warnings.append(str(rec["warning"]))
                continue
            raise DataError("not a metrics record (no integer 'step')", str(log), i)
        step, time = rec["step"], float(rec.get("time", math.nan))
        if isinstance(rec.get("dev"), dict):
            _keep(out.dev, step)
            out.dev.append((step, time, rec["dev"]))
        elif isinstance(rec.get("loss"), int | float):
            _keep(out.train, step)
            out.train.append((step, time, float(rec["loss"])))
        elif "warning" in rec:
            out.warnings.append(str(rec["warning"]))
    if not out.train and not out.dev:
        raise SeqtoolError(f"{run}: the training log {log} is empty (no step logged yet)")
    _main_metric(out)
    return out


def _main_metric(run: Run) -> None:
    """The metric the trainer ranked checkpoints by: the task's (from config.json beside the
    log), or, for a log without one, its first scalar dev metric."""
    try:
        config = json.loads((run.log.parent / "config.json").read_text(encoding="utf-8"))
        run.task = config.get("task")
    except (OSError, ValueError, AttributeError):
        pass
    names = [k for _, _, m in run.dev[:1] for k, v in m.items() if isinstance(v, int | float)]
    if run.task:
        from seqtool import tasks

        try:
            cls = tasks.get(run.task)
            run.metric, run.higher_is_better = cls.main_metric, cls.higher_is_better
        except SeqtoolError:
            pass
        # Several classifier dev sets: checkpoints are ranked on their mean.
        if run.metric and f"{run.metric}_mean" in names:
            run.metric = f"{run.metric}_mean"
    if (run.metric is None or run.metric not in names) and names:
        run.metric = names[0]
        run.higher_is_better = not any(w in run.metric for w in _LOWER)


def check_png(path: str, flag: str = "-o", hint: str = "") -> None:
    """Before any work: a PNG given by `flag` needs its folder to exist and matplotlib
    installed (every command that draws checks here)."""
    folder = Path(path).expanduser().resolve().parent
    if not folder.is_dir():
        raise SeqtoolError(f"{flag} {path}: no such folder ({folder} does not exist)")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise SeqtoolError(f"{flag} needs matplotlib: {INSTALL}{hint}") from None


def draw(runs: list[Run], path: str) -> None:
    """Write a PNG of 2x2 panels: loss (train solid, dev dashed) and the main dev metric
    (best marked), against steps (left) and training time (right); a colour per run."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    longest = max(t for r in runs for t in [*(x[1] for x in r.train), *(x[1] for x in r.dev)])
    minutes = longest >= 120
    scale, unit = (60.0, "min") if minutes else (1.0, "s")
    fig, axes = plt.subplots(2, 2, figsize=(12, 8), sharey="row")
    metrics = sorted({r.metric for r in runs if r.metric})
    for i, run in enumerate(runs):
        color = f"C{i % 10}"
        dev_loss = run.dev_loss_key
        for col, x in enumerate((0, 1)):  # 0: step, 1: time

            def xs(rows: list[tuple[int, float, float]], x: int = x) -> list[float]:
                return [r[x] / (scale if x else 1) for r in rows]

            ax = axes[0][col]
            if run.train:
                ax.plot(xs(run.train), [r[2] for r in run.train], color=color,
                        label=f"{run.name} train")  # fmt: skip
            if dev_loss:
                rows = run.series(dev_loss)
                ax.plot(xs(rows), [r[2] for r in rows], color=color, linestyle="--",
                        marker=".", label=f"{run.name} dev {dev_loss}")  # fmt: skip
            ax = axes[1][col]
            rows = run.series(run.metric) if run.metric else []
            if rows:
                ax.plot(xs(rows), [r[2] for r in rows], color=color, marker=".",
                        label=f"{run.name} dev {run.metric}")  # fmt: skip
                step, value = run.best()  # type: ignore[misc]
                at = next(r for r in rows if r[0] == step)
                ax.plot(xs([at]), [value], color=color, marker="*", markersize=12,
                        linestyle="none")  # fmt: skip
    metric_label = ", ".join(metrics) if metrics else "no dev evaluations"
    for col, xlabel in enumerate(("step", f"training time ({unit})")):
        axes[0][col].set_title(f"loss against {xlabel.split(' (')[0]}")
        axes[1][col].set_title(f"dev {metric_label} (best: star)")
        for row in (0, 1):
            axes[row][col].set_xlabel(xlabel)
            axes[row][col].grid(True, alpha=0.3)
    axes[0][0].set_ylabel("loss (nats)")
    axes[1][0].set_ylabel(metric_label)
    for row in (0, 1):
        if axes[row][0].lines:
            axes[row][0].legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, path)


def save_png(fig: Any, path: str) -> None:
    """Write a matplotlib figure to a PNG atomically (never half a file) and close it."""
    import matplotlib.pyplot as plt

    from seqtool.data.atomic import AtomicFile

    out = AtomicFile(path, "wb")
    try:
        fig.savefig(out.stream, format="png", dpi=100)
    except BaseException:
        out.discard()
        raise
    finally:
        plt.close(fig)
    out.commit()


def duration(seconds: float) -> str:
    """`42.3 s` under a minute, else `m:ss` (or `h:mm:ss`)."""
    if not math.isfinite(seconds):
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(int(round(seconds)), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"
