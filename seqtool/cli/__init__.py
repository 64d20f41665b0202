"""The `seqtool` command. Importing this module must not import torch, datasets or
sentencepiece: commands import what they need when they run."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Annotated

import typer

from seqtool import __version__
from seqtool.cli._common import OutputClosed
from seqtool.cli._entry import (
    click_aborts,
    click_exceptions,
    plain_argument_help,
    quiet_stdout_flush,
    silence_stdout,
    verbatim_examples,
)
from seqtool.errors import SeqtoolError

HELP = (
    "Recurrent sequence models (RNN, LSTM, GRU) over text, from the command line.\n\n"
    "Data goes to stdout, status and progress to stderr; '-' or no file reads stdin.\n\n"
    "Examples:\n\n"
    '  seqtool generate --prompt "ROMEO:" --length 200\n\n'
    "  seqtool train lm corpora/play-sample.txt --hidden 32 --steps 20 --threads 1 "
    "-o my.safetensors\n\n"
    "  seqtool eval my.safetensors corpora/play-sample.txt\n\n"
    "  seqtool plot my.safetensors --format text"
)
# `seqtool train --help` (the listing of `seqtool --help` takes GROUPS' one line).
TRAIN_HELP = (
    "Train a model: seqtool train TASK FILE... -o model.safetensors\n\n"
    "Each task has its own options: seqtool train TASK --help. The best model (by the task's "
    "dev metric) goes to -o; MODEL.run/ beside it keeps the run's log, config and resume "
    "state.\n\n"
    "Examples:\n\n"
    "  seqtool train classifier corpora/sentiment-sample.csv --steps 40 --threads 1 "
    "-o sent.safetensors\n\n"
    "  seqtool train lm corpora/play-sample.txt --hidden 64 --steps 30 --threads 1 "
    "-o lm.safetensors\n\n"
    "  seqtool train tagger corpora/pos-sample.conllu --hidden 32 --steps 20 --threads 1 "
    "-o pos.safetensors"
)
SETTINGS = {"help_option_names": ["-h", "--help"]}

# The command registry: name -> (module, attribute, one-line help). Only the command being
# run is imported and built; `seqtool --help` lists them from the one-line helps, so start-up
# stays fast however many commands there are. `seqtool train TASK` comes from the task
# registry (seqtool.tasks.TASKS) and is generated from the task's dataclasses.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "generate": (
        "lm",
        "generate",
        "Generate text from a language model, streamed as it is sampled.",
    ),
    "classify": ("classifier", "classify", "Label texts (lines, CSV/TSV/JSONL) with a classifier."),
    "pseudo-label": (
        "pseudo_label",
        "pseudo_label",
        "Label the sentences of labelled documents with a teacher.",
    ),
    "tag": ("tagger", "tag", "Tag the words of sentences with parts of speech."),
    "translate": ("translator", "translate", "Translate lines with an encoder-decoder model."),
    "calibrate": (
        "calibrate",
        "calibrate",
        "Calibrate a classifier's probabilities on dev data (stored in the checkpoint).",
    ),
    "eval": (
        "evaluate",
        "eval_command",
        "Evaluate a checkpoint on held-out data with its task's metric.",
    ),
    "models": ("models", "models", "List the shipped and your own models (-m NAME names them)."),
    "plot": ("plot", "plot", "Draw training curves (loss, dev metric) of runs to a PNG."),
}
GROUPS: dict[str, tuple[str, str, str]] = {
    "train": ("", "", "Train a model: seqtool train TASK FILE... -o model.safetensors"),
    "tokenize": (
        "tokenize",
        "app",
        "Tokenizers (train, encode, decode); split raw text into words or sentences.",
    ),
    "inspect": (
        "inspect",
        "app",
        "Hidden-state and gate traces, vanishing gradients, parameter counts.",
    ),
}


def _version(value: bool) -> None:
    if value:
        print(f"seqtool {__version__}")
        raise typer.Exit()


def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Recurrent sequence models over text."""


def _load(module: str, attr: str):
    return getattr(importlib.import_module(f"seqtool.cli.{module}"), attr)


def _stub(help_: str):
    def stub() -> None:
        pass

    stub.__doc__ = help_
    return stub


def build_app(only: str | None = None, full: bool = False, sub: str | None = None) -> typer.Typer:
    """The Typer app: every command real (full), only `only` real and the rest listed by
    name and help (what a run needs), or all listed (what `seqtool --help` needs). For
    `train`, only the task `sub` is generated (its module imports torch)."""
    plain_argument_help()
    app = typer.Typer(
        name="seqtool",
        help=verbatim_examples(HELP),
        no_args_is_help=True,
        rich_markup_mode=None,  # plain click help: rich costs ~0.1 s of start-up
        pretty_exceptions_enable=False,
        context_settings=SETTINGS,
    )
    app.callback()(_root)
    for name, (module, attr, help_) in COMMANDS.items():
        real = full or only == name
        app.command(name, help=None if real else help_)(
            _load(module, attr) if real else _stub(help_)
        )
    for name, (module, attr, help_) in GROUPS.items():
        if not (full or only == name):
            app.add_typer(typer.Typer(help=help_, context_settings=SETTINGS), name=name)
        elif name == "train":
            app.add_typer(_train_app(help_, sub, full), name="train")
        else:
            app.add_typer(_load(module, attr), name=name)
    return app


def _train_app(help_: str, sub: str | None, full: bool) -> typer.Typer:
    """`seqtool train TASK` for every registered task: `sub` (or all, full) generated, the
    rest listed by name and one-line help."""
    from seqtool.tasks import TASKS

    train = typer.Typer(
        help=verbatim_examples(TRAIN_HELP), no_args_is_help=True, context_settings=SETTINGS
    )
    for task, (_, line) in TASKS.items():
        if full or sub == task:
            from seqtool.cli.options import train_command
            from seqtool.tasks import get

            train.command(task)(train_command(get(task)))
        else:
            train.command(task, help=line)(_stub(line))
    return train


def _command_path(args: list[str]) -> tuple[str | None, str | None]:
    """The command and subcommand named in args (`train lm`), skipping options."""
    words = [a for a in args if not a.startswith("-")][:2]
    return (words + [None, None])[0], (words + [None, None])[1]


def __getattr__(name: str):
    if name == "app":  # the whole app, for typer's CliRunner in tests and for completion
        return build_app(full=True)
    raise AttributeError(name)


def main() -> None:
    """Entry point: usage errors show click's usage message and exit 2; user errors are one
    line on stderr and exit 2; bugs exit 1; interrupts 130. Never a traceback.

    Bare `seqtool` (or `seqtool train`, ...) prints the help on stderr and exits 2: that is
    what click >= 8.2 does for no_args_is_help (and Typer's bundled click); under an older
    click it prints the help on stdout and exits 0."""
    try:
        # A run needs only its own command; shell completion only the one being typed.
        args = sys.argv[1:]
        if any(k.endswith("_COMPLETE") for k in os.environ):
            args = os.environ.get("COMP_WORDS", "").split()[1:]
        name, sub = _command_path(args)
        app = build_app(only=name, sub=sub)
        rv = app(standalone_mode=False)
        sys.stdout.flush()
    except SeqtoolError as e:
        quiet_stdout_flush()
        kind = "" if e.exit_code == 130 else "error: "  # an interrupt is not an error
        print(f"seqtool: {kind}{e}", file=sys.stderr)
        sys.exit(e.exit_code)
    except (BrokenPipeError, OutputClosed):
        # The reader went away (`seqtool generate | head`): that is a normal end.
        silence_stdout()
        sys.exit(0)
    except KeyboardInterrupt:
        quiet_stdout_flush()
        print("seqtool: interrupted", file=sys.stderr)
        sys.exit(130)
    except click_exceptions() as e:  # evaluated only when something was raised
        quiet_stdout_flush()
        e.show()
        sys.exit(e.exit_code)
    except click_aborts() as e:  # older clicks turn Ctrl-C into Abort
        quiet_stdout_flush()
        ctrl_c = isinstance(e.__context__, KeyboardInterrupt)
        print(f"seqtool: {'interrupted' if ctrl_c else 'aborted'}", file=sys.stderr)
        sys.exit(130)
    except Exception as e:  # a bug, not a user mistake: one line, exit 1
        if os.environ.get("SEQTOOL_DEBUG"):
            raise
        print(
            f"seqtool: internal error: {type(e).__name__}: {e} (SEQTOOL_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        sys.exit(1)
    if rv == 130:  # recent Typers turn Ctrl-C into exit 130 themselves: say so all the same
        print("seqtool: interrupted", file=sys.stderr)
    sys.exit(rv if isinstance(rv, int) else 0)
