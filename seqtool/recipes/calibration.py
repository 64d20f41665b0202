"""Calibrated classifier probabilities: a temperature fitted on dev after training.

A classifier's softmax is overconfident (Guo et al. 2017); dividing its logits by a
temperature T > 1 fitted by NLL on dev fixes that without changing any label. One T is not
enough for a model that reads both short sentences and long reviews (short texts came out
overconfident, long ones not), so the default fit makes T depend on the text's length:

    log T(n) = a + b * log(n)        (n: the text's tokens; b = 0 is one temperature)

The fitted (a, b) sit in the checkpoint's metadata (`calibration`); checkpoints without it
load with T = 1. `seqtool train classifier` fits it on its dev set(s) once the best
checkpoint is chosen; `seqtool calibrate` fits it for an existing checkpoint.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch

from seqtool.training.callbacks import Callback

METHODS = ("length", "temperature")
MIN_TEXTS = 50  # fewer dev texts than this cannot pin a temperature down
T_RANGE = (0.05, 20.0)  # no fit may make a model certain or uniform


@dataclass(frozen=True)
class Calibration:
    method: str = "none"  # none | temperature | length
    a: float = 0.0
    b: float = 0.0
    texts: int = 0  # how many dev texts it was fitted on

    def temperatures(self, lengths: torch.Tensor) -> torch.Tensor:
        """T per text from token counts (B,) -> (B,)."""
        n = lengths.float().clamp(min=1)
        return (self.a + self.b * n.log()).exp().clamp(*T_RANGE)

    def apply(self, logits: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Calibrated probabilities (B, C) from logits (B, C)."""
        if self.method == "none":
            return logits.float().softmax(-1)
        return (logits.float() / self.temperatures(lengths)[:, None]).softmax(-1)

    def describe(self) -> str:
        if self.method == "none":
            return "none (temperature 1)"
        if self.method == "temperature":
            return f"temperature {math.exp(self.a):.3f}"
        t = [float(self.temperatures(torch.tensor([n]))) for n in (8, 40, 300)]
        return "by length: T = {:.2f} / {:.2f} / {:.2f} at 8 / 40 / 300 tokens".format(*t)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Calibration:
        if not d:
            return cls()
        return cls(str(d.get("method", "none")), float(d.get("a", 0)), float(d.get("b", 0)),
                   int(d.get("texts", 0)))  # fmt: skip


def fit(
    logits: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor, method: str = "length"
) -> tuple[Calibration, str | None]:
    """Fit by NLL on (logits (N, C), lengths (N,), gold ids (N,); -1 = unknown, left out).
    Returns (calibration, a warning or None); data that cannot support a fit gives T = 1."""
    if method not in METHODS:
        raise ValueError(f"calibration method must be one of {', '.join(METHODS)}")
    keep = labels >= 0
    # clone(): logits computed under inference_mode cannot take part in autograd
    logits, lengths, labels = logits[keep].float().clone(), lengths[keep], labels[keep].long()
    n = len(labels)
    if n < MIN_TEXTS:
        return Calibration(), f"{n} dev texts are too few to fit a temperature (< {MIN_TEXTS})"
    if len(labels.unique()) < 2:
        return Calibration(), "the dev texts hold one class only: cannot fit a temperature"
    log_n = lengths.float().clamp(min=1).log()
    centre = float(log_n.mean())
    x = log_n - centre  # centred: a and b are fitted independently of each other
    params = torch.zeros(2 if method == "length" else 1, requires_grad=True)
    opt = torch.optim.LBFGS([params], lr=0.5, max_iter=200, line_search_fn="strong_wolfe")
    lo, hi = math.log(T_RANGE[0]), math.log(T_RANGE[1])

    def loss_fn() -> torch.Tensor:
        opt.zero_grad()
        log_t = params[0] + (params[1] * x if method == "length" else torch.zeros_like(x))
        loss = torch.nn.functional.cross_entropy(logits / log_t.clamp(lo, hi).exp()[:, None],
                                                 labels)  # fmt: skip
        loss.backward()
        return loss

    opt.step(loss_fn)
    a, b = (params.detach().tolist() + [0.0])[:2]
    if not all(map(math.isfinite, (a, b))):
        return Calibration(), "the temperature fit did not converge; temperature 1 kept"
    return Calibration(method, a - b * centre, b, n), None


def dev_logits(model: Any, sets: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(logits (N, C), lengths (N,), gold ids (N,)) of a classifier over its dev set(s): an
    Encoded or a list of (name, Encoded), pooled."""
    groups = sets if isinstance(sets, list) else [("", sets)]
    parts = [(*model.logits_ids(enc.ids), torch.as_tensor([int(y) for y in enc.labels]))
             for _, enc in groups]  # fmt: skip
    return tuple(torch.cat(p) for p in zip(*parts, strict=True))  # type: ignore[return-value]


def calibrate(model: Any, sets: Any, method: str = "length") -> tuple[Calibration, str | None]:
    """Fit `model`'s calibration on its dev set(s) and install it (returned as well)."""
    model.calibration = Calibration()
    cal, warning = fit(*dev_logits(model, sets), method)
    model.calibration = cal
    return cal, warning


class FitCalibration(Callback):
    """After a finished training run, fit the best checkpoint's calibration on the dev set(s)
    and store it in that checkpoint (an interrupted run is left alone: --resume finishes it)."""

    def __init__(self, method: str = "length") -> None:
        self.method = method

    def on_train_end(self, trainer: Any) -> None:
        if getattr(trainer, "_interrupted", False) or not trainer.is_main or self.method == "none":
            return
        say = _say(trainer)
        if trainer.dev is None:
            say("no dev set: the probabilities are not calibrated "
                "(seqtool calibrate MODEL DEV... fits them later)")  # fmt: skip
            return
        from seqtool import checkpoint

        best = type(trainer.model).load(checkpoint.read_header(trainer.out))
        best.to(trainer.device)
        cal, warning = calibrate(best, trainer.dev, self.method)
        if warning:
            trainer.warn(f"{warning}; temperature 1 kept")  # stderr and the run's log
        checkpoint.update_metadata(trainer.out, {"calibration": cal.to_dict()})
        if not warning:
            say(f"calibrated on {cal.texts:,} dev texts: {cal.describe()}")


def _say(trainer: Any):
    console = getattr(trainer, "console", None)
    if console is not None and hasattr(console, "print"):
        return lambda line: console.print(line, highlight=False)
    from seqtool.notices import say

    return say
