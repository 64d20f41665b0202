"""Where shipped default models are found (checkout, editable install, or wheel)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from seqtool.errors import SeqtoolError


def search_path() -> list[Path]:
    """$SEQTOOL_CHECKPOINTS, then the checkout's checkpoints/, then the wheel's data dir."""
    dirs = []
    if env := os.environ.get("SEQTOOL_CHECKPOINTS"):
        dirs += [Path(d) for d in env.split(os.pathsep) if d]
    dirs.append(Path(__file__).resolve().parent.parent / "checkpoints")
    dirs.append(Path(sys.prefix) / "share" / "seqtool" / "checkpoints")
    return dirs


def default_model(task: str) -> Path:
    """The shipped model of `task` (its class's `shipped_model`)."""
    from seqtool import tasks

    name = tasks.get(task).shipped_model
    if name is None:
        raise SeqtoolError(f"no {task} model ships with seqtool; pass --model")
    for d in search_path():
        if (d / name).is_file():
            return d / name
    where = ", ".join(str(d) for d in search_path())
    raise SeqtoolError(f"no shipped {task} model {name} found (looked in {where}); pass --model")


# The shipped models' dev results (docs/models.md, measured with `seqtool eval` on the dev
# splits of ../shared/corpora): a checkpoint does not store its own score.
SHIPPED_DEV = {
    "lm-shakespeare": "1.3907 nats/char (tiny-shakespeare)",
    "sentiment": "accuracy 0.865 SST-2, 0.903 IMDB",
    "pos-en": "UPOS 95.63 % (UD EWT)",
    "translate-en-de": "BLEU 35.37 (Multi30k, beam 5)",
    "segment-en": "words F1 99.33 (UD EWT, udeval)",
}


def user_dirs() -> list[Path]:
    """$SEQTOOL_MODELS: folders of the user's own checkpoints (os.pathsep-separated)."""
    env = os.environ.get("SEQTOOL_MODELS", "")
    return [Path(d).expanduser() for d in env.split(os.pathsep) if d]


def named_models() -> list[tuple[str, Path, str]]:
    """(name, path, origin) of every model `-m NAME` can name: the shipped ones (origin
    "shipped"), then those in $SEQTOOL_MODELS ("user"); a name is a file name without
    .safetensors, and the first model of a name wins."""
    seen: dict[str, tuple[str, Path, str]] = {}
    for origin, dirs in (("shipped", search_path()), ("user", user_dirs())):
        for d in dirs:
            if not d.is_dir():
                continue
            for f in sorted(d.glob("*.safetensors")):
                if f.is_file():
                    seen.setdefault(f.stem, (f.stem, f, origin))
    return list(seen.values())


def resolve_model(ref: str | Path) -> str:
    """A model reference as a path: a name from `seqtool models` (shipped, then
    $SEQTOOL_MODELS) before a file path. A reference that is neither a known name nor an
    existing file, and does not look like a path, is an error listing the names."""
    ref = str(ref)
    stem = ref.removesuffix(".safetensors")
    if os.sep not in ref and "/" not in ref:
        for name, path, _ in named_models():
            if name == stem:
                return str(path)
    if Path(ref).exists() or ref.endswith(".safetensors") or "/" in ref or os.sep in ref:
        return ref  # a path: the checkpoint loader names what is wrong with it
    names = ", ".join(n for n, _, _ in named_models()) or "none"
    where = "" if user_dirs() else " (set $SEQTOOL_MODELS to a folder of your own)"
    raise SeqtoolError(
        f"no model named {ref!r} and no such file; the named models are: {names}{where}"
    )
