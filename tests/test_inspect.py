"""`seqtool inspect`: lesson cells vs torch's fused modules, gradient measurement on a case
small enough to do by hand, parameter counts, and the three commands on tiny checkpoints."""

from __future__ import annotations

import itertools
import json
import math
import sys
from pathlib import Path

import pytest
import torch
from conftest import run_cli
from torch import nn
from typer.testing import CliRunner

from seqtool.backbone import Backbone, Recurrent
from seqtool.backbone.cells import run_sequence
from seqtool.cli import app
from seqtool.config import CELLS, BackboneConfig, TrainConfig
from seqtool.errors import SeqtoolError
from seqtool.inspect.gradients import (
    fresh_gradients,
    make_recurrent,
    parse_cells,
    scale_recurrent_weights,
    state_gradients,
    summarize,
)
from seqtool.inspect.params import compare_cells, count_params, recurrent_formula
from seqtool.inspect.trace import GATES

FUSED = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
TEXT = "the cat sat on the mat. the dog sat on the log.\n" * 30


# -- the lesson cells reproduce the fused modules ----------------------------------------------


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("layers", [1, 3])
def test_lesson_cells_match_fused_modules(cell, bidirectional, layers):
    torch.manual_seed(layers + 10 * bidirectional)
    rnn = FUSED[cell](5, 7, num_layers=layers, bidirectional=bidirectional, batch_first=True)
    D = 2 if bidirectional else 1
    x = torch.randn(3, 9, 5)  # (B, T, E)
    state = tuple(torch.randn(layers * D, 3, 7) for _ in range(2 if cell == "lstm" else 1))
    for s in (None, state):  # zero and given initial state
        hx = None if s is None else (s if cell == "lstm" else s[0])
        out, hn = rnn(x, hx)
        run = run_sequence(rnn, x, s)
        assert run.outputs.shape == out.shape
        torch.testing.assert_close(run.outputs, out, atol=1e-5, rtol=0)
        if cell == "lstm":
            torch.testing.assert_close(run.h_n, hn[0], atol=1e-5, rtol=0)
            torch.testing.assert_close(run.c_n, hn[1], atol=1e-5, rtol=0)
        else:
            torch.testing.assert_close(run.h_n, hn, atol=1e-5, rtol=0)
            assert run.c_n is None
    # every layer and direction is recorded, (B, T, H) each, ending where h_n says
    assert set(run.steps) == {(k, d) for k in range(layers) for d in range(D)}
    for (k, d), rec in run.steps.items():
        assert set(rec) == {"h", *(["c"] if cell == "lstm" else []), *GATES[cell]}
        assert all(v.shape == (3, 9, 7) for v in rec.values())
        last = rec["h"][:, 0] if d else rec["h"][:, -1]  # backward ends at position 0
        torch.testing.assert_close(last, run.h_n[k * D + d])


def test_lesson_cells_match_time_major_modules():
    torch.manual_seed(0)
    rnn = nn.GRU(4, 6, num_layers=2, bidirectional=True)  # (T, B, E)
    x = torch.randn(8, 2, 4)
    out, hn = rnn(x)
    run = run_sequence(rnn, x)
    torch.testing.assert_close(run.outputs, out, atol=1e-5, rtol=0)
    torch.testing.assert_close(run.h_n, hn, atol=1e-5, rtol=0)


def test_recorded_gates_recompose_the_states():
    """The recorded gates are the lesson's: c = f*c' + i*c~, h = o*tanh(c); h = (1-z)*h~ + z*h'."""
    torch.manual_seed(1)
    x = torch.randn(2, 6, 4)
    lstm = run_sequence(nn.LSTM(4, 5, batch_first=True), x).steps[(0, 0)]
    c_prev = torch.cat([torch.zeros(2, 1, 5), lstm["c"][:, :-1]], 1)
    c = lstm["forget"] * c_prev + lstm["input"] * lstm["candidate"]
    torch.testing.assert_close(c, lstm["c"])
    torch.testing.assert_close(lstm["output"] * torch.tanh(c), lstm["h"])
    gru = run_sequence(nn.GRU(4, 5, batch_first=True), x).steps[(0, 0)]
    h_prev = torch.cat([torch.zeros(2, 1, 5), gru["h"][:, :-1]], 1)
    h = (1 - gru["update"]) * gru["candidate"] + gru["update"] * h_prev
    torch.testing.assert_close(h, gru["h"])


# -- gradients through time --------------------------------------------------------------------


def _two_unit_rnn(a: float, b: float) -> nn.RNN:
    """h_t = tanh(diag(a, b) h_{t-1}) with no input weights or biases: from h_0 = 0 the state
    stays 0, tanh' = 1, so ∂L/∂h_t = diag(a, b)^d w exactly, d = T-1-t."""
    rnn = nn.RNN(1, 2, batch_first=True).double()
    with torch.no_grad():
        for p in rnn.parameters():
            p.zero_()
        rnn.weight_hh_l0.copy_(torch.tensor([[a, 0.0], [0.0, b]]))
    return rnn


def test_gradient_norms_on_a_two_unit_rnn_match_the_hand_computation():
    T = 30
    x = torch.zeros(1, T, 1, dtype=torch.float64)
    w = torch.tensor([1.0, 1.0], dtype=torch.float64)
    norms, _ = state_gradients(_two_unit_rnn(0.5, 0.25), x, w)
    expected = [math.sqrt(0.5 ** (2 * d) + 0.25 ** (2 * d)) for d in range(T)][::-1]
    torch.testing.assert_close(norms[0], torch.tensor(expected, dtype=torch.float64))
    curve = summarize("rnn", "rnn", None, [norms], [0.0])
    # rel(d) = 0.5^d sqrt(1 + 0.25^d) / sqrt 2: 1.38e-3 at d = 9, 6.9e-4 at d = 10
    assert curve.effective_memory == 10
    assert curve.decay_per_step == pytest.approx(0.5, abs=0.01)
    assert curve.relative[0] == 1.0
    # weight scale 2: diag(1, 0.5) keeps the first unit's gradient forever
    rnn = _two_unit_rnn(0.5, 0.25)
    scale_recurrent_weights(rnn, 2.0)
    kept, _ = state_gradients(rnn, x, w)
    assert summarize("rnn", "rnn", None, [kept], [0.0]).effective_memory is None
    assert kept[0, 0].item() == pytest.approx(1.0)  # |1^29| and 0.5^29


def test_clipping_caps_the_gradient_flowing_back():
    T = 12
    x = torch.zeros(1, T, 1, dtype=torch.float64)
    w = torch.tensor([1.0, 1.0], dtype=torch.float64)
    rnn = _two_unit_rnn(2.0, 0.0)  # exploding: the norm doubles every step back
    raw, g_raw = state_gradients(rnn, x, w)
    assert raw[0, -1].item() == pytest.approx(math.sqrt(2))
    assert raw[0, 0].item() == pytest.approx(2.0 ** (T - 1))
    clipped, g_clip = state_gradients(rnn, x, w, clip=1.0)
    # each step: g = W^T (clipped g of the next step) has norm 2 (or sqrt 2 at the end),
    # and is clipped back to 1
    torch.testing.assert_close(clipped[0], torch.ones(T, dtype=torch.float64))
    assert g_clip < g_raw


def test_fresh_gradients_are_reproducible_and_respond_to_weight_scale():
    kw = dict(length=40, hidden=16, input_size=8, batch=4, repeats=2)
    a = fresh_gradients(["rnn", "lstm"], seed=3, **kw)
    b = fresh_gradients(["rnn", "lstm"], seed=3, **kw)
    assert [c.norms for c in a] == [c.norms for c in b]
    assert [c.cell for c in a] == ["rnn", "lstm"]
    assert all(len(c.norms) == 40 and c.relative[0] == 1.0 for c in a)
    small = fresh_gradients(["rnn"], weight_scale=0.5, seed=3, **kw)[0]
    assert small.effective_memory < a[0].effective_memory
    assert small.decay_per_step < a[0].decay_per_step < 1
    big = fresh_gradients(["rnn"], weight_scale=6.0, clip=1.0, seed=3, **kw)
    assert [c.label for c in big] == ["rnn", "rnn clip 1"]
    assert big[0].decay_per_step > 1 and max(big[0].norms) > 100 * big[0].norms[0]  # explodes
    assert max(big[1].norms) <= 1.0 + 1e-9  # clipped at every step


def test_gradient_options_are_checked():
    with pytest.raises(SeqtoolError, match="--length"):
        fresh_gradients(["rnn"], length=1)
    with pytest.raises(SeqtoolError, match="--clip"):
        fresh_gradients(["rnn"], clip=0.0)
    with pytest.raises(SeqtoolError, match="cells"):
        parse_cells("rnn,transformer")
    with pytest.raises(SeqtoolError, match="--init"):
        fresh_gradients(["rnn"], init="xavier")


# -- parameter counts --------------------------------------------------------------------------


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_params_equal_torch_counts(cell, layers, bidirectional):
    rec = Recurrent(10, 7, layers, cell, bidirectional)
    rows = count_params(rec)
    total = sum(p.numel() for p in rec.parameters())
    assert sum(r.params for r in rows) == total
    assert recurrent_formula(cell, 10, 7, layers, bidirectional) == total
    assert len(rows) == layers * (2 if bidirectional else 1)
    bb = Backbone(BackboneConfig(vocab_size=30, embedding_dim=10, hidden_size=7, layers=layers,
                                 cell=cell, bidirectional=bidirectional))  # fmt: skip
    rows = count_params(bb)
    assert sum(r.params for r in rows) == sum(p.numel() for p in bb.parameters())
    assert rows[0].params == 30 * 10 and rows[0].component.startswith("embedding")


def test_cell_ratios_are_the_lessons():
    by = {c.cell: c for c in compare_cells(10, 64, 2)}
    assert by["lstm"].ratio_to_rnn == 4.0 and by["gru"].ratio_to_rnn == 3.0
    assert all(c.params == c.formula for c in by.values())
    assert by["rnn"].params == 64 * (10 + 64) + 2 * 64 + 64 * (64 + 64) + 2 * 64


# -- checkpoints and the CLI -------------------------------------------------------------------


def _train(tmp, cell: str, layers: int):
    from seqtool import api

    corpus = tmp / "corpus.txt"
    corpus.write_text(TEXT)
    out = tmp / f"{cell}{layers}.safetensors"
    cfg = TrainConfig(steps=8, batch_size=4, seq_len=16, warmup=2, threads=1, eval_every=8)
    backbone = dict(cell=cell, layers=layers, hidden_size=7, embedding_dim=10)
    api.train("lm", out, cfg, files=[str(corpus)], backbone=backbone)
    return out


@pytest.fixture(scope="module")
def lms(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("inspect")
    return {"lstm": _train(tmp, "lstm", 2), "gru": _train(tmp, "gru", 1)}


def _invoke(*args: str, input: str | None = None):
    r = CliRunner().invoke(app, [str(a) for a in args], input=input)
    assert r.exit_code == 0, (r.output, r.exception)
    return r


def test_inspect_inputs_is_what_the_lm_encoder_sees(lms):
    from seqtool import api

    lm = api.load(lms["lstm"])
    tokens, x, rec = lm.inspect_inputs("the cat")
    assert tokens == list("the cat")
    assert x.shape == (1, 7, 10) and rec is lm.backbone.rnn
    ids = torch.tensor([lm.tokenizer.encode("the cat")])
    torch.testing.assert_close(rec(x)[0], lm.backbone(ids)[0])
    with pytest.raises(SeqtoolError, match="vocabulary"):
        lm.inspect_inputs("the cat Z")


def test_trace_jsonl_has_every_number(lms):
    r = _invoke("inspect", "trace", "the cat", "-m", lms["lstm"], "--format", "jsonl")
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == 7 * 2  # tokens x layers
    assert [(x["t"], x["layer"]) for x in rows[:3]] == [(0, 0), (0, 1), (1, 0)]
    assert rows[2]["token"] == "h"
    for x in rows:
        assert len(x["hidden"]) == 7 and len(x["cell"]) == 7
        assert set(x["gates"]) == {"input", "forget", "candidate", "output"}
        assert all(0 < v < 1 for v in x["gates"]["forget"])
        assert x["hidden_norm"] == pytest.approx(math.sqrt(sum(v * v for v in x["hidden"])))
    # the trace equals the fused model's hidden states
    from seqtool import api

    lm = api.load(lms["lstm"])
    out, _ = lm.backbone(torch.tensor([lm.tokenizer.encode("the cat")]))  # (1, T, H)
    top = torch.tensor([x["hidden"] for x in rows if x["layer"] == 1])
    torch.testing.assert_close(top, out[0], atol=1e-5, rtol=0)


def test_trace_reads_stdin_and_selects_layers(lms):
    r = _invoke("inspect", "trace", "-m", lms["lstm"], "--layer", "1", "--format", "jsonl",
                input="the\n\ncat sat\n")  # fmt: skip
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert {x["layer"] for x in rows} == {1}
    assert [sum(x["text"] == i for x in rows) for i in (0, 1)] == [3, 7]
    table = _invoke("inspect", "trace", "the cat", "-m", lms["gru"], "--units")
    assert "update gate" in table.stdout and "reset gate" in table.stdout  # the result: stdout
    assert "gate" not in table.stderr and "lesson cells match" in table.stderr  # status only


def test_trace_errors_are_one_line_exit_2(lms):
    r = run_cli("inspect", "trace", "the", "-m", lms["gru"], "--layer", "3")
    assert r.code == 2 and "--layer 3" in r.err and r.out == ""
    r = run_cli("inspect", "trace", "xyz", "-m", lms["lstm"])
    assert r.code == 2 and "not in this model's vocabulary" in r.err
    r = run_cli("inspect", "trace", "-", "-m", lms["lstm"], stdin="")
    assert r.code == 2 and "no text" in r.err


def test_gradients_cli_fresh_cells_jsonl():
    r = _invoke("inspect", "gradients", "--length", "30", "--hidden", "8", "--input", "4",
                "--batch", "2", "--repeats", "1", "--clip", "0.5", "--format", "jsonl")  # fmt: skip
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["label"] for x in rows] == [
        "rnn", "rnn clip 0.5", "lstm", "lstm clip 0.5", "gru", "gru clip 0.5",
    ]  # fmt: skip
    for x in rows:
        assert len(x["norms"]) == len(x["relative"]) == 30
        assert x["settings"]["hidden"] == 8
        if x["clip"]:
            assert max(x["norms"]) <= 0.5 + 1e-9
    table = _invoke("inspect", "gradients", "--cells", "rnn", "--length", "20", "--hidden", "4")
    assert table.stderr == "" and "effective memory" in table.stdout
    assert "distance from the last step" in table.stdout  # the terminal chart


def test_gradients_cli_on_a_checkpoint(lms):
    r = _invoke("inspect", "gradients", "-m", lms["lstm"], "--length", "25", "--repeats", "2",
                "--layer", "0", "--format", "jsonl")  # fmt: skip
    (row,) = [json.loads(line) for line in r.stdout.splitlines()]
    assert row["cell"] == "lstm" and row["settings"]["layer"] == 0
    assert row["settings"]["sequences"] == 2 and len(row["norms"]) == 25
    r = _invoke("inspect", "gradients", "-", "-m", lms["gru"], "--format", "jsonl",
                input="the cat sat on the mat\n")  # fmt: skip
    (row,) = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(row["norms"]) == len("the cat sat on the mat") and row["cell"] == "gru"
    bad = run_cli("inspect", "gradients", "the cat")
    assert bad.code == 2 and "needs --model" in bad.err


def test_gradients_plot(tmp_path, monkeypatch):
    png = tmp_path / "decay.png"
    args = ["inspect", "gradients", "--cells", "rnn", "--length", "10", "--hidden", "4",
            "--repeats", "1", "--plot", png]  # fmt: skip
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        pass
    else:
        _invoke(*args)
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        png.unlink()
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    r = run_cli(*args)
    assert r.code == 2 and "pip install 'seqtool[plot]'" in r.err and not png.exists()
    assert r.out == ""  # refused before the computation, whose table would be here


def test_chart_and_plot_axes_read_as_numbers():
    from seqtool.inspect.render import log_ticks, terminal_chart

    for length in (3, 10, 100):
        curves = fresh_gradients(["rnn", "gru"], length=length, hidden=4, input_size=4, batch=2,
                                 repeats=1)  # fmt: skip
        lines = terminal_chart(curves).plain.splitlines()
        labels = [line.split("│")[0] for line in lines if "│" in line]
        values = [float(x) for x in labels]  # 1.0e+00, 3.2e-02: numbers, never 1e-0.2
        assert values == sorted(values, reverse=True) and len(set(values)) == len(values)
        axis = lines[len(labels) + 1]  # under the └── line: 0, then the last distance
        assert axis.split()[:1] == ["0"] and axis.split()[-1] == str(length - 1)
        assert "distance from the last step" in "\n".join(lines)
        assert "0distance" not in "".join(lines)
    # The plot's y ticks: whole decades from 10^0 down, at most 9 labels, covering the data.
    assert log_ticks([1.0, 0.5, 1e-3]) == [0, -1, -2, -3]
    assert log_ticks([1.0, 0.9]) == [0, -1]
    ticks = log_ticks([1.0, 1e-35, 1e-3])
    assert ticks[0] == 0 and ticks[-1] <= -35 and len(ticks) <= 9
    assert len({a - b for a, b in itertools.pairwise(ticks)}) == 1


def test_params_cli_config_and_checkpoint(lms):
    r = _invoke("inspect", "params", "--cell", "lstm", "--input", "10", "--hidden", "64",
                "--layers", "2", "--format", "jsonl")  # fmt: skip
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    total = next(x["params"] for x in rows if x.get("component") == "total")
    assert total == sum(p.numel() for p in nn.LSTM(10, 64, num_layers=2).parameters())
    ratios = {x["cell"]: x["ratio_to_rnn"] for x in rows if "cell" in x}
    assert ratios == {"rnn": 1.0, "lstm": 4.0, "gru": 3.0}

    from seqtool import api

    lm = api.load(lms["lstm"])
    r = _invoke("inspect", "params", lms["lstm"], "--format", "jsonl")
    rows = {x["component"]: x["params"] for x in map(json.loads, r.stdout.splitlines())}
    assert rows.pop("total") == sum(p.numel() for p in lm.parameters()) == sum(rows.values())
    V = lm.tokenizer.vocab_size
    assert rows["backbone.embedding"] == V * 10
    assert rows["head"] == 7 * V + V
    assert rows["backbone.rnn layer 1 forward"] == 4 * (7 * (7 + 7) + 2 * 7)
    table = _invoke("inspect", "params", "--cell", "gru", "--bidirectional", "--vocab", "50")
    assert "embedding" in table.stdout and "backward" in table.stdout and table.stderr == ""
    assert "formula per layer and direction" in table.stdout


# -- the other tasks' encoders -----------------------------------------------------------------

CORPORA = Path(__file__).resolve().parent.parent / "corpora"
OTHER_TASKS = {
    "classifier": ["sentiment-sample.csv", "--tokenizer", "char", "--dev-fraction", "0"],
    "translator": ["translation-sample.tsv", "--vocab-size", "300"],
}


@pytest.mark.parametrize("task", sorted(OTHER_TASKS))
def test_every_command_works_on_other_tasks(task, tmp_path):
    from seqtool import api

    data, *extra = OTHER_TASKS[task]
    out = tmp_path / f"{task}.safetensors"
    r = run_cli("train", task, CORPORA / data, "-o", out, "--hidden", "7", "--embedding-dim",
                "10", "--layers", "2", "--threads", "1", "--steps", "2", "--batch-size", "4",
                "--warmup", "1", *extra)  # fmt: skip
    assert r.code == 0, r
    model = api.load(out)
    tokens, x, rec = model.inspect_inputs("a good one")
    r = _invoke("inspect", "trace", "-m", out, "--format", "jsonl", input="a good one\n")
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    D = rec.num_directions
    assert len(rows) == len(tokens) * rec.layers * D
    with torch.no_grad():
        fused, _ = rec(x)  # (1, T, D*H)
    top = [x_["hidden"] for x_ in rows if x_["layer"] == rec.layers - 1]
    traced = torch.tensor(top).view(len(tokens), D * rec.hidden_size)  # t-major, fwd then bwd
    torch.testing.assert_close(traced, fused[0], atol=1e-5, rtol=0)
    r = _invoke("inspect", "gradients", "-m", out, "--length", "12", "--format", "jsonl")
    assert len(json.loads(r.stdout)["norms"]) == 12
    r = _invoke("inspect", "params", out, "--format", "jsonl")
    rows = {x_["component"]: x_["params"] for x_ in map(json.loads, r.stdout.splitlines())}
    assert rows.pop("total") == sum(p.numel() for p in model.parameters()) == sum(rows.values())


def test_chrono_init_gives_gated_cells_long_memory_and_leaves_the_rnn_alone():
    kw = dict(length=60, hidden=16, input_size=8, batch=4, repeats=2, seed=1)
    chrono = {c.cell: c for c in fresh_gradients(["rnn", "lstm", "gru"], init="chrono", **kw)}
    torch_init = {c.cell: c for c in fresh_gradients(["rnn", "lstm", "gru"], init="torch", **kw)}
    assert chrono["rnn"].norms == torch_init["rnn"].norms  # no gate: the same cell
    rnn_mem = chrono["rnn"].effective_memory
    for cell in ("lstm", "gru"):
        mem = chrono[cell].effective_memory
        assert mem is None or mem > 3 * rnn_mem
        assert chrono[cell].decay_per_step > torch_init[cell].decay_per_step
    lstm = make_recurrent("lstm", 8, 16, init="chrono", horizon=60)
    b = lstm.bias_ih_l0.detach()
    assert torch.equal(b[:16], -b[16:32]) and b[16:32].min() >= 0 and b[16:32].max() <= math.log(59)
    assert lstm.bias_hh_l0.abs().sum() == 0
