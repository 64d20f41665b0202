"""The files of a run beside its model: where they are, and what state they hold.

A run with output `model.safetensors` keeps `model.run/` (see trainer.py). A run whose
resume.pt is not marked finished is interrupted: a new run into the same output must then
say --resume or --restart, so saved state is never thrown away silently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


def run_dir(out: Path) -> Path:
    return out.with_name(out.name.removesuffix(".safetensors") + ".run")


def interrupted_run(out: Path) -> str | None:
    """Where the unfinished run saved for `out` stopped ("step 7 of 40"), or None: no saved
    state, or the run finished (its final save says so). A new run into `out` must then say
    --resume or --restart, so saved state is never thrown away silently."""
    try:  # mmap: only the few plain values are read, not the optimizer state
        path = run_dir(out) / "resume.pt"
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except FileNotFoundError:  # no run (or another rank just started over)
        return None
    except Exception:  # damaged or foreign: still not to be thrown away unasked
        return "its saved state is unreadable"
    steps = int((state.get("train_config") or {}).get("steps") or 0)
    step = int(state.get("step", 0))
    # Runs saved before the flag existed: finished when they reached their --steps.
    if state.get("finished", steps > 0 and step >= steps):
        return None
    return f"step {step}" + (f" of {steps}" if steps else "")


def saved_state(out: Path) -> dict[str, Any] | None:
    """The plain values of the run's resume.pt (step, train_config, finished...), read
    without its tensors; None when there is none or it is unreadable."""
    try:
        state = torch.load(
            run_dir(out) / "resume.pt", map_location="cpu", weights_only=True, mmap=True
        )
    except Exception:
        return None
    keep = ("step", "train_config", "finished", "warmup", "elapsed")
    return {k: state[k] for k in keep if k in state}
