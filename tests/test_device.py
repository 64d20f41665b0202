"""--device on every command that runs a model: cpu runs, an absent device is one line, exit 2."""

from __future__ import annotations

import pytest
import torch
from conftest import ROOT, run_cli

SAMPLE_CSV = str(ROOT / "corpora" / "sentiment-sample.csv")
SAMPLE_TXT = str(ROOT / "corpora" / "play-sample.txt")

# (argv, stdin): each command that runs a model, on tiny inputs and shipped models.
COMMANDS = [
    (["generate", "--length", "5", "--seed", "1"], ""),
    (["classify"], "a wonderful film\n"),
    (["pseudo-label", "--whole", "--min-score", "0"], "a wonderful film . a dull plot .\n"),
    (["tag"], "The dog runs .\n"),
    (["translate", "--beam", "1"], "A dog runs .\n"),
    (["eval", "sentiment", SAMPLE_CSV], ""),
    (["inspect", "trace", "to be", "-m", "lm-shakespeare", "--layer", "0"], ""),
    (["inspect", "gradients", "--model", "lm-shakespeare", "--length", "5", "--repeats", "1"], ""),
    (["inspect", "params", "sentiment"], ""),
]
IDS = [" ".join(a[:2]) for a, _ in COMMANDS]


@pytest.mark.parametrize(("argv", "stdin"), COMMANDS, ids=IDS)
def test_each_command_runs_on_cpu(argv, stdin):
    threads = [] if argv[:2] == ["inspect", "params"] else ["--threads", "1"]
    r = run_cli(*argv, "--device", "cpu", *threads, stdin=stdin)
    assert r.code == 0, r
    assert r.out.strip()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is here")
@pytest.mark.parametrize(("argv", "stdin"), COMMANDS, ids=IDS)
def test_an_absent_cuda_is_one_line_exit_2(argv, stdin):
    r = run_cli(*argv, "--device", "cuda", stdin=stdin)
    assert r.code == 2, r
    assert len(r.err.strip().splitlines()) == 1 and "--device cuda" in r.err


@pytest.mark.parametrize("argv", [["generate", "--length", "3"], ["eval", "sentiment", SAMPLE_CSV]])
def test_an_unknown_device_is_a_usage_error(argv):
    r = run_cli(*argv, "--device", "tpu")
    assert r.code == 2 and "--device must be one of auto, cpu, cuda, mps" in r.err


def test_auto_picks_what_is_there():
    from seqtool.training import runtime

    want = "cuda" if torch.cuda.is_available() else None
    if want is None and torch.backends.mps.is_available():
        want = "mps"
    assert runtime.resolve_device("auto").type == (want or "cpu")


def test_bf16_is_refused_with_one_line_where_the_cpu_has_no_bf16_lstm():
    from seqtool.training import runtime

    if runtime.bf16_supported(torch.device("cpu")):
        r = run_cli("classify", "--precision", "bf16", "--device", "cpu", stdin="a fine film\n")
        assert r.code == 0, r  # a CPU with bf16 kernels runs it
        return
    r = run_cli("classify", "--precision", "bf16", "--device", "cpu", stdin="a fine film\n")
    assert r.code == 2 and "--precision bf16" in r.err and "use fp32" in r.err
    assert len(r.err.strip().splitlines()) == 1


def test_bf16_runs_a_cell_the_cpu_has_kernels_for(tmp_path):
    """The check is per cell: a GRU model runs under bf16 where only the LSTM is refused."""
    from seqtool.training import runtime

    if not runtime.bf16_supported(torch.device("cpu"), torch.nn.GRU):
        pytest.skip("this CPU has no bf16 GRU either")
    out = tmp_path / "gru.safetensors"
    sample = str(ROOT / "corpora" / "sentiment-sample.csv")
    r = run_cli("train", "classifier", sample, "--cell", "gru", "--hidden", "7",
                "--embedding-dim", "10", "--layers", "1", "--steps", "2", "--threads", "1",
                "-o", out)  # fmt: skip
    assert r.code == 0, r
    r = run_cli("classify", "-m", out, "--precision", "bf16", stdin="a fine film\n")
    assert r.code == 0 and r.out.split("\t")[0] in ("positive", "negative"), r


def test_a_model_moves_to_the_device_asked(tmp_path):
    from seqtool import api

    m = api.load("sentiment", "classifier", device="cpu")
    assert next(m.parameters()).device.type == "cpu"
    if torch.cuda.is_available():  # checked where a GPU is lent
        m = api.load("sentiment", "classifier", device="cuda")
        assert next(m.parameters()).device.type == "cuda"
        assert m.predict(["a wonderful film"])[0][0] in m.labels
