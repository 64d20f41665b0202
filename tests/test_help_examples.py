"""Help you can copy: every command's --help has examples, none is broken at 80 columns, and
every one runs as written from the checkout (corpora/ samples, shipped models), in order within
a command's help, in a fresh directory, as test_readme.py runs the README's."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, run_cli
from test_readme import _env

HEADING = re.compile(r"^\s*Examples?\b[^:]*:\s*$")  # "Examples:", "Examples (tiny...):"
SECTION = re.compile(r"^\S")  # Arguments:, Options:, Commands: start at column 0


def _click_tree():
    """(path, click command) of every command and group, the root first."""
    import typer

    from seqtool.cli import build_app

    root = typer.main.get_command(build_app(full=True))
    out, todo = [], [((), root)]
    while todo:
        path, cmd = todo.pop(0)
        out.append((path, cmd))
        for name, sub in getattr(cmd, "commands", {}).items():
            todo.append(((*path, name), sub))
    return out


TREE = _click_tree()
PATHS = [path for path, _ in TREE]


def _id(path: tuple[str, ...]) -> str:
    return " ".join(path) or "seqtool"


def source_examples(help_: str) -> list[str]:
    """The example lines of a help text as written (its indented paragraphs after an
    Examples: heading), without click's \\b markers."""
    out, inside = [], False
    for line in (help_ or "").splitlines():
        if HEADING.match(line):
            inside = True
        elif inside and line.startswith((" ", "\t")) and line.strip():
            out.append(line.strip())
        elif inside and line.strip() and line.strip() != "\b":
            inside = False
    return out


def shown_examples(text: str) -> list[str]:
    """The example lines of rendered --help output."""
    out, inside = [], False
    for line in text.splitlines():
        if HEADING.match(line):
            inside = True
        elif inside and SECTION.match(line):
            break
        elif inside and line.strip():
            out.append(line.strip())
    return out


def _help(path: tuple[str, ...], monkeypatch) -> str:
    monkeypatch.setenv("COLUMNS", "80")
    r = run_cli(*path, "--help")
    assert r.code == 0, r
    return r.out


@pytest.mark.parametrize("path", PATHS, ids=_id)
def test_help_has_examples_none_broken_at_80_columns(path, monkeypatch):
    cmd = dict(TREE)[path]
    written = source_examples(cmd.help)
    assert written, f"`{_id(path)} --help` has no examples"
    shown = _help(path, monkeypatch).splitlines()
    broken = [ex for ex in written if ex not in (line.strip() for line in shown)]
    assert not broken, f"`{_id(path)} --help` breaks these examples across lines: {broken}"


def test_eval_help_lists_every_tasks_metrics(monkeypatch):
    from seqtool.tasks import TASKS, get

    text = _help(("eval",), monkeypatch)
    for task in TASKS:
        assert re.search(rf"^\s+{task}\b", text, re.M), f"eval --help says nothing of {task}"
        assert get(task).main_metric in text, f"eval --help lacks {task}'s main metric"


@pytest.mark.parametrize("path", PATHS, ids=_id)
def test_examples_name_files_that_exist(path):
    """Every corpora/ or checkpoints/ path an example names is in the checkout."""
    missing = [
        p
        for ex in source_examples(dict(TREE)[path].help)
        for p in re.findall(r"(?<![\w./-])((?:corpora|checkpoints)/[\w./-]+)", ex)
        if not (ROOT / p).exists()
    ]
    assert not missing, f"`{_id(path)} --help` names files that do not exist: {missing}"


@pytest.mark.slow
@pytest.mark.parametrize("path", PATHS, ids=_id)
def test_every_example_runs_as_written(path, tmp_path, monkeypatch):
    """Each example of the command's --help (as shown at 80 columns), in order, in a fresh
    directory that sees the checkout's corpora/ and checkpoints/."""
    examples = shown_examples(_help(path, monkeypatch))
    for name in ("corpora", "checkpoints"):
        (tmp_path / name).symlink_to(ROOT / name, target_is_directory=True)
    env = _env(tmp_path)
    for ex in examples:
        if re.search(r"\bjq\b", ex) and shutil.which("jq") is None:
            continue  # jq is the examples' tool, not a dependency of seqtool
        p = subprocess.run(
            ["bash", "-o", "pipefail", "-c", ex],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert p.returncode == 0, (
            f"`{_id(path)} --help` example failed (exit {p.returncode}):\n  {ex}\n"
            f"stdout: {p.stdout[-1000:]}\nstderr: {p.stderr[-1500:]}"
        )


def test_examples_are_found_in_rendered_help(monkeypatch):
    """The runner reads the rendered help: it must find what the source holds."""
    cmd = dict(TREE)[("plot",)]
    assert shown_examples(_help(("plot",), monkeypatch)) == source_examples(cmd.help)
    assert Path(ROOT / "corpora").is_dir()
