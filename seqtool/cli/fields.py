"""Option fields that several commands share, declared once: `threads: int = fields.threads()`
in a command's options dataclass (cli/options.run_command turns each field into an option).
Each command sets its own default and, where it says more, its own help."""

from __future__ import annotations

from typing import Any

from seqtool.config import opt


def file_argument(help_: str, default: str | None = "-") -> Any:
    """The input file argument of a command that reads a file or stdin."""
    return opt(default, help_, argument=True, metavar="FILE")


def table_file(what: str, table_options: str) -> Any:
    """The input argument of a command that reads a table or text lines."""
    help_ = f"{what}; - or none reads stdin (a table when {table_options} is given)."
    return file_argument(help_, None)


def model(help_: str) -> Any:
    """-m/--model: which checkpoint a command runs (each says its default): a name from
    `seqtool models` or a .safetensors path."""
    return opt(
        None,
        help_ + " A name from `seqtool models` or a path.",
        flags=("--model", "-m"),
        metavar="MODEL",
    )


def device() -> Any:
    """--device of every command that runs a model (train has TrainConfig.device)."""
    return opt(
        "auto", "auto | cpu | cuda | mps (auto: cuda, then mps, then cpu).", metavar="DEVICE"
    )


def fmt(default: str, help_: str, flag: str = "--format") -> Any:
    """--format (or --input-format): one of a command's named formats."""
    return opt(default, help_, flags=(flag,), metavar="FORMAT")


def batch_size(default: int, help_: str) -> Any:
    """-b/--batch-size: the throughput knob of a command that reads a stream."""
    return opt(default, help_, flags=("--batch-size", "-b"), metavar="N")


def threads(default: int = 1, help_: str = "CPU threads (0: torch's default).") -> Any:
    return opt(default, help_, metavar="N")


def precision() -> Any:
    help_ = (
        "bf16 runs under autocast: ~1.6x faster on CPUs with native bf16 and on GPUs; "
        "refused where the device has no bf16 LSTM."
    )
    return opt("fp32", help_, metavar="fp32|bf16")


def encoding_errors() -> Any:
    return opt("strict", "strict | replace | ignore: bytes that are not UTF-8.", metavar="MODE")


def output(help_: str = "Write to this file (atomically) instead of stdout.") -> Any:
    return opt(None, help_, flags=("--output", "-o"), metavar="FILE")


def table_input_format() -> Any:
    """--input-format of the commands that read tables (classify, pseudo-label)."""
    return fmt(
        "auto",
        "auto (by extension; stdin: text, or with a table option CSV/TSV/JSONL as its first "
        "line says) | text | csv | tsv | jsonl.",
        "--input-format",
    )
