"""`seqtool train TASK`, generated from the task's dataclasses: every option is declared once,
as a field with help text in its metadata (config.opt), and becomes a Typer option here.

A task's command offers, in this order: the fields of its `options_class` (data and setup),
the option fields of its `config_class` (model hyperparameters), -o/--output, the TrainConfig
fields (plus the task's `train_options`), --resume and --save-dtype, then the BackboneConfig
fields (but its `backbone_fixed`), with the task's `backbone_defaults`. The command's help is the
`options_class` docstring.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import types
import typing
from dataclasses import MISSING
from typing import Annotated, Any

import typer

from seqtool.cli._common import err_console
from seqtool.cli._entry import verbatim_examples

# Options of every training run that are not part of any config.
_RUN = {
    "output": (
        str,
        "model.safetensors",
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Where to write the best model (a .safetensors file).",
        ),
    ),
    "resume": (
        bool,
        False,
        typer.Option(
            "--resume",
            help="Continue the interrupted run for --output exactly where it stopped; with a "
            "larger --steps, extend a finished run (the schedule then runs to the new end).",
        ),
    ),
    "restart": (
        bool,
        False,
        typer.Option(
            "--restart",
            help="Start over even though --output's run directory holds an interrupted run "
            "(its saved state is discarded).",
        ),
    ),
    "overwrite": (
        bool,
        False,
        typer.Option(
            "--overwrite",
            help="Replace the finished model at --output (and its run directory) with a new "
            "run; without it, training into an existing model is refused.",
        ),
    ),
    "save_dtype": (
        str,
        "fp32",
        typer.Option(
            "--save-dtype",
            metavar="DTYPE",
            help="Storage dtype of the saved model: fp32 | fp16 | bf16.",
        ),
    ),
}


def _option(name: str, tp: Any, meta: Any, default: Any) -> inspect.Parameter:
    """A keyword parameter whose Annotated metadata Typer turns into the option."""
    help_ = meta.get("help", "")
    metavar = meta.get("metavar") or _metavar(name, tp)
    if meta.get("argument"):
        decl = typer.Argument(help=help_, metavar=metavar, show_default=False)
    else:
        flags = meta.get("flags") or ()
        if not flags:
            flag = "--" + name.replace("_", "-")
            flags = (f"{flag}/--no-{flag[2:]}",) if tp is bool else (flag,)
        show = meta.get("show_default", True)
        decl = typer.Option(*flags, help=help_, metavar=metavar, show_default=show)
    kind = inspect.Parameter.KEYWORD_ONLY
    default = inspect.Parameter.empty if default is MISSING else default
    return inspect.Parameter(name, kind, default=default, annotation=Annotated[tp, decl])


# Options whose value is a path (Typer would show `<str>` or `<list[str]>`).
_FILES = {"files", "dev", "source", "target"}
_MODELS = {"init_from"}


def _metavar(name: str, tp: Any) -> str | None:
    """A readable metavar: FILE, MODEL, N, FLOAT, or the option's last word (CELL, DEVICE)."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    base = args[0] if typing.get_origin(tp) in (typing.Union, types.UnionType) else tp
    if typing.get_origin(base) is list:
        base = typing.get_args(base)[0]
    if base is bool:
        return None
    if name in _FILES:
        return "FILE"
    if name in _MODELS:
        return "MODEL"
    if base is int:
        return "N"
    if base is float:
        return "FLOAT"
    return name.rsplit("_", 1)[-1].upper()


def _fields(cls: type, names: typing.Iterable[str] | None = None, cli_only: bool = True):
    """(name, type, metadata, default) of a config dataclass's option fields."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if names is not None and f.name not in names:
            continue
        if cli_only and names is None and not f.metadata.get("cli", True):
            continue
        if isinstance(hints[f.name], type) and dataclasses.is_dataclass(hints[f.name]):
            continue  # a nested config (the backbone) is offered on its own
        default = f.default
        if default is MISSING and f.default_factory is not MISSING:
            default = f.default_factory()
        yield f.name, hints[f.name], f.metadata, default


def train_command(task_cls: Any) -> Any:
    """The `seqtool train TASK` command function for a TaskModel subclass."""
    from seqtool.config import BackboneConfig, TrainConfig

    defaults = getattr(task_cls, "option_defaults", {})
    groups: dict[str, list[str]] = {"options": [], "model": [], "train": [], "backbone": []}
    params: list[inspect.Parameter] = []

    def add(group: str, name: str, tp: Any, meta: Any, default: Any) -> None:
        if any(p.name == name for p in params):
            raise TypeError(f"{task_cls.__name__}: option {name!r} is declared twice")
        groups[group].append(name)
        params.append(_option(name, tp, meta, defaults.get(name, default)))

    for name, tp, meta, default in _fields(task_cls.options_class):
        add("options", name, tp, meta, default)
    # A task's own training fields (the LM's --seq-len) stand with its options.
    for name, tp, meta, default in _fields(TrainConfig, task_cls.train_options):
        add("train", name, tp, meta, default)
    for name, tp, meta, default in _fields(task_cls.config_class):
        add("model", name, tp, meta, default)
    tp, default, decl = _RUN["output"]
    params.append(_plain("output", tp, default, decl))
    train_names = [f.name for f in dataclasses.fields(TrainConfig)]
    offered = [
        n
        for n in train_names
        if TrainConfig.__dataclass_fields__[n].metadata.get("cli", True)
        and n not in task_cls.train_options
    ]
    for name, tp, meta, default in _fields(TrainConfig, offered):
        add("train", name, tp, meta, default)
    for name in ("resume", "restart", "overwrite", "save_dtype"):
        tp, default, decl = _RUN[name]
        params.append(_plain(name, tp, default, decl))
    for name, tp, meta, default in _fields(BackboneConfig):
        if name not in task_cls.backbone_fixed:
            add("backbone", name, tp, meta, task_cls.backbone_defaults.get(name, default))
    # Typer wants arguments before options in the signature it reads.
    params.sort(key=lambda p: not _is_argument(p))
    # The click context tells options given from defaults (a resumed run keeps its own).
    params.append(
        inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)
    )

    def command(ctx: typer.Context, **kwargs: Any) -> None:
        run_training(task_cls.task, groups, kwargs, _given(ctx, kwargs))

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__doc__ = verbatim_examples(task_cls.options_class.__doc__)
    command.__name__ = f"train_{task_cls.task}"
    return command


def run_command(options_class: type) -> Any:
    """Decorator: a command whose options are the fields of the dataclass `options_class` (each
    declared once, with its help in the field's metadata, as `train TASK`'s are). The function
    takes one instance of it; its docstring is the command's help."""

    def wrap(fn: Any) -> Any:
        params = [_option(*f) for f in _fields(options_class)]
        params.sort(key=lambda p: not _is_argument(p))  # Typer reads arguments first

        def command(**kwargs: Any) -> None:
            fn(options_class(**kwargs))

        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command.__doc__ = verbatim_examples(fn.__doc__)
        command.__name__ = fn.__name__
        command.__module__ = fn.__module__
        return command

    return wrap


def _given(ctx: Any, kwargs: dict[str, Any]) -> set[str]:
    """Names of the options the command line gave (not their defaults)."""
    given = set()
    for name in kwargs:
        source = ctx.get_parameter_source(name)
        if source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP"):
            given.add(name)
    return given


def _plain(name: str, tp: Any, default: Any, decl: Any) -> inspect.Parameter:
    kind = inspect.Parameter.KEYWORD_ONLY
    return inspect.Parameter(name, kind, default=default, annotation=Annotated[tp, decl])


def _is_argument(p: inspect.Parameter) -> bool:
    return any(isinstance(m, typer.models.ArgumentInfo) for m in p.annotation.__metadata__)


def run_training(
    task: str, groups: dict[str, list[str]], kwargs: dict[str, Any], given: set[str]
) -> None:
    """Split the parsed options by where they belong and train through the api."""
    from seqtool import api, notices
    from seqtool.config import TrainConfig

    train_cfg = TrainConfig.from_dict({k: kwargs[k] for k in groups["train"]})
    options = {k: kwargs[k] for k in groups["options"] + groups["model"]}
    summary = api.train(
        task,
        kwargs["output"],
        train_cfg,
        resume=kwargs["resume"],
        restart=kwargs["restart"],
        overwrite=kwargs["overwrite"],
        given=given,
        save_dtype=kwargs["save_dtype"],
        console=err_console(),
        backbone={k: kwargs[k] for k in groups["backbone"]},
        **options,
    )
    if os.environ.get("RANK", "0") != "0":  # under torchrun rank 0 reports
        return
    best = {k: v for k, v in summary["best"].items() if isinstance(v, int | float)}
    detail = "  ".join(f"{k} {v:.4g}" for k, v in best.items()) if best else "no dev data"
    notices.say(
        f"saved {summary['output']} after {summary['steps']} steps in "
        f"{notices.duration(summary['elapsed_s'])} ({summary['stopped']}); best dev: {detail}"
    )
