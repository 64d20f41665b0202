"""Helpers every CLI file shares: consoles and stdout writing.

Nothing here imports torch: `seqtool --help` must stay fast.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer

# Options several commands share, declared once (each command sets its own default).
Threads = Annotated[int, typer.Option(help="CPU threads (0: torch's default).")]
Precision = Annotated[
    str, typer.Option(help="fp32 | bf16 (autocast: ~1.6x faster on CPUs with native bf16).")
]


def model_option(help_: str) -> Any:
    """The -m/--model option: which checkpoint a command runs (each says its default)."""
    return typer.Option("--model", "-m", help=help_)


Output = Annotated[
    str | None,
    typer.Option("--output", "-o", help="Write to this file (atomically) instead of stdout."),
]
EncodingErrors = Annotated[str, typer.Option(help="strict | replace | ignore for non-UTF-8 input.")]

_console = None


def err_console():
    """The stderr console for status, progress and tables (stdout carries data only)."""
    global _console
    if _console is None:
        import sys

        from rich.console import Console

        # Redirected to a file or a pipe, rich would assume 80 columns and cut wide tables;
        # COLUMNS still wins when set.
        wide = not sys.stderr.isatty() and "COLUMNS" not in os.environ
        _console = Console(stderr=True, width=200 if wide else None)
    return _console


def status(msg: str) -> None:
    err_console().print(msg, highlight=False, soft_wrap=True)


class OutputClosed(Exception):
    """The reader of stdout went away (`seqtool generate | head`): a normal end, exit 0.
    Not an OSError, so click does not turn it into exit 1 on the way up."""


def write(text: str, flush: bool = False) -> None:
    """Write data to stdout; flush=True for streaming output (per line or per batch)."""
    try:
        sys.stdout.write(text)
        if flush:
            sys.stdout.flush()
    except BrokenPipeError:
        raise OutputClosed from None


def stdin_is_terminal() -> bool:
    return sys.stdin.isatty()
