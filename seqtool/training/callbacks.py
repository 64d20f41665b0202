"""Trainer features as callbacks: progress, metrics log, early stopping, time limit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


def _fmt_metrics(metrics: dict[str, float], limit: int = 4) -> str:
    scalars = [(k, v) for k, v in metrics.items() if isinstance(v, int | float)][:limit]
    return "  ".join(f"{k} {v:.4g}" for k, v in scalars)


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
    """Rich progress bar on a terminal (loss, tokens/s, ETA); plain lines on stderr otherwise."""

    def __init__(self, console: Any = None) -> None:
        from rich.console import Console

        self.console = console or Console(stderr=True)
        self.bar: Any = None

    def on_train_start(self, trainer: Trainer) -> None:
        if not self.console.is_terminal:
            self.console.print(
                f"training {trainer.model.task}: {_length(trainer)} from step "
                f"{trainer.step}, {trainer.num_params:,} parameters, device {trainer.device}",
                highlight=False,
            )
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
        if self.bar is None:
            return
        fields = {}
        if loss is not None:
            fields = {"loss": f"{loss:.3f}", "tps": f"{trainer.tokens_per_sec:,.0f}"}
        done = trainer.elapsed if _timed(trainer) else trainer.step
        self.bar.update(self.task_id, completed=done, **fields)

    def on_eval(self, trainer: Trainer, metrics: dict[str, float], improved: bool) -> None:
        mark = " (best)" if improved else ""
        line = (
            f"step {trainer.step}{_of_total(trainer)}  dev {_fmt_metrics(metrics)}{mark}  "
            f"{trainer.tokens_per_sec:,.0f} tok/s  {trainer.elapsed / 60:.1f} min"
        )
        self.console.print(line, highlight=False)

    def on_train_end(self, trainer: Trainer) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


class MetricsLog(Callback):
    """Appends one JSON object per logged step / evaluation to a .jsonl file."""

    def __init__(self, path: Path) -> None:
        self.path = path

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
