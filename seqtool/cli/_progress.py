"""Progress for work with no count to show (an evaluation): that it is alive and how long it
has run, on stderr, only once it has taken a few seconds. Nothing here imports torch."""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from seqtool.cli._common import err_console
from seqtool.notices import PLAIN_EVERY, clock  # noqa: F401 (the default, for tests)
from seqtool.notices import plain_every as _plain_every

T = TypeVar("T")

# Quiet for this long: a quick command prints nothing but its result.
DELAY = 3.0


def _say(console: Any, line: str) -> None:
    # A closed stderr: the work goes on without progress.
    with contextlib.suppress(OSError, ValueError):
        console.print(line, highlight=False, markup=False, soft_wrap=True)


@contextlib.contextmanager
def ticking(what: str, delay: float = DELAY) -> Iterator[None]:
    """While the block runs: on a terminal, after `delay` seconds, a spinner with `what` and
    the elapsed time; otherwise a plain line `what: elapsed 0:10` every
    SEQTOOL_PROGRESS_SECONDS (10 s), as training writes its lines to a log. A line at the
    end says how long it took, when progress was shown at all."""
    console = err_console()
    start = time.monotonic()
    done = threading.Event()
    spinner: list[Any] = []
    shown = threading.Event()

    def run() -> None:
        if console.is_terminal:
            if done.wait(delay):
                return
            status = console.status(what)
            spinner.append(status)
            status.start()
            shown.set()
            while not done.wait(0.5):
                status.update(f"{what}  elapsed {clock(time.monotonic() - start)}")
            return
        every = max(0.2, _plain_every())  # 0 means every step in training; here a floor
        while not done.wait(max(every, delay) if not shown.is_set() else every):
            _say(console, f"{what}: elapsed {clock(time.monotonic() - start)}")
            shown.set()

    thread = threading.Thread(target=run, name="seqtool-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        for status in spinner:
            status.stop()
        if shown.is_set():
            took = time.monotonic() - start
            _say(console, f"{what}: done in {f'{took:.1f} s' if took < 60 else clock(took)}")


def with_progress(what: str, fn: Callable[..., T]) -> Callable[..., T]:
    """`fn` run under ticking(what): `with_progress("evaluating", api.evaluate)(...)`."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> T:
        with ticking(what):
            return fn(*args, **kwargs)

    return run
