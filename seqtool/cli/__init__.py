"""The `seqtool` command. Importing this module must not import torch, datasets or
sentencepiece: commands import what they need when they run."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from seqtool import __version__
from seqtool.cli import classifier, evaluate, lm, tokenize
from seqtool.cli import inspect as inspect_cli
from seqtool.cli import tagger as tagger_cli
from seqtool.cli import translator as translator_cli
from seqtool.cli._common import OutputClosed
from seqtool.errors import SeqtoolError

app = typer.Typer(
    name="seqtool",
    help="Recurrent sequence models (RNN, LSTM, GRU) over text, from the command line.\n\n"
    "Data goes to stdout, status and progress to stderr; '-' or no file reads stdin.\n\n"
    "Examples:\n\n"
    '  seqtool generate --prompt "ROMEO:"\n\n'
    "  seqtool train lm corpus.txt -o my.safetensors --cell gru --layers 2 --hidden 256\n\n"
    "  seqtool eval my.safetensors dev.txt",
    no_args_is_help=True,
    rich_markup_mode=None,  # plain click help: rich would cost ~0.1 s of start-up
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
train_app = typer.Typer(
    help="Train a model: seqtool train TASK FILE... -o model.safetensors",
    no_args_is_help=True,
)
app.add_typer(train_app, name="train")
app.add_typer(tokenize.app, name="tokenize")
app.add_typer(inspect_cli.app, name="inspect")

# One file per task: its `train TASK` command and the command that runs it.
train_app.command("lm")(lm.train)
app.command("generate")(lm.generate)
train_app.command("translator")(translator_cli.train)
app.command("translate")(translator_cli.translate)
train_app.command("tagger")(tagger_cli.train)
app.command("tag")(tagger_cli.tag)
train_app.command("classifier")(classifier.train)
app.command("classify")(classifier.classify)
app.command("eval")(evaluate.eval_command)


def _version(value: bool) -> None:
    if value:
        print(f"seqtool {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Recurrent sequence models over text."""


def main() -> None:
    """Entry point: user errors are one line on stderr and exit 2, never a traceback."""
    try:
        rv = app(standalone_mode=False)
        sys.stdout.flush()
    except SeqtoolError as e:
        _quiet_stdout_flush()
        kind = "" if e.exit_code == 130 else "error: "  # an interrupt is not an error
        print(f"seqtool: {kind}{e}", file=sys.stderr)
        sys.exit(e.exit_code)
    except (BrokenPipeError, OutputClosed):
        # The reader went away (`seqtool generate | head`): that is a normal end.
        _silence_stdout()
        sys.exit(0)
    except KeyboardInterrupt:
        _quiet_stdout_flush()
        print("seqtool: interrupted", file=sys.stderr)
        sys.exit(130)
    except _click_exceptions() as e:
        _quiet_stdout_flush()
        e.show()
        sys.exit(e.exit_code)
    except _click_abort():
        print("seqtool: aborted", file=sys.stderr)
        sys.exit(130)
    except Exception as e:  # a bug, not a user mistake: one line, exit 1
        if os.environ.get("SEQTOOL_DEBUG"):
            raise
        print(
            f"seqtool: internal error: {type(e).__name__}: {e} (SEQTOOL_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)


def _click_exceptions():
    import click

    return click.exceptions.ClickException


def _click_abort():
    import click

    return click.exceptions.Abort


def _quiet_stdout_flush() -> None:
    try:
        sys.stdout.flush()
    except (BrokenPipeError, OutputClosed):
        _silence_stdout()


def _silence_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
