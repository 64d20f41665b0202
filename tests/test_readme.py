"""README.md is a user's guide that cannot rot: its tour and examples run, its links resolve.

Runnable blocks are fenced with an info string after the language: ```sh tour (the
one-screen tour, under a minute in all) and ```sh example (one per section). Each block runs
line by line through bash, in a fresh temporary directory that sees the checkout's corpora/
and checkpoints/, the way a user runs it from the checkout.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))

FENCE = re.compile(r"^```(\S*)[ \t]*(.*)$")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def blocks(path: Path = README) -> list[tuple[str, str, list[str]]]:
    """(tag, section heading, commands) for every fenced block of `path`; tag is the
    info string after the language ('' for none). Comment lines are dropped and lines
    ending in a backslash joined, so each command is one bash command line."""
    found: list[tuple[str, str, list[str]]] = []
    heading, tag, body = "", None, []
    for line in path.read_text(encoding="utf-8").splitlines():
        fence = FENCE.match(line)
        if tag is None:
            if line.startswith("#"):
                heading = line.lstrip("#").strip()
            elif fence:
                tag, body = fence.group(2).strip(), []
            continue
        if fence and not fence.group(1):
            found.append((tag, heading, _commands(body)))
            tag = None
        else:
            body.append(line)
    return found


def _commands(lines: list[str]) -> list[str]:
    out, cont = [], ""
    for line in lines:
        if not cont and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            cont += line.rstrip()[:-1] + " "
            continue
        out.append(cont + line)
        cont = ""
    return out


def runnable(tag: str) -> list[tuple[str, list[str]]]:
    return [(heading, cmds) for t, heading, cmds in blocks() if t == tag]


def _env(tmp: Path) -> dict[str, str]:
    """PATH that finds this interpreter's `seqtool` (or a shim running `python -m seqtool`
    where the entry point is not installed); caches kept inside the temporary directory."""
    bindir = Path(sys.executable).parent
    if not (shutil.which("seqtool", path=str(bindir)) or shutil.which("seqtool")):
        bindir = tmp / ".bin"
        bindir.mkdir()
        shim = bindir / "seqtool"
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m seqtool "$@"\n')
        shim.chmod(0o755)
    env = dict(os.environ)
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    env["SEQTOOL_CACHE"] = str(tmp / ".cache" / "seqtool")
    env["HF_DATASETS_CACHE"] = str(tmp / ".cache" / "datasets")
    env.pop("SEQTOOL_CHECKPOINTS", None)  # the checkout's own shipped models
    return env


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_block(cmds: list[str], tmp: Path) -> float:
    """Run each command in `tmp` (corpora/ and checkpoints/ linked in); fail on the first
    non-zero exit. Returns the block's time in seconds: the smaller of wall-clock and CPU
    time, since on a free core the two agree (one thread) while on a shared, loaded
    machine only the CPU time still says what a user would wait."""
    for name in ("corpora", "checkpoints"):
        (tmp / name).symlink_to(ROOT / name, target_is_directory=True)
    env = _env(tmp)
    start, cpu = time.monotonic(), _cpu()
    for cmd in cmds:
        if re.search(r"\bjq\b", cmd) and shutil.which("jq") is None:
            continue  # jq is the cookbook's tool, not a dependency of seqtool
        p = subprocess.run(
            ["bash", "-o", "pipefail", "-c", cmd],
            cwd=tmp,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert p.returncode == 0, (
            f"README command failed (exit {p.returncode}):\n  {cmd}\n"
            f"stdout: {p.stdout[-1500:]}\nstderr: {p.stderr[-1500:]}"
        )
    return min(time.monotonic() - start, _cpu() - cpu)


def test_readme_has_a_tour_and_an_example_per_task():
    tour = runnable("tour")
    assert len(tour) == 1 and len(tour[0][1]) >= 5
    text = "\n".join(c for _, cmds in runnable("example") + tour for c in cmds)
    for task in ("lm", "classifier", "tagger", "translator", "segmenter"):
        assert f"seqtool train {task} corpora/" in text, task
    for verb in ("generate", "classify", "tag", "translate", "eval", "tokenize", "inspect"):
        assert f"seqtool {verb} " in text, verb


def test_tour_runs_in_under_a_minute(tmp_path):
    [(_, cmds)] = runnable("tour")
    took = run_block(cmds, tmp_path)
    assert took < 60, f"the README tour took {took:.0f} s; it promises under a minute"


@pytest.mark.parametrize("heading,cmds", [pytest.param(h, c, id=h) for h, c in runnable("example")])
def test_example_runs_in_seconds(heading, cmds, tmp_path):
    took = run_block(cmds, tmp_path)
    assert took < 60, f"README section {heading!r} took {took:.0f} s"


def test_readme_is_at_most_300_lines():
    n = len(README.read_text(encoding="utf-8").splitlines())
    assert n <= 300, f"README.md has {n} lines; results and recipes belong in docs/"


def test_ci_runs_the_readme_test_command():
    # .ci/run greps README.md for the first line starting with `python -m pytest` and runs it
    lines = README.read_text(encoding="utf-8").splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("python -m pytest"))
    assert first < 10, "the test command belongs in the three opening lines"
    assert re.sub(r"\s*#.*$", "", lines[first]) == "python -m pytest -q"


def _anchors(path: Path) -> set[str]:
    """GitHub's heading ids: lowercased, punctuation dropped, spaces to hyphens."""
    out, fenced = set(), False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            out.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return out


@pytest.mark.parametrize("doc", [README, *DOCS], ids=lambda p: p.name)
def test_relative_links_resolve(doc):
    broken = []
    for target in LINK.findall(doc.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not checked offline
        path, _, anchor = target.partition("#")
        dest = (doc.parent / path).resolve() if path else doc
        if not dest.exists() or (anchor and dest.suffix == ".md" and anchor not in _anchors(dest)):
            broken.append(target)
    assert not broken, f"{doc.name}: links to nothing: {broken}"


@pytest.mark.parametrize("doc", [README, *DOCS], ids=lambda p: p.name)
def test_example_files_exist(doc):
    """Every corpora/ or checkpoints/ path a code block names is in the checkout (and
    ../shared/corpora paths where that directory is present)."""
    shared = ROOT.parent / "shared" / "corpora"
    missing = []
    for _, _, cmds in blocks(doc):
        for cmd in cmds:
            for path in re.findall(
                r"(?<![\w./-])((?:\.\./shared/)?(?:corpora|checkpoints)/[\w./-]+)", cmd
            ):
                if path.startswith("../shared/") and not shared.is_dir():
                    continue
                if not (ROOT / path).exists():
                    missing.append(path)
    assert not missing, f"{doc.name}: examples name files that do not exist: {missing}"
