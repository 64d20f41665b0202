"""Helpers every CLI file shares: consoles and stdout writing.

Nothing here imports torch: `seqtool --help` must stay fast.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer

from seqtool.data.text import ENCODING_ERRORS
from seqtool.errors import SeqtoolError

# Options several commands share, declared once (each command sets its own default). A
# metavar on each: Typer would otherwise show the Python type (`<int>`, `<str>`) in --help.
Threads = Annotated[int, typer.Option(metavar="N", help="CPU threads (0: torch's default).")]
Precision = Annotated[
    str,
    typer.Option(
        metavar="fp32|bf16", help="bf16 runs under autocast: ~1.6x faster on CPUs with native bf16."
    ),
]


def model_option(help_: str) -> Any:
    """The -m/--model option: which checkpoint a command runs (each says its default)."""
    return typer.Option("--model", "-m", metavar="MODEL", help=help_)


def format_option(help_: str, flag: str = "--format") -> Any:
    """--format (or --input-format): one of a command's named formats."""
    return typer.Option(flag, metavar="FORMAT", help=help_)


def batch_size_option(help_: str) -> Any:
    """-b/--batch-size: the throughput knob of a command that reads a stream."""
    return typer.Option("--batch-size", "-b", metavar="N", help=help_)


def input_argument(help_: str) -> Any:
    """The input file argument of a command that reads a file or stdin."""
    return typer.Argument(metavar="FILE", help=help_, show_default=False)


Output = Annotated[
    str | None,
    typer.Option(
        "--output",
        "-o",
        metavar="FILE",
        help="Write to this file (atomically) instead of stdout.",
    ),
]
EncodingErrors = Annotated[
    str,
    typer.Option(metavar="MODE", help="strict | replace | ignore: bytes that are not UTF-8."),
]

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


def check_choice(option: str, value: str, choices: tuple[str, ...]) -> None:
    """A usage error naming the option when `value` is not one of `choices`."""
    if value not in choices:
        raise SeqtoolError(f"{option} must be one of {', '.join(choices)}, not {value!r}")


def check_encoding_errors(value: str) -> None:
    check_choice("--encoding-errors", value, ENCODING_ERRORS)


def load_segmenter(path: str | None, command: str) -> Any:
    """The segmenter a command splits raw text with: `path`, or the shipped English one."""
    from seqtool import api, paths

    return api.load(path or str(paths.default_model("segmenter")), "segmenter", command)
