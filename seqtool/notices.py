"""Warnings a user should see: one line each on stderr, also kept so that a training run can
write them to its metrics log (the trainer takes the ones raised while it was being set up).
While a run is being set up they wait (`deferred`): the trainer shows them as it starts, and
a setup that fails shows its one-line error alone.

Also the stderr writer that survives a closed stderr (`seqtool train ... 2>&1 | head`): once
the reader is gone, stderr is pointed at /dev/null and the command carries on, so a run still
finishes and saves. Nothing here imports torch.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

_pending: list[tuple[str, bool]] = []  # (message, shown on stderr yet)
_deferred = False


def warn(message: str) -> None:
    """Print `warning: message` on stderr (later, within `deferred`) and keep it for the
    run's log."""
    _pending.append((message, not _deferred))
    if not _deferred:
        say(f"warning: {message}")


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Within: warnings are kept, not printed; whoever take()s them shows them."""
    global _deferred
    saved, _deferred = _deferred, True
    try:
        yield
    finally:
        _deferred = saved


def take() -> list[tuple[str, bool]]:
    """(message, already shown) of the warnings since the last take() or clear()."""
    out = list(_pending)
    _pending.clear()
    return out


def clear() -> None:
    _pending.clear()


def say(line: str) -> None:
    """One line on stderr; a closed stderr is silenced instead of stopping the command."""
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # a broken pipe; ValueError: the stream object was closed
        silence_stderr()


def silence_stderr() -> None:
    """Point file descriptor 2 at /dev/null: the reader of stderr went away. What the
    stream still buffers then goes nowhere, not into another BrokenPipeError."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.__stderr__.fileno() if sys.__stderr__ else 2)
        os.close(devnull)
    except (OSError, ValueError):
        pass


def keep_going(console: object) -> object:
    """Make a rich Console survive a closed stream: rich's default on a broken pipe is
    SystemExit(1), which would end a training run before it saves. Returns the console."""

    def on_broken_pipe() -> None:
        console.quiet = True  # type: ignore[attr-defined]
        silence_stderr()

    if console is not None and hasattr(console, "on_broken_pipe"):
        console.on_broken_pipe = on_broken_pipe  # type: ignore[attr-defined]
    return console


def duration(seconds: float) -> str:
    """A run's length as people say it: `42.3 s`, `12.5 min`, `2 h 05 min`."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    h, m = divmod(round(seconds / 60), 60)
    return f"{h} h {m:02d} min"


# Seconds between plain progress lines when stderr is not a terminal (a log file, CI), for
# training and for long commands alike; SEQTOOL_PROGRESS_SECONDS overrides it (0: training
# prints a line every step).
PLAIN_EVERY = 10.0


def plain_every() -> float:
    try:
        return max(0.0, float(os.environ.get("SEQTOOL_PROGRESS_SECONDS", PLAIN_EVERY)))
    except ValueError:
        return PLAIN_EVERY


def clock(seconds: float) -> str:
    """`0:42`, `12:05`, `1:02:03`: elapsed time in progress lines."""
    m, s = divmod(int(seconds), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"
