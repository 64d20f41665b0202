"""Shared fixtures: a tiny corpus, an in-process CLI runner that behaves like the shell."""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests draw the same cases every run (a red CI run is never chance) and keep no
# example database between runs; test modules' own @settings inherit this profile.
settings.register_profile("seqtool", derandomize=True, database=None, print_blob=True)
settings.load_profile("seqtool")

# Token caches of test corpora go to a throwaway directory, not ~/.cache.
os.environ.setdefault("SEQTOOL_CACHE", tempfile.mkdtemp(prefix="seqtool-test-cache-"))

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "corpora"
SAMPLE = ROOT / "corpora" / "play-sample.txt"

# The checkout's seqtool for subprocesses (never another one on PATH): this interpreter with
# the checkout first on its path (checkout_env()).
SEQTOOL = [sys.executable, "-m", "seqtool"]


def checkout_env(env: dict[str, str] | None = None, **extra: str) -> dict[str, str]:
    """`env` (default: os.environ) with the checkout first on PYTHONPATH, plus `extra`."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return {**env, **extra}


# Tiny models: hidden 7, embedding 10 (joeynmt's trick) keep the suite fast.
TINY = ["--hidden", "7", "--embedding-dim", "10", "--layers", "1", "--threads", "1"]


class Result:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def __repr__(self) -> str:
        return f"Result(code={self.code}, out={self.out[:200]!r}, err={self.err[-500:]!r})"


def run_cli(*args: str, stdin: str | bytes = b"") -> Result:
    """Run `seqtool ARGS` in-process through the real entry point (exit codes included)."""
    from seqtool.cli import main

    data = stdin.encode() if isinstance(stdin, str) else stdin
    out, err = io.StringIO(), io.StringIO()
    saved = sys.argv, sys.stdin
    sys.argv = ["seqtool", *map(str, args)]
    sys.stdin = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv, sys.stdin = saved
    return Result(code, out.getvalue(), err.getvalue())


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory) -> Path:
    """A tiny char LM trained on the sample corpus (session-wide; a few seconds)."""
    out = tmp_path_factory.mktemp("lm") / "tiny.safetensors"
    r = run_cli(
        "train",
        "lm",
        SAMPLE,
        "-o",
        out,
        *TINY,
        "--steps",
        "30",
        "--batch-size",
        "8",
        "--seq-len",
        "32",
        "--warmup",
        "5",
        "--lr",
        "0.01",
    )
    assert r.code == 0, r
    return out


@pytest.fixture(scope="session")
def tiny_clf(tmp_path_factory) -> Path:
    """A tiny char-level BiLSTM trained on the sample (session-wide; a few seconds)."""
    out = tmp_path_factory.mktemp("clf") / "tiny.safetensors"
    r = run_cli(
        "train",
        "classifier",
        ROOT / "corpora" / "sentiment-sample.csv",
        "-o",
        out,
        *TINY,
        "--tokenizer",
        "char",
        "--pool",
        "max",
        "--steps",
        "120",
        "--batch-size",
        "8",
        "--warmup",
        "10",
        "--lr",
        "0.02",
        "--dev-fraction",
        "0",
        "--head-dropout",
        "0",
        "--seed",
        "1",
    )
    assert r.code == 0, r
    assert out.is_file()
    return out
