"""One self-contained .safetensors file per model; no pickle anywhere.

Tensors hold the weights. The string metadata holds `format_version`, the seqtool version,
the task, the model config, the training config, the tokenizer (base64 bytes) and any
task extras (label vocabularies), each as JSON. The header is read and checked by
safetensors itself (no torch import), so a foreign or truncated file is a clear error and
loading can run no code. Writes go to a temp file, are fsynced, then renamed into place.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqtool import __version__
from seqtool.errors import CheckpointError

FORMAT_VERSION = "1"
SAVE_DTYPES = ("fp32", "fp16", "bf16")
# What save() writes itself; task extras take any other key.
RESERVED_KEYS = {"format_version", "seqtool_version", "task", "config", "train_config",
                  "tokenizer", "storage_dtype"}  # fmt: skip


@dataclass
class Header:
    """What a checkpoint says about itself, read without torch."""

    path: Path
    task: str
    metadata: dict[str, str]

    def json(self, key: str, default: Any = None) -> Any:
        raw = self.metadata.get(key)
        if raw is None:
            return default
        try:
            return json.loads(raw)
        except json.JSONDecodeError as e:
            raise CheckpointError(f"{self.path}: metadata {key!r} is not valid JSON") from e

    @property
    def config(self) -> dict[str, Any]:
        return self.json("config", {})

    def tokenizer_bytes(self) -> tuple[str, bytes] | None:
        tok = self.json("tokenizer")
        if tok is None:
            return None
        try:
            return tok["kind"], base64.b64decode(tok["data"], validate=True)
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"{self.path}: tokenizer metadata is damaged") from e


def read_header(path: str | Path) -> Header:
    """Read and validate the header through safetensors (`safe_open(...).metadata()`, which
    checks the length prefix, the JSON and that the tensors' offsets lie inside the file),
    then seqtool's own keys. Never imports torch."""
    from safetensors import SafetensorError, safe_open

    from seqtool.data.text import check_input_path

    p = check_input_path(path, "checkpoint", "a .safetensors checkpoint", CheckpointError)
    if p.stat().st_size < 8:
        raise CheckpointError(f"{p}: not a safetensors file (too short)")
    try:
        with safe_open(str(p), framework="numpy") as f:
            meta = f.metadata() or {}
    except SafetensorError as e:
        if "incomplete metadata" in str(e) or "not fully covered" in str(e):
            raise CheckpointError(f"{p}: truncated checkpoint ({e})") from None
        raise CheckpointError(f"{p}: not a safetensors file, or truncated ({e})") from None
    except (OSError, ValueError) as e:  # unreadable, or a header that is not JSON
        raise CheckpointError(f"{p}: not a safetensors file ({e})") from None
    if "format_version" not in meta or "task" not in meta:
        raise CheckpointError(f"{p}: a safetensors file, but not a seqtool checkpoint")
    if meta["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"{p}: checkpoint format {meta['format_version']} is not supported "
            f"(this seqtool reads format {FORMAT_VERSION})"
        )
    return Header(p, meta["task"], dict(meta))


def article(word: str) -> str:
    """The article before a task name: "an lm", "a tagger" (lm is said letter by letter)."""
    return "an" if word[:1].lower() in "aeio" or word.lower() == "lm" else "a"


def expect_task(header: Header, task: str | tuple[str, ...], command: str) -> None:
    tasks = (task,) if isinstance(task, str) else task
    if header.task not in tasks:
        raise CheckpointError(
            f"{header.path} is {article(header.task)} {header.task} checkpoint; "
            f"`seqtool {command}` needs {article(tasks[0])} {' or '.join(tasks)} checkpoint"
        )


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write via temp file + fsync + rename (data/atomic.py) so readers never see half a file."""
    from seqtool.data.atomic import write_bytes

    write_bytes(path, data)


def save(
    path: str | Path,
    tensors: dict[str, Any],
    task: str,
    config: dict[str, Any],
    tokenizer: Any = None,
    train_config: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    dtype: str = "fp32",
) -> None:
    """Save weights + metadata atomically. `dtype` stores floating weights as fp16/bf16."""
    import torch
    from safetensors.torch import save as st_save

    if dtype not in SAVE_DTYPES:
        raise CheckpointError(f"save dtype must be one of {', '.join(SAVE_DTYPES)}")
    target = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
    out = {}
    for k, v in tensors.items():
        v = v.detach().cpu()
        if v.is_floating_point():
            v = v.to(target)
        out[k] = v.contiguous()
    meta = {
        "format_version": FORMAT_VERSION,
        "seqtool_version": __version__,
        "task": task,
        "config": json.dumps(config, sort_keys=True),
        "storage_dtype": dtype,
    }
    if train_config is not None:
        meta["train_config"] = json.dumps(train_config, sort_keys=True)
    if tokenizer is not None:
        data = base64.b64encode(tokenizer.to_bytes()).decode("ascii")
        meta["tokenizer"] = json.dumps({"kind": tokenizer.kind, "data": data})
    for k, v in (extra or {}).items():
        meta[k] = json.dumps(v)
    atomic_write_bytes(path, st_save(out, metadata=meta))


def update_metadata(path: str | Path, extra: dict[str, Any], out: str | Path | None = None) -> None:
    """Rewrite a checkpoint with task extras (JSON values) set in its metadata, to `out`
    (default: in place, atomically). The tensors are copied as stored, bit for bit."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    from safetensors.torch import save as st_save

    header = read_header(path)
    try:
        tensors = load_file(str(header.path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{header.path}: damaged checkpoint ({e})") from None
    meta = dict(header.metadata)
    for k, v in extra.items():
        if k in RESERVED_KEYS:
            raise CheckpointError(f"metadata key {k!r} is reserved")
        meta[k] = json.dumps(v)
    atomic_write_bytes(out or header.path, st_save(tensors, metadata=meta))


def load_tensors(header: Header) -> dict[str, Any]:
    """Weights as float32 tensors (stored fp16/bf16 are widened)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(header.path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{header.path}: damaged checkpoint ({e})") from None
    return {k: (v.float() if v.is_floating_point() else v) for k, v in tensors.items()}


def load_tokenizer(header: Header) -> Any:
    from seqtool import tokenizers

    tb = header.tokenizer_bytes()
    if tb is None:
        return None
    try:
        return tokenizers.from_bytes(*tb)
    except Exception as e:
        raise CheckpointError(f"{header.path}: tokenizer inside the checkpoint is damaged") from e
