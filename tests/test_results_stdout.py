"""A command's result is on stdout (issue 16, items 2 and 8): `eval` and `inspect` print their
tables there, plainly (no colour codes, no 80-column squeeze) when stdout is a file or a pipe;
status lines stay on stderr. Counts are ints, titles keep paths whole, `--plot` without
matplotlib fails before the work, and --help names values, not Python types.

The stdout/stderr split runs the real entry point in a subprocess, as a shell would."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest
from conftest import ROOT, SAMPLE, SEQTOOL, checkout_env, run_cli

CORNER = "┏"  # the top-left corner of every rich table
TRANSLATOR = ROOT / "checkpoints" / "translate-en-de.safetensors"
SENTIMENT = ROOT / "checkpoints" / "sentiment.safetensors"


def _env(**extra: str) -> dict[str, str]:
    """The test's environment without what would change rich's width or colours."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE")
    }
    return checkout_env(env, **extra)


def seqtool(*args: object, stdout: object = subprocess.PIPE, **env: str):
    return subprocess.run(
        [*SEQTOOL, *map(str, args), *(["--threads", "1"] if args[0] == "eval" else [])],
        stdout=stdout,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=_env(**env),
        timeout=300,
    )


def _plain_tables(out: str) -> None:
    """Tables, printed plainly and whole: no escape codes, nothing cut to fit 80 columns."""
    assert CORNER in out and "\x1b" not in out and "…" not in out


def test_eval_table_goes_to_a_redirected_stdout(tiny_lm, tmp_path):
    out = tmp_path / "out.txt"
    with out.open("w") as f:  # seqtool eval model dev > out.txt
        p = seqtool("eval", tiny_lm, SAMPLE, stdout=f)
    assert p.returncode == 0, p.stderr
    text = out.read_text()
    _plain_tables(text)
    assert f"{tiny_lm} on {SAMPLE}" in text.splitlines()  # the heading, whole, on its own line
    assert re.search(r"nats_per_char +│ +\d\.\d{4} +│", text)
    assert re.search(r"tokens +│ +\d+ +│", text)  # a count: no .0000
    assert CORNER not in p.stderr and "nats_per_char" not in p.stderr


def test_translator_eval_summary_and_counts(tmp_path):
    dev = tmp_path / "dev.tsv"
    lines = (ROOT / "corpora" / "translation-sample.tsv").read_text().splitlines()[:4]
    dev.write_text("\n".join(lines) + "\n")
    p = seqtool("eval", TRANSLATOR, dev, "--beam", "1")
    assert p.returncode == 0, p.stderr
    _plain_tables(p.stdout)
    assert re.search(r"beam +│ +1 +│", p.stdout) and re.search(r"sentences +│ +4 +│", p.stdout)
    assert "BLEU" in p.stdout and "free-running" in p.stdout  # the task's report line
    assert "BLEU" not in p.stderr and CORNER not in p.stderr
    m = json.loads(run_cli("eval", TRANSLATOR, dev, "--beam", "2", "--format", "json").out)
    assert m["beam"] == 2 and m["sentences"] == 4
    assert isinstance(m["beam"], int) and isinstance(m["sentences"], int)
    assert '"beam": 2,' in json.dumps(m)


def test_classifier_report_tables_are_on_stdout():
    r = run_cli("eval", SENTIMENT, ROOT / "corpora" / "sentiment-sample.csv", "--threads", "1")
    assert r.code == 0, r
    _plain_tables(r.out)
    assert "per class" in r.out and "confusion matrix" in r.out and "macro_f1" in r.out
    assert re.search(r"examples +│ +36 +│", r.out)
    assert r.err == ""


def test_inspect_tables_and_charts_are_on_stdout(tiny_lm):
    p = seqtool("inspect", "trace", "The", "-m", tiny_lm)
    assert p.returncode == 0, p.stderr
    _plain_tables(p.stdout)
    assert "forget gate" in p.stdout and "layer 0 forward" in p.stdout
    assert "lesson cells match" in p.stderr and CORNER not in p.stderr  # a status line

    # 11 columns, far wider than 80: whole when redirected.
    p = seqtool("inspect", "gradients", "--length", "100", "--hidden", "4", "--input", "4",
                "--batch", "2", "--repeats", "1")  # fmt: skip
    assert p.returncode == 0, p.stderr
    _plain_tables(p.stdout)
    assert "effective memory" in p.stdout and "d=99" in p.stdout and "‖∂L/∂θ‖" in p.stdout
    assert "distance from the last step" in p.stdout  # the terminal chart
    assert p.stderr == ""

    p = seqtool("inspect", "params", tiny_lm)
    assert p.returncode == 0, p.stderr
    _plain_tables(p.stdout)
    assert f"{tiny_lm} (lm)" in p.stdout.splitlines() and "total" in p.stdout
    assert p.stderr == ""


def test_a_table_into_a_closed_pipe_is_quiet(tiny_lm):
    # `seqtool inspect params M | head -0`: the reader is gone before the table is written.
    p = subprocess.Popen([*SEQTOOL, "inspect", "params", str(tiny_lm)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=_env())  # fmt: skip
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=300) == 0 and err == ""  # rich alone would exit 1


def test_titles_keep_long_paths_whole(tiny_lm, tmp_path, monkeypatch):
    folder = tmp_path / "a-rather-long-folder-name-for-checkpoints" / "and-another-level-below-it"
    folder.mkdir(parents=True)
    model = folder / "a-language-model-with-a-long-name.safetensors"
    shutil.copy(tiny_lm, model)
    assert len(str(model)) > 80
    monkeypatch.setenv("COLUMNS", "80")
    for args, heading in [
        (("eval", model, SAMPLE, "--threads", "1"), f"{model} on {SAMPLE}"),
        (("inspect", "params", model), f"{model} (lm)"),
        (("inspect", "gradients", "-m", model, "--length", "8", "--repeats", "1"), f"{model} (lm)"),
    ]:
        r = run_cli(*args)
        assert r.code == 0, r
        assert any(line.startswith(heading) for line in r.out.splitlines()), r.out
        assert "\x1b" not in r.out


def test_plot_without_matplotlib_fails_before_the_work(tmp_path):
    shadow = tmp_path / "shadow" / "matplotlib"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named matplotlib')\n")
    path = os.pathsep.join(p for p in (str(shadow.parent), os.environ.get("PYTHONPATH")) if p)
    png = tmp_path / "decay.png"
    p = seqtool("inspect", "gradients", "--length", "3000", "--plot", png, PYTHONPATH=path)
    assert p.returncode == 2
    assert p.stdout == ""  # no table: nothing was computed
    (line,) = p.stderr.splitlines()
    assert "--plot needs matplotlib" in line and "pip install 'seqtool[plot]'" in line
    assert not png.exists()
    r = run_cli("inspect", "gradients", "--length", "5", "--plot", tmp_path / "no" / "x.png")
    assert r.code == 2 and "no such folder" in r.err and r.out == ""


@pytest.mark.parametrize(
    "command",
    [
        ("eval",),
        ("inspect", "trace"),
        ("inspect", "gradients"),
        ("inspect", "params"),
        ("generate",),
    ],
)
def test_help_names_values_not_python_types(command):
    r = run_cli(*command, "--help")
    assert r.code == 0, r
    options = r.out.split("Options:")[1]
    assert not re.findall(r"<[a-z][\w\[\], |]*>", options), options  # <int>, <list[int]>, ...
    usage = r.out.splitlines()[0]
    assert not re.search(r"\{[a-z]+\}|\[[a-z]+\]", usage), usage  # {model}: lower-case names
    if command == ("eval",):
        assert "MODEL" in usage and "FILE" in usage and "--beam N" in options
    if command == ("inspect", "trace"):
        assert "--layer K" in options and "--model MODEL" in options
