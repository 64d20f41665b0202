"""Warnings about a run whose saved model may be useless, said while the user is still there:
a dev set too small to rank checkpoints, a dev score that never improved after the first
evaluation (the "best" model is then an early one), and a chosen classifier that gives one
label to the whole dev set. Each is one line on stderr and a record in metrics.jsonl."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from seqtool.data.split import MIN_DEV
from seqtool.training.callbacks import Callback

if TYPE_CHECKING:
    from seqtool.training.trainer import Trainer

# Fewer evaluations than this say too little about whether dev improved.
MIN_EVALS = 3


def one_class(metrics: dict[str, Any]) -> tuple[str, int] | None:
    """(the label, dev rows) when a confusion matrix (rows gold, columns predicted) shows
    every row predicted as one class although the gold rows hold two or more."""
    conf = metrics.get("confusion")
    if not isinstance(conf, dict) or not conf.get("matrix"):
        return None
    matrix, labels = conf["matrix"], conf["labels"]
    predicted = [sum(col) for col in zip(*matrix, strict=True)]
    gold = [sum(row) for row in matrix]
    used = [j for j, n in enumerate(predicted) if n]
    if len(used) == 1 and sum(1 for n in gold if n) >= 2:
        return labels[used[0]], sum(predicted)
    return None


class RunChecks(Callback):
    """Watches the dev evaluations; warns through `trainer.warn` (stderr + metrics log)."""

    def __init__(self) -> None:
        self.evals = 0
        self.first_step: int | None = None
        self.best_step: int | None = None

    def on_eval(self, trainer: Trainer, metrics: dict[str, float], improved: bool) -> None:
        self.evals += 1
        if self.first_step is None:
            self.first_step = trainer.step
            n = metrics.get("examples")
            if isinstance(n, int) and 0 < n < MIN_DEV:
                trainer.warn(
                    f"the dev set has {n} rows, too few to rank checkpoints (its accuracy "
                    f"moves in steps of {100 / n:.0f} %); a --dev file of {MIN_DEV} or more "
                    "rows picks the best model reliably"
                )
        if improved:
            self.best_step = trainer.step

    def on_train_end(self, trainer: Trainer) -> None:
        if getattr(trainer, "_interrupted", False) or trainer.dev is None:
            return  # an interrupted run is judged when it finishes
        metric = trainer.model.main_metric
        if self.evals >= MIN_EVALS and self.best_step == self.first_step:
            trainer.warn(
                f"dev {metric} never improved after the first of {self.evals} evaluations "
                f"(step {self.first_step}), so the saved model is from that step: try more "
                "--steps, another --lr, or a larger dev set (--dev)"
            )
        found = one_class(trainer.best_metrics)
        if found is not None:
            label, n = found
            trainer.warn(
                f"the saved model labels all {n} dev rows {label!r} (dev {metric} "
                f"{trainer.best_metrics.get(metric, 0):.3g}): it learnt no more than one "
                "class; try more --steps, another --lr, or check the labels"
            )

    def state_dict(self) -> dict[str, Any]:
        return {"evals": self.evals, "first_step": self.first_step, "best_step": self.best_step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.evals = int(state.get("evals", 0))
        self.first_step, self.best_step = state.get("first_step"), state.get("best_step")
