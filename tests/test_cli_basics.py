"""The CLI root: fast start, version, help, and the error contract."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest
from conftest import checkout_env, run_cli

import seqtool


def test_import_cli_pulls_in_no_heavy_modules():
    # every command built as a run or shell completion builds it: still no torch & co. Only
    # `train TASK` itself imports its task (its options are generated from the task's
    # dataclasses, which live beside the model), so that one is left out here.
    code = (
        "import sys, seqtool.cli\n"
        "for name in list(seqtool.cli.COMMANDS) + list(seqtool.cli.GROUPS):\n"
        "    seqtool.cli.build_app(only=name)\n"
        "print(' '.join(m for m in ('torch', 'datasets', 'sentencepiece', 'conllu', 'sacrebleu') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_completion_builds_only_the_command_being_typed():
    # completion needs the entry point script (its name keys the completion variable): the
    # one installed with this interpreter, never another seqtool on PATH
    exe = shutil.which("seqtool", path=os.path.dirname(sys.executable))
    if exe is None:
        pytest.skip("the seqtool entry point is not installed beside this Python")

    def complete(words: str) -> list[str]:
        env = {**os.environ, "_SEQTOOL_COMPLETE": "complete_bash", "COMP_WORDS": words,
               "COMP_CWORD": str(len(words.split(" ")) - 1)}  # fmt: skip
        p = subprocess.run([exe], capture_output=True, text=True, env=checkout_env(env), timeout=60)
        assert p.returncode == 0, p.stderr
        return p.stdout.split()

    assert complete("seqtool train ") == ["lm", "classifier", "tagger", "translator", "segmenter"]
    assert complete("seqtool train lm --hid") == ["--hidden"]
    assert "--beam" in complete("seqtool translate --")


def test_version():
    r = run_cli("--version")
    assert r.code == 0
    assert r.out.strip() == f"seqtool {seqtool.__version__}"


def test_help_lists_commands_and_examples():
    r = run_cli("--help")
    assert r.code == 0
    for cmd in ("train", "generate", "eval", "tokenize"):
        assert cmd in r.out
    assert 'seqtool generate --prompt "ROMEO:"' in r.out
    r = run_cli("train", "lm", "--help")
    assert r.code == 0 and "--resume" in r.out and "--cell" in r.out and "Examples" in r.out
    assert "--restart" in r.out


@pytest.mark.parametrize("task", ["lm", "classifier", "tagger", "translator"])
def test_train_help_shows_readable_metavars(task):
    r = run_cli("train", task, "--help")
    assert r.code == 0
    options = r.out[r.out.index("Options:") :]
    # Typer's default `<str>`, `<int>`, `<list[str]>`... become FILE, MODEL, N, FLOAT, CELL.
    assert not re.search(r"<(str|int|float|bool|list)\b", options), options
    for shown in ("-o, --output FILE", "--steps N", "--lr FLOAT", "--cell CELL", "--dev FILE"):
        assert shown in options
    assert "FILE" in r.out.splitlines()[0]  # the usage line


def test_python_dash_m_works():
    out = subprocess.run(
        [sys.executable, "-m", "seqtool", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("seqtool ")


def test_bad_option_value_is_one_line_exit_2(tmp_path):
    r = run_cli("train", "lm", "nowhere.txt", "-o", tmp_path / "m.safetensors")
    assert r.code == 2
    assert "nowhere.txt" in r.err and "Traceback" not in r.err
    assert len(r.err.strip().splitlines()) == 1


def test_onednn_kernel_cache_is_capped_unless_the_user_sets_it():
    code = "import os, seqtool; print(os.environ['ONEDNN_PRIMITIVE_CACHE_CAPACITY'])"
    env = {k: v for k, v in os.environ.items() if k != "ONEDNN_PRIMITIVE_CACHE_CAPACITY"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "64"
    env["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] = "512"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "512"


def test_no_help_shows_a_python_type():
    # Typer 0.29 prints `FILE <list[str]>` for arguments; every command's help names values.
    import re

    for cmd in (["train", "lm"], ["train", "classifier"], ["tag"], ["eval"], ["translate"],
                ["classify"], ["inspect", "trace"], ["tokenize", "encode"]):  # fmt: skip
        r = run_cli(*cmd, "--help")
        assert r.code == 0, cmd
        assert not re.search(r"<(str|int|float|list\[\w+\])>", r.out), (cmd, r.out)
