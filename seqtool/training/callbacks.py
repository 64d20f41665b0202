"""Trainer features as callbacks: progress, metrics log, early stopping, time limit."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seqtool.notices import PLAIN_EVERY, clock, duration, keep_going, silence_stderr  # noqa: F401
from seqtool.notices import plain_every as _plain_every

if TYPE_CHECKING:
    from seqtool.training.trainer import Trainer


class Callback:
    def on_train_start(self, trainer: Trainer) -> None: ...
    def on_step_end(self, trainer: Trainer, loss: float | None) -> None: ...
    def on_eval(self, trainer: Trainer, metrics: dict[str, float], improved: bool) -> None: ...
    def on_train_end(self, trainer: Trainer) -> None: ...
    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def callback_states(callbacks: list[Callback]) -> dict[str, Any]:
    """Each callback's resume state by class name (numbered when a class repeats), so a
    resumed run may add or drop some (--patience, --max-time) without mixing them up."""
    return {name: cb.state_dict() for name, cb in _named(callbacks)}


def load_callback_states(callbacks: list[Callback], saved: Any) -> None:
    if isinstance(saved, dict):
        for name, cb in _named(callbacks):
            if name in saved:
                cb.load_state_dict(saved[name])
    else:  # a list: a run saved before they were named, in order
        for cb, state in zip(callbacks, saved, strict=False):
            cb.load_state_dict(state)


def _named(callbacks: list[Callback]) -> list[tuple[str, Callback]]:
    seen: dict[str, int] = {}
    out = []
    for cb in callbacks:
        name = type(cb).__name__
        seen[name] = seen.get(name, 0) + 1
        out.append((name if seen[name] == 1 else f"{name}.{seen[name]}", cb))
    return out


def _fmt_metrics(metrics: dict[str, float], limit: int = 4) -> str:
    scalars = [(k, v) for k, v in metrics.items() if isinstance(v, int | float)][:limit]
    return "  ".join(f"{k} {v:.4g}" for k, v in scalars)


def _print(console: Any, line: str) -> None:
    """A progress line; a closed stderr (`seqtool train ... 2>&1 | head`) is pointed at
    /dev/null instead of stopping the run, which then finishes and saves as usual."""
    try:
        console.print(line, highlight=False, soft_wrap=True)
    except (OSError, ValueError):
        silence_stderr()


def _timed(trainer: Trainer) -> bool:
    return trainer.cfg.time_budget > 0 and not trainer.cfg.steps


def _bar_total(trainer: Trainer) -> float:
    """A time-budget run's bar counts seconds; a step run's counts steps."""
    return trainer.cfg.time_budget * 60 if _timed(trainer) else trainer.total_steps


def _length(trainer: Trainer) -> str:
    budget = trainer.cfg.time_budget
    return (
        f"{budget:g} min"
        if budget > 0 and not trainer.cfg.steps
        else f"{trainer.total_steps} steps"
    )


def _of_total(trainer: Trainer) -> str:
    return (
        "" if trainer.cfg.time_budget > 0 and not trainer.cfg.steps else f"/{trainer.total_steps}"
    )


class Progress(Callback):
    """Rich progress bar on a terminal (loss, tokens/s, ETA). Otherwise plain lines on
    stderr: one every `every` seconds (step, loss, tokens/s, elapsed, ETA) and one per dev
    evaluation. A figure not known yet (no loss logged, no rate) is left out, never 0."""

    def __init__(self, console: Any = None, every: float | None = None) -> None:
        from rich.console import Console

        self.console = keep_going(console or Console(stderr=True))
        self.every = _plain_every() if every is None else every
        self.bar: Any = None
        self.loss: float | None = None
        self.start = self.last = time.monotonic()
        self.start_step = 0

    def on_train_start(self, trainer: Trainer) -> None:
        if not self.console.is_terminal:
            _print(
                self.console,
                f"training {trainer.model.task}: {_length(trainer)} from step "
                f"{trainer.step}, {trainer.num_params:,} parameters, device {trainer.device}; "
                f"config in {trainer.dir / 'config.json'}",
            )
            self.start = self.last = time.monotonic()
            self.start_step = trainer.step
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress

        self.bar = RichProgress(
            TextColumn("[bold]train {task.fields[name]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[tps]} tok/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
        )
        self.bar.start()
        self.task_id = self.bar.add_task(
            "train",
            total=_bar_total(trainer),
            completed=trainer.elapsed if _timed(trainer) else trainer.step,
            name=trainer.model.task,
            loss="-",
            tps="-",
        )

    def on_step_end(self, trainer: Trainer, loss: float | None) -> None:
        if loss is not None:
            self.loss = loss
        if self.bar is None:
            now = time.monotonic()
            if now - self.last >= self.every:
                self.last = now
                _print(self.console, self._line(trainer, now))
            return
        fields = {}
        if loss is not None:
            fields = {"loss": f"{loss:.3f}", "tps": f"{trainer.tokens_per_sec:,.0f}"}
        done = trainer.elapsed if _timed(trainer) else trainer.step
        self.bar.update(self.task_id, completed=done, **fields)

    def _line(self, trainer: Trainer, now: float) -> str:
        """`step 120/3000  loss 1.234  5,432 tok/s  elapsed 0:35  ETA 14:02`, less what is
        not known yet."""
        parts = [f"step {trainer.step}{_of_total(trainer)}"]
        if self.loss is not None:
            parts.append(f"loss {self.loss:.3f}")
        if trainer.tokens_per_sec > 0:
            parts.append(f"{trainer.tokens_per_sec:,.0f} tok/s")
        parts.append(f"elapsed {clock(trainer.elapsed)}")
        done = trainer.step - self.start_step
        if _timed(trainer):
            parts.append(f"ETA {clock(max(0.0, _bar_total(trainer) - trainer.elapsed))}")
        elif done > 0:  # wall time per step of this session, evaluations included
            left = (now - self.start) / done * (trainer.total_steps - trainer.step)
            parts.append(f"ETA {clock(left)}")
        return "  ".join(parts)

    def on_eval(self, trainer: Trainer, metrics: dict[str, float], improved: bool) -> None:
        mark = " (best)" if improved else ""
        rate = f"{trainer.tokens_per_sec:,.0f} tok/s  " if trainer.tokens_per_sec > 0 else ""
        line = (
            f"step {trainer.step}{_of_total(trainer)}  dev {_fmt_metrics(metrics)}{mark}  "
            f"{rate}{duration(trainer.elapsed)}"
        )
        _print(self.console, line)

    def on_train_end(self, trainer: Trainer) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


class MetricsLog(Callback):
    """Appends one JSON object per logged step / evaluation / warning to a .jsonl file, and
    writes the run's resolved config beside it (config.json) when training starts or resumes."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_train_start(self, trainer: Trainer) -> None:
        from seqtool.checkpoint import atomic_write_bytes

        model = trainer.model
        cfg = {"task": model.task, "model": model.config.to_dict(), "train": trainer.cfg.to_dict()}
        if getattr(trainer, "options", None) is not None:
            cfg["options"] = trainer.options
        text = json.dumps(cfg, sort_keys=True, indent=2) + "\n"
        atomic_write_bytes(self.path.with_name("config.json"), text.encode())

    def _write(self, obj: dict[str, Any]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(obj) + "\n")

    def on_step_end(self, trainer: Trainer, loss: float | None) -> None:
        if loss is not None:
            self._write(
                {
                    "step": trainer.step,
                    "time": round(trainer.elapsed, 3),
                    "loss": loss,
                    "lr": trainer.lr,
                    "tokens_per_sec": round(trainer.tokens_per_sec, 1),
                }
            )

    def on_eval(self, trainer: Trainer, metrics: dict[str, float], improved: bool) -> None:
        self._write({"step": trainer.step, "time": round(trainer.elapsed, 3), "dev": metrics})

    def write_warning(self, trainer: Trainer, message: str) -> None:
        self._write({"step": trainer.step, "time": round(trainer.elapsed, 3), "warning": message})


class EarlyStopping(Callback):
    """Stops after `patience` evaluations without a new best dev metric."""

    def __init__(self, patience: int) -> None:
        self.patience, self.bad = patience, 0

    def on_eval(self, trainer: Trainer, metrics: dict[str, float], improved: bool) -> None:
        self.bad = 0 if improved else self.bad + 1
        if self.bad >= self.patience:
            trainer.stop(f"early stop: no dev improvement in {self.patience} evaluations")

    def state_dict(self) -> dict[str, Any]:
        return {"bad": self.bad}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.bad = int(state["bad"])


class TimeLimit(Callback):
    """Stops (with a final evaluation and save) once `minutes` of training time have passed."""

    def __init__(self, minutes: float) -> None:
        self.seconds = minutes * 60

    def on_step_end(self, trainer: Trainer, loss: float | None) -> None:
        if trainer.elapsed >= self.seconds:
            trainer.stop(f"time limit of {self.seconds / 60:g} min reached")
