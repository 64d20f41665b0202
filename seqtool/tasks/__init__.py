"""The task registry. Adding a task: one file in tasks/ (a TaskModel subclass) and one line
here. Modules are imported only when their task is used, so the CLI starts fast."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from seqtool.errors import CheckpointError

if TYPE_CHECKING:
    from seqtool.tasks.base import TaskModel

# task name -> ("module:class", the one line `seqtool train --help` shows)
TASKS: dict[str, tuple[str, str]] = {
    "lm": ("seqtool.tasks.lm:LanguageModel", "Train a language model (character-level by default) on text files."),
    "classifier": ("seqtool.tasks.classifier:Classifier", "Train a text classifier (bidirectional LSTM by default) on labelled CSV/TSV/JSONL."),
    "tagger": ("seqtool.tasks.tagger:Tagger", "Train a part-of-speech tagger on CoNLL-U (UPOS by default)."),
    "translator": ("seqtool.tasks.translator:Translator", "Train an encoder-decoder translator (bidirectional encoder, attention decoder)."),
    "segmenter": ("seqtool.tasks.segmenter:Segmenter", "Train a tokenizer and sentence splitter (a character tagger) on CoNLL-U."),
}  # fmt: skip


def get(task: str) -> type[TaskModel]:
    try:
        module, cls = TASKS[task][0].split(":")
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
