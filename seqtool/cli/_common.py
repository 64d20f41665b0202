"""Helpers every CLI file shares: consoles, stdout writing, and the common option sets.

Nothing here imports torch: `seqtool --help` must stay fast.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import typing
from typing import Annotated, Any

import typer

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


# -- option sets shared by every `seqtool train TASK` ---------------------------------------

_TRAIN_OPTIONS: list[tuple[str, Any, Any, Any]] = [
    (
        "output",
        str,
        "model.safetensors",
        typer.Option("--output", "-o", help="Where to write the best model (a .safetensors file)."),
    ),
    (
        "steps",
        int,
        0,
        typer.Option(help="Optimizer steps (0: from --epochs).", rich_help_panel="Training"),
    ),
    (
        "epochs",
        float,
        10.0,
        typer.Option(
            help="Passes over the training data when --steps is 0.", rich_help_panel="Training"
        ),
    ),
    (
        "batch_size",
        int,
        32,
        typer.Option("--batch-size", "-b", help="Sequences per batch.", rich_help_panel="Training"),
    ),
    (
        "lr",
        float,
        3e-3,
        typer.Option(help="Peak learning rate (AdamW).", rich_help_panel="Training"),
    ),
    (
        "weight_decay",
        float,
        0.01,
        typer.Option(help="AdamW weight decay.", rich_help_panel="Training"),
    ),
    ("warmup", int, 100, typer.Option(help="Linear warmup steps.", rich_help_panel="Training")),
    (
        "schedule",
        str,
        "cosine",
        typer.Option(
            help="LR decay after warmup: cosine | linear | constant.", rich_help_panel="Training"
        ),
    ),
    (
        "clip",
        float,
        1.0,
        typer.Option(
            help="Gradient-norm clipping (0: off). Cures exploding gradients.",
            rich_help_panel="Training",
        ),
    ),
    (
        "eval_every",
        int,
        0,
        typer.Option(
            help="Steps between dev evaluations (0: ~10 per run).", rich_help_panel="Training"
        ),
    ),
    (
        "patience",
        int,
        0,
        typer.Option(
            help="Stop after this many evaluations without improvement (0: off).",
            rich_help_panel="Training",
        ),
    ),
    (
        "max_time",
        float,
        0.0,
        typer.Option(
            "--max-time",
            help="Stop after this many minutes of training (0: no limit).",
            rich_help_panel="Training",
        ),
    ),
    (
        "time_budget",
        float,
        0.0,
        typer.Option(
            "--time-budget",
            help="Train for this many minutes: the LR schedule follows elapsed time and ends at "
            "the budget, so a run on a busy machine still anneals (not bit-reproducible).",
            rich_help_panel="Training",
        ),
    ),
    (
        "ema",
        float,
        0.0,
        typer.Option(
            "--ema",
            help="Evaluate and save an exponential moving average of the weights with this "
            "decay, e.g. 0.999 (0: off). Often a better model than the last weights.",
            rich_help_panel="Training",
        ),
    ),
    (
        "seed",
        int,
        0,
        typer.Option(
            help="Random seed: the same seed and data give the same model.", rich_help_panel="Run"
        ),
    ),
    (
        "threads",
        int,
        0,
        typer.Option(
            help="CPU threads for torch (0: torch's default). One is often faster on a busy 2-core machine.",
            rich_help_panel="Run",
        ),
    ),
    (
        "device",
        str,
        "auto",
        typer.Option(
            help="auto | cpu | cuda | mps (auto: cuda, then mps, then cpu).", rich_help_panel="Run"
        ),
    ),
    (
        "precision",
        str,
        "fp32",
        typer.Option(
            help="fp32 | bf16 (bf16 autocast; faster on CPUs with bf16 support).",
            rich_help_panel="Run",
        ),
    ),
    (
        "log_every",
        int,
        20,
        typer.Option("--log-every", help="Steps between logged losses.", rich_help_panel="Run"),
    ),
    (
        "resume",
        bool,
        False,
        typer.Option(
            "--resume",
            help="Continue the interrupted run for --output exactly where it stopped.",
            rich_help_panel="Run",
        ),
    ),
    (
        "save_dtype",
        str,
        "fp32",
        typer.Option(
            "--save-dtype",
            help="Storage dtype of the saved model: fp32 | fp16 | bf16.",
            rich_help_panel="Run",
        ),
    ),
]

_BACKBONE_OPTIONS = {
    "cell": (str, "rnn | lstm | gru (rnn is the tanh Elman RNN)."),
    "layers": (int, "Stacked recurrent layers."),
    "hidden": (int, "Hidden units per layer and direction."),
    "embedding_dim": (int, "Token embedding size."),
    "dropout": (float, "Dropout between stacked layers."),
    "embedding_dropout": (float, "Dropout on token embeddings."),
    "bidirectional": (bool, "Run a second recurrent stack right-to-left."),
    "weight_dropout": (
        float,
        "DropConnect on the recurrent layers' hidden-to-hidden weights, one mask per batch "
        "(AWD-LSTM's weight drop; 0: off).",
    ),
}


def training_command(**backbone_defaults: Any):
    """Decorate a `train TASK` command: adds the shared training and backbone options and
    passes them packed as `train_cfg` (TrainConfig), `backbone` (dict) and `run` (dict)."""

    backbone_defaults.setdefault("weight_dropout", 0.0)

    def deco(fn):
        sig = inspect.signature(fn)
        hints = typing.get_type_hints(fn, include_extras=True)  # resolve string annotations
        own = [
            p.replace(annotation=hints.get(p.name, p.annotation))
            for p in sig.parameters.values()
            if p.name not in ("train_cfg", "backbone", "run")
        ]
        # Typer reads this signature: the command's own options, then the shared ones.
        extra = [
            inspect.Parameter(
                name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[tp, opt]
            )
            for name, tp, default, opt in _TRAIN_OPTIONS
        ]
        for name, default in backbone_defaults.items():
            tp, help_ = _BACKBONE_OPTIONS[name]
            flag = f"--{name.replace('_', '-')}"
            if tp is bool:
                decl = typer.Option(f"{flag}/--no-{name}", help=help_, rich_help_panel="Model")
            else:
                decl = typer.Option(flag, help=help_, rich_help_panel="Model")
            extra.append(
                inspect.Parameter(
                    name,
                    inspect.Parameter.KEYWORD_ONLY,
                    default=default,
                    annotation=Annotated[tp, decl],
                )
            )
        names_train = {n for n, _, _, _ in _TRAIN_OPTIONS}

        @functools.wraps(fn)
        def wrapper(**kwargs):
            from seqtool.config import TrainConfig

            run = {k: kwargs.pop(k) for k in ("output", "resume", "save_dtype")}
            tc = {k: kwargs.pop(k) for k in list(kwargs) if k in names_train}
            bb = {k: kwargs.pop(k) for k in list(kwargs) if k in backbone_defaults}
            if "hidden" in bb:
                bb["hidden_size"] = bb.pop("hidden")
            if "seq_len" in kwargs:
                tc["seq_len"] = kwargs.pop("seq_len")
            train_cfg = TrainConfig.from_dict(tc)
            return fn(train_cfg=train_cfg, backbone=bb, run=run, **kwargs)

        positional = [p for p in own if p.kind != inspect.Parameter.KEYWORD_ONLY]
        keyword = [
            p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
            for p in own
            if p.kind == inspect.Parameter.KEYWORD_ONLY
        ]
        wrapper.__signature__ = sig.replace(parameters=positional + keyword + extra)
        return wrapper

    return deco


def run_training(task: str, train_cfg: Any, run: dict, **task_options: Any) -> None:
    from seqtool import api

    summary = api.train(
        task,
        run["output"],
        train_cfg,
        resume=run["resume"],
        save_dtype=run["save_dtype"],
        console=err_console(),
        **task_options,
    )
    if os.environ.get("RANK", "0") != "0":  # under torchrun rank 0 reports
        return
    best = summary["best"]
    detail = "  ".join(f"{k} {v:.4g}" for k, v in best.items()) if best else "no dev data"
    status(
        f"saved {summary['output']} after {summary['steps']} steps in "
        f"{summary['elapsed_s'] / 60:.1f} min ({summary['stopped']}); best dev: {detail}"
    )
