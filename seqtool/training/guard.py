"""Nothing lost, nothing silently ignored: what `train -o FILE` may do to what FILE and its run
directory already hold, and which options a resumed run may change.

- A finished model at FILE is replaced only with --overwrite (a new run), or trained further
  with --resume; an interrupted run needs --resume or --restart (or --overwrite).
- --resume continues the same model on the same data: an option that would change the model
  (sizes, cell, tokenizer, task options) or the data stream (files, --batch-size, --seed) is a
  usage error naming each one. How it trains (--lr, --steps, --time-budget, schedule,
  intervals, device...) may change and is echoed on stderr. Options not given keep the run's.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from seqtool import notices
from seqtool.config import BackboneConfig, TrainConfig
from seqtool.errors import SeqtoolError
from seqtool.training.runfiles import interrupted_run, run_dir, saved_state

# Training options that a resumed run may not change: they decide the order of the data.
DATA_ORDER = ("batch_size", "seq_len", "seed")


def check_output(out: Path, resume: bool, restart: bool, overwrite: bool) -> None:
    """Refuse (one line, exit 2) a run that would throw away what `out` or its run holds."""
    if out.is_dir():
        raise SeqtoolError(f"{out}: is a directory; -o takes a .safetensors file path")
    if resume and (restart or overwrite):
        other = "--restart" if restart else "--overwrite"
        raise SeqtoolError(f"--resume and {other} exclude each other")
    if resume:
        return
    where = interrupted_run(out)
    if where is not None and not (restart or overwrite):
        raise SeqtoolError(
            f"{run_dir(out)}/ holds an interrupted run ({where}): add --resume to continue "
            "it, or --restart to discard it and start over"
        )
    if out.exists() and not overwrite and where is None:
        raise SeqtoolError(
            f"{out} already holds {_describe(out)}: add --overwrite to replace it, "
            "--resume --steps N to train it further, or choose another -o"
        )


def _describe(out: Path) -> str:
    from seqtool import checkpoint

    try:
        header = checkpoint.read_header(out)
    except SeqtoolError:
        return "a file that is not a seqtool model"
    steps = (saved_state(out) or {}).get("step")
    done = f", {steps} steps" if steps else ""
    return f"a trained model ({checkpoint.article(header.task)} {header.task}{done})"


def stored_options(options: dict[str, Any]) -> dict[str, Any]:
    """The task's data and setup options as config.json keeps them: paths of existing
    files made absolute, so a resume from another folder compares the same files."""
    return {k: _absolute(v) for k, v in options.items()}


def _absolute(v: Any) -> Any:
    if isinstance(v, list):
        return [_absolute(x) for x in v]
    if isinstance(v, str) and v not in ("", "-") and os.path.isfile(v):
        return os.path.realpath(v)
    return v


def resumed(
    out: Path,
    task_cls: Any,
    train_cfg: TrainConfig,
    options: dict[str, Any],
    backbone: dict[str, Any],
    given: set[str] | None,
) -> tuple[Any, TrainConfig, dict[str, Any]]:
    """For --resume: (the run's checkpoint header, the training config to go on with, the
    task options). given: the options the user named (the CLI), None: all passed (the API)."""
    import json

    from seqtool import checkpoint

    last = run_dir(out) / "last.safetensors"
    if not last.is_file():
        raise SeqtoolError(f"--resume: nothing to resume in {run_dir(out)}/")
    header = checkpoint.read_header(last)
    checkpoint.expect_task(header, task_cls.task, f"train {task_cls.task} --resume")
    try:
        saved_opts = json.loads((run_dir(out) / "config.json").read_text()).get("options")
    except (OSError, ValueError):
        saved_opts = None  # a run from before options were stored: nothing to compare
    saved_opts = saved_opts or {}

    def named(k: str) -> bool:
        return given is None or k in given

    # The model and its data: what was named must match the run.
    model_cfg = header.config
    wrong = []
    for k, v in options.items():
        if not named(k):
            continue
        if k in _names(task_cls.config_class):
            if k in model_cfg and model_cfg[k] != v:
                wrong.append(_shown(task_cls.config_class, k, v, model_cfg[k]))
        elif k in saved_opts and _absolute(v) != saved_opts[k]:
            wrong.append(_shown(task_cls.options_class, k, v, saved_opts[k]))
    saved_bb = model_cfg.get("backbone", {})
    for k, v in backbone.items():
        if named(k) and k in saved_bb and saved_bb[k] != v:
            wrong.append(_shown(BackboneConfig, k, v, saved_bb[k]))
    # Training: the run's own values, but for those named.
    saved = {k: v for k, v in header.json("train_config", {}).items() if k in _names(TrainConfig)}
    now = train_cfg.to_dict()
    merged = {**now, **saved, **{k: now[k] for k in now if named(k)}}
    for k in DATA_ORDER:
        if k in saved and merged[k] != saved[k]:
            wrong.append(_shown(TrainConfig, k, merged[k], saved[k]))
    if wrong:
        raise SeqtoolError(
            f"--resume: {'; '.join(wrong)}: these change the model or its data, so the run "
            "cannot go on with them; drop them to continue it, or start a new run (another "
            "-o, or --overwrite)"
        )
    state = saved_state(out) or {}
    step = int(state.get("step", 0))
    if merged["steps"] and merged["steps"] < step:
        raise SeqtoolError(
            f"--resume: --steps {merged['steps']} is below the {step} steps the run has "
            "done; give a larger --steps to extend it"
        )
    changed = [
        f"{_flag(TrainConfig, k)} {_value(saved[k])} -> {_value(merged[k])}"
        for k in merged
        if k in saved and merged[k] != saved[k]
    ]
    if changed:
        notices.say(f"resuming at step {step} with {', '.join(changed)}")
    # Data options not named are the run's (--dev-fraction decides the training rows).
    opts = {**options, **{k: v for k, v in saved_opts.items() if k in options and not named(k)}}
    return header, TrainConfig.from_dict(merged), opts


def _names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def _flag(cls: type, name: str) -> str:
    """The option's spelling: its first long flag."""
    field = next((f for f in dataclasses.fields(cls) if f.name == name), None)
    flags = (field.metadata.get("flags") if field else None) or ()
    return next((f for f in flags if f.startswith("--")), "--" + name.replace("_", "-"))


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "on" if v else "off"
    if v is None:
        return "auto"
    if isinstance(v, list):
        return " ".join(map(str, v))
    return str(v)


def _shown(cls: type, name: str, value: Any, saved: Any) -> str:
    return f"{_flag(cls, name)} {_value(value)} (the run has {_value(saved)})"
