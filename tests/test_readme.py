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
from conftest import checkout_env

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
    """PATH whose `seqtool` is the checkout's (a shim running this interpreter's
    `python -m seqtool` with the checkout first on PYTHONPATH, never another seqtool on
    PATH); caches kept inside the temporary directory."""
    bindir = tmp / ".bin"
    bindir.mkdir()
    shim = bindir / "seqtool"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m seqtool "$@"\n')
    shim.chmod(0o755)
    env = checkout_env()
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    env["SEQTOOL_CACHE"] = str(tmp / ".cache" / "seqtool")
    env["HF_DATASETS_CACHE"] = str(tmp / ".cache" / "datasets")
    env.pop("SEQTOOL_CHECKPOINTS", None)  # the checkout's own shipped models
    return env


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


# What the README says its commands print, checked where the output is deterministic:
# README command (a substring of it) -> a check of its stdout. Every key must name a README
# command (test_expected_outputs_name_readme_commands), so none is dropped unnoticed.
def _lines(out: str) -> list[str]:
    return out.splitlines()


EXPECT = {
    # label<TAB>score
    '"a charming little gem" | seqtool classify': lambda out: re.fullmatch(
        r"(positive|negative)\t[01]\.\d{4}\n", out
    ),
    # the README's own comment: The/DET old/ADJ man/NOUN ...
    '"The old man the boats." | seqtool tag': lambda out: (
        out.startswith("The/DET old/ADJ man/NOUN ") and len(_lines(out)) == 1
    ),
    '"A man is riding a bicycle ." | seqtool translate': lambda out: (
        len(_lines(out)) == 1 and out.strip()
    ),
    'seqtool generate --prompt "ROMEO:" --length 200': lambda out: (
        out.startswith("ROMEO:") and len(out) > 150
    ),
    "seqtool eval play.safetensors corpora/play-sample.txt": lambda out: all(
        k in out for k in ("nats_per_char", "bits_per_char", "perplexity")
    ),
    # one sentence per line; the words as the README's comment gives them
    '"I don\'t know. Do you?" | seqtool tokenize sentences': lambda out: (
        out == "I don't know.\nDo you?\n"
    ),
    '"I don\'t know, do you?" | seqtool tokenize words': lambda out: (
        out == "I do n't know , do you ?\n"
    ),
    # 36 rows labelled, counted per label
    "jq -r .predicted_label | sort | uniq -c": lambda out: (
        sum(int(ln.split()[0]) for ln in _lines(out)) == 36
        and {ln.split()[1] for ln in _lines(out)} <= {"positive", "negative"}
    ),
    "jq -r '.translations[0].text'": lambda out: len(_lines(out)) == 5 and all(_lines(out)),
    "| jq .accuracy": lambda out: 0.9 < float(out) <= 1.0,
    "seqtool tokenize encode -m tok.model corpora/play-sample.txt | head -n 2": lambda out: (
        len(_lines(out)) == 2
    ),
}
JQ = re.compile(r"\bjq\b")


def run_block(cmds: list[str], tmp: Path) -> float:
    """Run each command in `tmp` (corpora/ and checkpoints/ linked in); fail on the first
    non-zero exit or on output that is not what EXPECT says. Returns the block's time in
    seconds: the smaller of wall-clock and CPU time, since on a free core the two agree
    (one thread) while on a shared, loaded machine only the CPU time still says what a user
    would wait. Lines that need jq are run where jq is installed (.ci/run installs it);
    elsewhere they are counted and the test is reported skipped, never passed silently."""
    for name in ("corpora", "checkpoints"):
        (tmp / name).symlink_to(ROOT / name, target_is_directory=True)
    env = _env(tmp)
    start, cpu = time.monotonic(), _cpu()
    no_jq = []
    for cmd in cmds:
        if JQ.search(cmd) and shutil.which("jq") is None:
            no_jq.append(cmd)
            continue
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
        for key, check in EXPECT.items():
            if key in cmd:
                assert check(p.stdout), (
                    f"README command printed the unexpected:\n  {cmd}\n{p.stdout}"
                )
    took = min(time.monotonic() - start, _cpu() - cpu)
    if no_jq:
        pytest.skip(f"jq is not installed: {len(no_jq)} README line(s) not run: {no_jq}")
    return took


def test_expected_outputs_name_readme_commands():
    commands = [c for tag in ("tour", "example") for _, cmds in runnable(tag) for c in cmds]
    missing = [key for key in EXPECT if not any(key in c for c in commands)]
    assert not missing, f"EXPECT names commands the README no longer runs: {missing}"


def test_readme_has_a_tour_and_an_example_per_task():
    tour = runnable("tour")
    assert len(tour) == 1 and len(tour[0][1]) >= 5
    text = "\n".join(c for _, cmds in runnable("example") + tour for c in cmds)
    for task in ("lm", "classifier", "tagger", "translator", "segmenter"):
        assert f"seqtool train {task} corpora/" in text, task
    for verb in ("generate", "classify", "tag", "translate", "eval", "tokenize", "inspect"):
        assert f"seqtool {verb} " in text, verb


def test_tour_runs(tmp_path):
    [(_, cmds)] = runnable("tour")
    run_block(cmds, tmp_path)


@pytest.mark.parametrize("heading,cmds", [pytest.param(h, c, id=h) for h, c in runnable("example")])
def test_example_runs(heading, cmds, tmp_path):
    run_block(cmds, tmp_path)


# The README's promise of speed is timed apart from the default suite (`-m slow`): a shared,
# loaded machine must not turn a correct example red.
@pytest.mark.slow
def test_tour_runs_in_under_a_minute(tmp_path):
    [(_, cmds)] = runnable("tour")
    took = run_block(cmds, tmp_path)
    assert took < 60, f"the README tour took {took:.0f} s; it promises under a minute"


@pytest.mark.slow
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
