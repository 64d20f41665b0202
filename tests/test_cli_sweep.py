"""Every command against bad paths: a missing file, a directory, an empty file, a binary
file, a foreign .safetensors and a truncated checkpoint. Each is one line on stderr with
exit status 2 (never a traceback), and no output file is left behind."""

from __future__ import annotations

import pytest
import torch
from conftest import run_cli

BAD_DATA = ["missing", "directory", "empty", "binary"]
BAD_MODELS = ["missing", "directory", "empty", "binary", "foreign", "truncated"]


@pytest.fixture(scope="module")
def bad(tmp_path_factory, tiny_lm):
    from safetensors.torch import save_file

    d = tmp_path_factory.mktemp("bad")
    (d / "directory").mkdir()
    (d / "empty").write_bytes(b"")
    (d / "binary").write_bytes(bytes(range(256)) * 4)
    save_file({"w": torch.zeros(2)}, str(d / "foreign"))
    data = tiny_lm.read_bytes()
    (d / "truncated").write_bytes(data[: len(data) // 2])
    return d


def _one_line_exit_2(r, *, allow_empty_ok: bool = False):
    if allow_empty_ok and r.code == 0:  # an empty stream through a filter is empty output
        assert r.out == ""
        return
    assert r.code == 2, r
    assert "Traceback" not in r.err
    assert len(r.err.strip().splitlines()) == 1, r.err


TRAIN = [
    ["train", "lm"],
    ["train", "classifier"],
    ["train", "tagger"],
    ["train", "translator"],
    ["tokenize", "train"],
]


@pytest.mark.parametrize("kind", BAD_DATA)
@pytest.mark.parametrize("cmd", TRAIN, ids=lambda c: " ".join(c))
def test_training_inputs(bad, tmp_path, cmd, kind):
    out = tmp_path / "out.safetensors"
    r = (
        run_cli(*cmd, bad / kind, "-o", out, "--steps", "1", "--hidden", "4")
        if cmd[0] == "train"
        else run_cli(*cmd, bad / kind, "-o", out)
    )
    _one_line_exit_2(r)
    assert not out.exists() and not (tmp_path / "out.run").exists()


@pytest.mark.parametrize("kind", BAD_DATA)
def test_eval_data(bad, tiny_lm, kind):
    _one_line_exit_2(run_cli("eval", tiny_lm, bad / kind))


RUN = [
    ["classify"],
    ["pseudo-label"],
    ["tag"],
    ["translate"],
    ["inspect", "trace"],
]


@pytest.mark.parametrize("kind", ["missing", "directory", "binary"])
@pytest.mark.parametrize("cmd", RUN, ids=lambda c: " ".join(c))
def test_run_inputs(bad, tiny_lm, cmd, kind):
    # inspect takes any checkpoint; the others fail on the model or on the input, both clearly
    extra = ["--model", tiny_lm] if cmd[0] == "inspect" else []
    _one_line_exit_2(run_cli(*cmd, bad / kind, *extra))


@pytest.mark.parametrize("cmd", RUN, ids=lambda c: " ".join(c))
def test_run_empty_input(bad, tiny_lm, cmd):
    extra = ["--model", tiny_lm] if cmd[0] == "inspect" else []
    _one_line_exit_2(run_cli(*cmd, bad / "empty", *extra), allow_empty_ok=True)


MODEL_SLOTS = [
    lambda m: ["generate", "-m", m, "-n", "3"],
    lambda m: ["classify", "--model", m],
    lambda m: ["pseudo-label", "--model", m],
    lambda m: ["tag", "--model", m],
    lambda m: ["translate", "--model", m],
    lambda m: ["eval", m, "corpora/play-sample.txt"],
    lambda m: ["inspect", "trace", "the cat", "--model", m],
    lambda m: ["inspect", "params", m],
    lambda m: ["inspect", "gradients", "--model", m, "--length", "5"],
    lambda m: ["tokenize", "encode", "--model", m],
]


@pytest.mark.parametrize("kind", BAD_MODELS)
@pytest.mark.parametrize("slot", range(len(MODEL_SLOTS)))
def test_bad_checkpoints(bad, slot, kind):
    r = run_cli(*MODEL_SLOTS[slot](bad / kind), stdin="a line\n")
    _one_line_exit_2(r)
    assert r.out == ""


@pytest.mark.parametrize("kind", BAD_MODELS)
def test_init_from_bad_checkpoint(bad, tmp_path, kind):
    out = tmp_path / "c.safetensors"
    r = run_cli(
        "train",
        "classifier",
        "corpora/sentiment-sample.csv",
        "--init-from",
        bad / kind,
        "-o",
        out,
        "--steps",
        "1",
    )
    _one_line_exit_2(r)
    assert not out.exists()
