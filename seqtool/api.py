"""The library surface the CLI and tests call: train(), load(), evaluate(), generate()."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from seqtool.config import TrainConfig
from seqtool.errors import SeqtoolError


def task_class(task: str) -> Any:
    """The TaskModel subclass registered for `task`."""
    from seqtool import tasks

    return tasks.get(task)


def split_options(task_cls: Any, options: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Keyword options -> (the task's options_class instance, its config_class fields)."""
    own = {f.name for f in dataclasses.fields(task_cls.options_class)}
    model = {f.name for f in dataclasses.fields(task_cls.config_class)}
    unknown = sorted(set(options) - own - model)
    if unknown:
        raise SeqtoolError(f"train {task_cls.task}: unknown option(s) {', '.join(unknown)}")
    opts = task_cls.options_class(**{k: v for k, v in options.items() if k in own})
    return opts, {k: v for k, v in options.items() if k in model and k not in own}


def train(
    task: str,
    out: str | Path,
    train_cfg: TrainConfig,
    resume: bool = False,
    save_dtype: str = "fp32",
    console: Any = None,
    callbacks: list | None = None,
    backbone: dict[str, Any] | None = None,
    restart: bool = False,
    overwrite: bool = False,
    given: set[str] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Train a model of `task`. options: fields of the task's options_class (data, setup)
    and of its config_class (model); backbone: BackboneConfig fields. Returns a summary.

    resume: continue the run saved beside `out` (a larger train_cfg.steps extends it);
    restart: start over although an interrupted run is saved there (without either, that
    is refused, so no saved state is thrown away silently); overwrite: replace a finished
    model at `out` (refused otherwise). given: the option names the user gave (the CLI):
    a resumed run keeps its own values for the others; None: every option passed counts.
    Model-changing options that differ from a resumed run's are refused (training.guard)."""
    from seqtool import notices
    from seqtool.training import Trainer, guard, runtime

    out = Path(out)
    notices.clear()  # warnings from here on belong to this run's log
    guard.check_output(out, resume, restart, overwrite)
    task_cls = task_class(task)
    header = None
    if resume:
        header, train_cfg, options = guard.resumed(
            out, task_cls, train_cfg, options, dict(backbone or {}), given
        )
    opts, model_options = split_options(task_cls, options)
    runtime.set_threads(train_cfg.threads)
    runtime.seed_everything(train_cfg.seed)
    from seqtool.tasks.base import Setup

    setup = Setup(opts, model_options, dict(backbone or {}), train_cfg, header)
    with notices.deferred():  # shown as training starts; a failed setup shows its error alone
        model, source, dev = task_cls.prepare(setup)
    # The resolved config goes to the run's files (config.json beside resume state), not
    # to the terminal: the trainer writes it when the run starts.
    callbacks = model.callbacks() + list(callbacks or [])
    stored = guard.stored_options(dataclasses.asdict(opts))
    # A bf16 cell the device has no kernel for: one line now, not an internal error at step 1.
    runtime.autocast(runtime.resolve_device(train_cfg.device), train_cfg.precision, model)
    trainer = Trainer(model, source, dev, train_cfg, out, save_dtype, callbacks, console, stored)
    return trainer.fit(resume=resume)


def load(
    path: str | Path,
    task: str | tuple[str, ...] | None = None,
    command: str = "",
    device: str | None = None,
) -> Any:
    """A checkpoint by path or by name (`seqtool models`), on `device` (auto|cpu|cuda|mps;
    None: where it loads, the CPU); an absent device is an error before anything loads."""
    from seqtool import paths, tasks

    where = None
    if device is not None:
        from seqtool.training import runtime

        where = runtime.resolve_device(device)
    model = tasks.load(paths.resolve_model(path), task, command)
    return model if where is None or where.type == "cpu" else model.to(where)


def load_header(path: str | Path) -> Any:
    """The checkpoint's header (task, configs, metadata), read without loading weights."""
    from seqtool import checkpoint, paths

    return checkpoint.read_header(paths.resolve_model(path))


def evaluate(
    path: str | Path, data: str, threads: int = 0, device: str | None = None, **options: Any
) -> dict[str, Any]:
    """Metrics of the checkpoint at `path` on a data file, with the task's own metric.
    options: the `seqtool eval` options the task reads (its `eval_options`)."""
    from seqtool.checkpoint import article
    from seqtool.training import runtime

    runtime.set_threads(threads)
    model = load(path, device=device)
    extra = sorted(k for k in options if k not in model.eval_options)
    if extra:
        flags = ", ".join("--" + k.replace("_", "-") for k in extra)
        raise SeqtoolError(
            f"{flags}: not an option of {article(model.task)} {model.task} model's evaluation"
        )
    return model.evaluate(model.eval_data(data, **options))


def calibrate(
    path: str | Path,
    data: list[str],
    method: str = "length",
    out: str | Path | None = None,
    threads: int = 0,
    **options: Any,
) -> dict[str, Any]:
    """Fit a classifier checkpoint's calibration on dev file(s) and store it in the
    checkpoint (in place, or a copy at `out`; written atomically). options: the classifier's
    eval options (text_column, label_column, encoding_errors). Returns, per dev set, ECE and
    NLL with the calibration it had and with the new one, and the fit's warning if any."""
    import torch

    from seqtool import checkpoint
    from seqtool.data.labelled import set_names
    from seqtool.metrics import calibration_metrics
    from seqtool.recipes import calibration
    from seqtool.training import runtime

    runtime.set_threads(threads)
    model = load(path, "classifier", "calibrate")
    old = model.calibration
    named = list(zip(set_names(data), data, strict=True))
    sets = [(name, model.eval_data(p, **options)) for name, p in named]
    per_set = [calibration.dev_logits(model, enc) for _, enc in sets]
    logits, lengths, gold = (torch.cat(list(parts)) for parts in zip(*per_set, strict=True))
    cal, warning = calibration.fit(logits, lengths, gold, method)
    rows = []
    for (name, file), (lg, ln, g) in zip(named, per_set, strict=True):
        before = calibration_metrics(old.apply(lg, ln).tolist(), g.tolist())
        after = calibration_metrics(cal.apply(lg, ln).tolist(), g.tolist())
        acc = float((lg.argmax(-1) == g).float().mean()) if len(g) else 0.0
        rows.append({"set": name, "file": file, "examples": len(g), "accuracy": acc,
                     **{f"{k}_before": v for k, v in before.items()},
                     **{f"{k}_after": v for k, v in after.items()}})  # fmt: skip
    checkpoint.update_metadata(path, {"calibration": cal.to_dict()}, out)
    return {"calibration": cal.to_dict(), "description": cal.describe(),
            "previous": old.describe(), "warning": warning, "sets": rows,
            "output": str(out or path)}  # fmt: skip


def report(path: str | Path, metrics: dict[str, Any]) -> list[Any]:
    """The extra tables (rich renderables) the checkpoint's task shows for these metrics."""
    return task_class(load_header(path).task).report(metrics)


def generate(
    model: Any,
    prompt: str = "",
    length: int = 200,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int | None = None,
) -> Iterator[str]:
    import torch

    from seqtool.decoding import check_sampling

    check_sampling(temperature, top_k, top_p)
    gen = torch.Generator(next(model.parameters()).device)  # sampling runs where the model is
    gen.manual_seed(seed if seed is not None else torch.seed())
    return model.generate(prompt, length, temperature, top_k, top_p, gen)
