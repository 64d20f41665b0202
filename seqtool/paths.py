"""Where shipped default models are found (checkout, editable install, or wheel)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from seqtool.errors import SeqtoolError


def search_path() -> list[Path]:
    """$SEQTOOL_CHECKPOINTS, then the checkout's checkpoints/, then the wheel's data dir."""
    dirs = []
    if env := os.environ.get("SEQTOOL_CHECKPOINTS"):
        dirs += [Path(d) for d in env.split(os.pathsep) if d]
    dirs.append(Path(__file__).resolve().parent.parent / "checkpoints")
    dirs.append(Path(sys.prefix) / "share" / "seqtool" / "checkpoints")
    return dirs


def default_model(task: str) -> Path:
    """The shipped model of `task` (its class's `shipped_model`)."""
    from seqtool import tasks

    name = tasks.get(task).shipped_model
    if name is None:
        raise SeqtoolError(f"no {task} model ships with seqtool; pass --model")
    for d in search_path():
        if (d / name).is_file():
            return d / name
    where = ", ".join(str(d) for d in search_path())
    raise SeqtoolError(f"no shipped {task} model {name} found (looked in {where}); pass --model")
