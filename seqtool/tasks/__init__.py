"""Task registry. Adding a task: one module in tasks/ and one entry here."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from seqtool.errors import CheckpointError

if TYPE_CHECKING:
    from seqtool.tasks.base import TaskModel

# task name -> "module:class"; imported lazily so the CLI starts fast
TASKS: dict[str, str] = {
    "lm": "seqtool.tasks.lm:LanguageModel",
    "translator": "seqtool.tasks.translator:Translator",
    "classifier": "seqtool.tasks.classifier:Classifier",
    "tagger": "seqtool.tasks.tagger:Tagger",
}


def get(task: str) -> type[TaskModel]:
    try:
        module, cls = TASKS[task].split(":")
    except KeyError:
        raise CheckpointError(f"unknown task {task!r} (known: {', '.join(TASKS)})") from None
    return getattr(importlib.import_module(module), cls)


def load(
    path: str | Path, task: str | tuple[str, ...] | None = None, command: str = ""
) -> TaskModel:
    """Load any seqtool checkpoint, checking it is of the task the command needs."""
    from seqtool import checkpoint

    header = checkpoint.read_header(path)
    if task is not None:
        checkpoint.expect_task(header, task, command)
    return get(header.task).load(header)
