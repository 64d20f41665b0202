"""What the `seqtool` entry point needs around Typer: its usage errors and aborts wherever
this Typer release keeps click, stdout that may close under us, and argument help. Nothing
here imports torch."""

from __future__ import annotations

import inspect
import os
import re
import sys
from typing import Any

import typer

from seqtool.cli._common import OutputClosed


def plain_argument_help() -> None:
    """Typer 0.29 prints an argument's Python type after its metavar (`FILE <list[str]>`);
    the metavar already says what it takes. Guarded: other releases keep their rendering."""
    try:
        from typer.core import TyperArgument
    except ImportError:
        return
    shown = getattr(TyperArgument, "display_type_rich", None)
    if shown is None or getattr(shown, "seqtool", False):
        return

    def display(self: Any, ctx: Any) -> Any:
        return None if self.metavar else shown(self, ctx)

    display.seqtool = True  # type: ignore[attr-defined]
    TyperArgument.display_type_rich = display  # type: ignore[method-assign]


def verbatim_examples(doc: str | None) -> str | None:
    """Help text whose indented paragraphs (the examples) are printed as written: each gets
    click's no-rewrap marker (a line holding only \\b), so an example is never re-wrapped at
    the terminal's width nor broken inside an option, and copies as one command. Other
    paragraphs are still filled to the width."""
    if not doc:
        return doc
    lines = [line.rstrip() for line in inspect.cleandoc(doc).splitlines()]
    out = []
    for par in re.split(r"\n{2,}", "\n".join(lines)):
        rows = par.splitlines()
        if rows and rows[0] != "\b" and all(r.startswith((" ", "\t")) for r in rows):
            par = "\b\n" + par
        out.append(par)
    return "\n\n".join(out)


def click_exceptions() -> tuple[type[Exception], ...]:
    """click's ClickException wherever this Typer keeps click. Recent Typers (0.29) bundle
    their own copy (typer._click) and need not install click at all; older ones use the click
    package. Found three ways, so no release's layout is relied on alone: through the public
    typer.BadParameter (a ClickException of whichever click Typer uses), the bundled module,
    and the click package when it is installed."""
    found = [c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"]
    try:
        from typer._click.exceptions import ClickException as Bundled  # type: ignore

        found.append(Bundled)
    except ImportError:
        pass
    try:
        from click.exceptions import ClickException

        found.append(ClickException)
    except ImportError:
        pass
    return tuple(dict.fromkeys(found))


def click_aborts() -> tuple[type[BaseException], ...]:
    """Abort: Typer's own class in recent releases, click's in older ones (typer.Abort is
    whichever the installed Typer raises); click's too when click is installed."""
    found: list[type[BaseException]] = [typer.Abort]
    try:
        from click.exceptions import Abort

        found.append(Abort)
    except ImportError:
        pass
    return tuple(dict.fromkeys(found))


def quiet_stdout_flush() -> None:
    try:
        sys.stdout.flush()
    except (BrokenPipeError, OutputClosed):
        silence_stdout()


def silence_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
