"""Helpers every CLI file shares: consoles and stdout writing.

Nothing here imports torch: `seqtool --help` must stay fast.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from seqtool.data.text import ENCODING_ERRORS
from seqtool.errors import SeqtoolError

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


# Lines the segmenter reads together (`tag`, `tokenize words|sentences`) also close a batch
# at this many characters: long lines, bounded memory.
SEGMENT_CHUNK_CHARS = 65536


def load_segmenter(path: str | None, command: str) -> Any:
    """The segmenter a command splits raw text with: `path`, or the shipped English one."""
    from seqtool import api, paths

    return api.load(path or str(paths.default_model("segmenter")), "segmenter", command)
