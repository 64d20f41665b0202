"""Usage errors are usage errors: click's usage message and exit 2, whichever click the
installed Typer uses (recent Typers bundle their own copy, so catching only the click
package's exception once turned every typo into "internal error", exit 1). Run through the
real `seqtool` executable, so a dependency release cannot silently break it again."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest
import typer
from conftest import SAMPLE, run_cli


def seqtool(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    # The executable installed beside this Python (its entry point script), else its -m.
    exe = shutil.which("seqtool", path=os.path.dirname(sys.executable))
    cmd = [exe] if exe else [sys.executable, "-m", "seqtool"]
    return subprocess.run(
        [*cmd, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def _bare_exit_code() -> int:
    """What click does for no_args_is_help: click >= 8.2 (and the click bundled in Typer)
    raise NoArgsIsHelpError, exit 2 with the help on stderr; older clicks exit 0."""
    exceptions = sys.modules[typer.BadParameter.__module__]  # click's, or Typer's copy
    return 2 if hasattr(exceptions, "NoArgsIsHelpError") else 0


def _usage_error(p: subprocess.CompletedProcess, *expected: str) -> None:
    assert p.returncode == 2, p.stderr
    assert re.search(r"^Usage: .*seqtool", p.stderr, re.M) and "Error:" in p.stderr
    assert "internal error" not in p.stderr and "Traceback" not in p.stderr
    assert p.stdout == ""
    for text in expected:
        assert text in p.stderr, p.stderr


def test_unknown_command():
    _usage_error(seqtool("gen"), "No such command 'gen'")


def test_unknown_option():
    _usage_error(seqtool("generate", "--bogus"), "--bogus")


def test_bad_option_value():
    _usage_error(seqtool("generate", "--length", "abc"), "Invalid value for '--length'")


def test_missing_arguments():
    _usage_error(seqtool("eval"), "Missing argument")


def test_train_without_a_file():
    _usage_error(seqtool("train", "lm"), "Missing argument", "seqtool train lm")


@pytest.mark.parametrize("args", [[], ["train"]], ids=["seqtool", "seqtool train"])
def test_bare_command_shows_the_help(args):
    p = seqtool(*args)
    assert p.returncode == _bare_exit_code(), p.stderr
    shown = p.stdout + p.stderr
    assert re.search(r"^Usage: .*seqtool", shown, re.M) and "Commands:" in shown
    assert "Error" not in shown and "internal error" not in shown


def _raising(exc: BaseException):
    class App:
        def __call__(self, **_kw):
            raise exc

    return lambda **_kw: App()


def _bundled_usage_error():
    """A UsageError of the click that Typer uses (its bundled copy in recent releases)."""
    mro = typer.BadParameter.__mro__
    return next(c for c in mro if c.__name__ == "UsageError")("bad usage")


def test_both_clicks_usage_errors_are_exit_2(monkeypatch):
    import seqtool.cli

    errors = [_bundled_usage_error()]
    try:
        import click

        errors.append(click.exceptions.UsageError("bad usage"))
    except ImportError:
        pass
    for exc in errors:
        monkeypatch.setattr(seqtool.cli, "build_app", _raising(exc))
        r = run_cli("generate")
        assert r.code == 2, (type(exc).__module__, r)
        assert "Error: bad usage" in r.err and "internal error" not in r.err


def test_abort_is_130(monkeypatch):
    import seqtool.cli

    monkeypatch.setattr(seqtool.cli, "build_app", _raising(typer.Abort()))
    r = run_cli("generate")
    assert r.code == 130 and "aborted" in r.err and "internal error" not in r.err


LM = ["--hidden", "8", "--embedding-dim", "8", "--layers", "1", "--threads", "1"]
LM += ["--batch-size", "4", "--seq-len", "16", "--eval-every", "5", "--log-every", "1"]


def test_rerun_into_an_interrupted_run_is_refused_with_a_hint(tmp_path):
    from test_trainer import InterruptAt

    from seqtool import api
    from seqtool.config import TrainConfig
    from seqtool.training import Interrupted

    out = tmp_path / "m.safetensors"
    cfg = TrainConfig(steps=20, batch_size=4, seq_len=16, eval_every=5, log_every=1, threads=1)
    backbone = dict(hidden_size=8, embedding_dim=8, layers=1)
    with pytest.raises(Interrupted):
        api.train(
            "lm", out, cfg, files=[str(SAMPLE)], backbone=backbone, callbacks=[InterruptAt(7)]
        )
    saved = (tmp_path / "m.run" / "resume.pt").read_bytes()
    p = seqtool("train", "lm", SAMPLE, "-o", out, "--steps", "20", *LM)
    assert p.returncode == 2, p.stderr
    line = p.stderr.strip()
    assert len(line.splitlines()) == 1 and "Traceback" not in line
    assert "interrupted run (step 7 of 20)" in line and "--resume" in line and "--restart" in line
    assert (tmp_path / "m.run" / "resume.pt").read_bytes() == saved  # nothing lost
    p = seqtool("train", "lm", SAMPLE, "-o", out, "--steps", "20", *LM, "--resume", "--restart")
    assert p.returncode == 2 and "exclude each other" in p.stderr
    p = seqtool("train", "lm", SAMPLE, "-o", out, "--steps", "20", *LM, "--restart")
    assert p.returncode == 0, p.stderr
    assert "training lm: 20 steps from step 0" in p.stderr
