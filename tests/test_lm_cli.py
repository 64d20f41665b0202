"""The char LM through the CLI: train, generate, eval, pipelines and bad input."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import torch
from conftest import ROOT, SAMPLE, TINY, run_cli

from seqtool import paths
from seqtool.errors import SeqtoolError


def test_generate_is_reproducible_and_starts_with_prompt(tiny_lm):
    args = [
        "generate",
        "-m",
        tiny_lm,
        "--prompt",
        "DUKE:",
        "--length",
        "80",
        "--seed",
        "7",
        "--temperature",
        "0.8",
        "--top-k",
        "20",
    ]
    a, b = run_cli(*args), run_cli(*args)
    assert a.code == 0, a
    assert a.out == b.out
    assert a.out.startswith("DUKE:")
    assert len(a.out) == len("DUKE:") + 80 + 1  # prompt + chars + final newline
    c = run_cli(*args[:-4], "--seed", "8")
    assert c.out != a.out


def test_generate_top_p_and_greedy(tiny_lm):
    g1 = run_cli("generate", "-m", tiny_lm, "-p", "The", "-n", "40", "-t", "0")
    g2 = run_cli("generate", "-m", tiny_lm, "-p", "The", "-n", "40", "-t", "0", "--seed", "99")
    assert g1.code == 0 and g1.out == g2.out  # greedy ignores the seed
    r = run_cli("generate", "-m", tiny_lm, "-p", "The", "-n", "40", "--top-p", "0.5", "--seed", "1")
    assert r.code == 0 and len(r.out) == 3 + 40 + 1


def test_generate_num_samples_jsonl(tiny_lm):
    r = run_cli(
        "generate",
        "-m",
        tiny_lm,
        "-p",
        "A",
        "-n",
        "30",
        "-k",
        "3",
        "--seed",
        "1",
        "--format",
        "jsonl",
    )
    assert r.code == 0, r
    rows = [json.loads(x) for x in r.out.splitlines()]
    assert [x["sample"] for x in rows] == [0, 1, 2]
    assert all(x["text"].startswith("A") and len(x["text"]) == 31 for x in rows)
    assert len({x["text"] for x in rows}) > 1


def test_unknown_prompt_character(tiny_lm):
    r = run_cli("generate", "-m", tiny_lm, "--prompt", "caf\u00e9")
    assert r.code == 2
    assert "'é' (position 4) is not in this model's vocabulary" in r.err
    assert r.out == ""


def test_eval_json_and_table(tiny_lm):
    r = run_cli("eval", tiny_lm, SAMPLE, "--format", "json")
    assert r.code == 0, r
    m = json.loads(r.out)
    assert {"nats_per_char", "bits_per_char", "perplexity"} <= set(m)
    assert m["bits_per_char"] == pytest.approx(m["nats_per_char"] / 0.6931471805599453)
    assert isinstance(m["tokens"], int)  # a count, not 848.0
    t = run_cli("eval", tiny_lm, SAMPLE)
    assert t.code == 0 and t.err == "" and "nats_per_char" in t.out  # the table is the result
    assert re.search(rf"tokens +│ +{m['tokens']} +│", t.out)  # not {tokens}.0000


def test_train_gru_from_stdin_with_dev_file(tmp_path):
    out = tmp_path / "g.safetensors"
    r = run_cli(
        "train",
        "lm",
        "-",
        "--dev",
        SAMPLE,
        "-o",
        out,
        "--cell",
        "gru",
        *TINY,
        "--steps",
        "5",
        "--seq-len",
        "16",
        "--batch-size",
        "4",
        stdin=SAMPLE.read_text(),
    )
    assert r.code == 0, r
    assert "saved" in r.err and out.is_file()
    assert r.out == ""  # stdout carries data only


def _file(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "setup,needle",
    [
        (lambda d: d / "missing.txt", "no such file"),
        (lambda d: d, "is a directory"),
        (lambda d: _file(d / "empty.txt", b""), "empty corpus"),
        (
            lambda d: _file(d / "bin.txt", b"ok line\nbad \xff\xfe here\n"),
            "bin.txt:2:5: invalid UTF-8 at byte offset 12",
        ),
    ],
)
def test_bad_training_input(tmp_path, setup, needle):
    src = setup(tmp_path)
    out = tmp_path / "never.safetensors"
    r = run_cli("train", "lm", src, "-o", out, *TINY, "--steps", "2")
    assert r.code == 2, r
    assert needle in r.err and len(r.err.strip().splitlines()) == 1
    assert not out.exists() and not (tmp_path / "never.run").exists()


def test_encoding_errors_replace(tmp_path):
    src = tmp_path / "bin.txt"
    src.write_bytes(SAMPLE.read_bytes() + b"\xff\n")
    r = run_cli(
        "train",
        "lm",
        src,
        "-o",
        tmp_path / "m.safetensors",
        *TINY,
        "--steps",
        "2",
        "--encoding-errors",
        "replace",
    )
    assert r.code == 0, r


def test_wrong_task_checkpoint_for_generate(tmp_path, tiny_lm):
    from seqtool import checkpoint

    data = tiny_lm.read_bytes().replace(b'"task":"lm"', b'"task":"xx"')
    header = checkpoint.read_header(tiny_lm)
    assert header.task == "lm"
    fake = tmp_path / "other.safetensors"
    fake.write_bytes(data)
    r = run_cli("generate", "-m", fake)
    assert r.code == 2 and "is a xx checkpoint" in r.err


def test_generate_into_closed_pipe_is_quiet(tiny_lm):
    cmd = f"{sys.executable} -m seqtool generate -m {tiny_lm} --length 100000 | head -c 100"
    p = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert len(p.stdout) == 100 and p.stderr == ""


def test_eval_subprocess_exit_code_for_missing_file(tiny_lm):
    p = subprocess.run(
        [sys.executable, "-m", "seqtool", "eval", str(tiny_lm), "/no/such.txt"],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 2 and p.stderr.strip() == "seqtool: error: /no/such.txt: no such file"


def test_default_model_search_path(monkeypatch, tmp_path, tiny_lm):
    from seqtool.tasks.lm import LanguageModel

    target = tmp_path / LanguageModel.shipped_model
    target.write_bytes(tiny_lm.read_bytes())
    monkeypatch.setenv("SEQTOOL_CHECKPOINTS", str(tmp_path))
    assert paths.default_model("lm") == target
    r = run_cli("generate", "-p", "DUKE", "-n", "5", "--seed", "1")
    assert r.code == 0 and r.out.startswith("DUKE")


@pytest.mark.skipif(
    not (ROOT / "checkpoints" / "lm-shakespeare.safetensors").is_file(),
    reason="shipped LM not present",
)
def test_shipped_default_generates(monkeypatch):
    monkeypatch.delenv("SEQTOOL_CHECKPOINTS", raising=False)
    r = run_cli("generate", "--prompt", "ROMEO:", "--length", "200", "--seed", "1")
    assert r.code == 0, r
    assert r.out.startswith("ROMEO:") and len(r.out) == 6 + 200 + 1
    assert os.environ.get("SEQTOOL_CHECKPOINTS") is None


def test_subword_lm_trains_generates_and_evaluates(tmp_path):
    out = tmp_path / "bpe.safetensors"
    r = run_cli(
        "train",
        "lm",
        SAMPLE,
        "-o",
        out,
        *TINY,
        "--steps",
        "5",
        "--tokenizer",
        "bpe",
        "--vocab-size",
        "320",
        "--seq-len",
        "16",
        "--batch-size",
        "4",
    )
    assert r.code == 0, r
    g = run_cli("generate", "-m", out, "-p", "DUKE:", "-n", "30", "--seed", "1")
    assert g.code == 0 and g.out.startswith("DUKE:")
    e = run_cli("eval", out, SAMPLE, "--format", "json")
    m = json.loads(e.out)
    assert m["nats_per_char"] < m["nats_per_token"]  # several characters per subword


def _tiny_lm_model(**kw):
    from seqtool.config import BackboneConfig
    from seqtool.tasks.lm import LanguageModel, LMConfig
    from seqtool.tokenizers import CharTokenizer

    tok = CharTokenizer("abcdefgh")
    cfg = LMConfig(
        backbone=BackboneConfig(vocab_size=tok.vocab_size, embedding_dim=6, hidden_size=5), **kw
    )
    torch.manual_seed(0)
    return LanguageModel(cfg, tok)


def test_reverse_lm_is_the_forward_lm_on_mirrored_text():
    from seqtool.data.lm import EvalStream

    fwd, bwd = _tiny_lm_model(), _tiny_lm_model(reverse=True)
    bwd.load_state_dict(fwd.state_dict())
    g = torch.Generator().manual_seed(1)
    win = torch.randint(4, fwd.config.backbone.vocab_size, (3, 9), generator=g)  # (B, T+1)
    loss_b, n = bwd.forward_loss({"x": win[:, :-1], "y": win[:, 1:]})
    mirrored = win.flip(1)
    loss_f, _ = fwd.forward_loss({"x": mirrored[:, :-1], "y": mirrored[:, 1:]})
    torch.testing.assert_close(loss_b, loss_f)
    assert n == 3 * 8
    ids = torch.randint(4, fwd.config.backbone.vocab_size, (200,), generator=g)
    a = bwd.evaluate(EvalStream(ids, 200))
    b = fwd.evaluate(EvalStream(ids.flip(0), 200))
    assert a["nats_per_token"] == pytest.approx(b["nats_per_token"])
    with pytest.raises(SeqtoolError, match="right to left"):
        next(bwd.generate("ab", 3))


def test_sampled_softmax_loss():
    import math

    import numpy as np

    m = _tiny_lm_model(sampled_softmax=4)
    V = m.config.backbone.vocab_size
    m.set_proposal(np.arange(V) + 1)
    win = torch.randint(4, V, (2, 7), generator=torch.Generator().manual_seed(0))
    batch = {"x": win[:, :-1], "y": win[:, 1:]}
    m.train()
    torch.manual_seed(0)
    loss, n = m.forward_loss(batch)
    assert n == 12 and math.isfinite(loss.item()) and 0 < loss.item() < math.log(V) + 5
    loss.backward()  # only the true and the sampled rows of the output layer get gradient
    touched = (m.head.weight.grad.abs().sum(1) > 0).sum().item()
    assert touched <= 12 + 4
    m.eval()  # evaluation is the exact full softmax
    m.zero_grad()
    full, _ = m.forward_loss(batch)
    _, exact, _ = m(batch["x"], batch["y"])
    assert full.item() == pytest.approx(exact.item())
    # sampling every id (K >= V) is the full softmax
    every = _tiny_lm_model(sampled_softmax=V)
    every.train()
    every.load_state_dict(m.state_dict())
    every.dropout.p = 0.0
    assert every.forward_loss(batch)[0].item() == pytest.approx(exact.item())


def test_sampled_softmax_learns_a_subword_lm(tmp_path):
    """Trained with 16 sampled negatives of a 400-piece vocabulary, the exact dev loss still
    falls far below the uniform loss."""
    out = tmp_path / "s.safetensors"
    args = ["train", "lm", SAMPLE, "-o", out, "--tokenizer", "unigram", "--vocab-size", "400"]
    args += ["--hidden", "32", "--embedding-dim", "16", "--layers", "1", "--threads", "1"]
    args += ["--steps", "150", "--seq-len", "32", "--batch-size", "16", "--lr", "0.01"]
    r = run_cli(*args, "--sampled-softmax", "16")
    assert r.code == 0, r
    m = json.loads(run_cli("eval", out, SAMPLE, "--format", "json").out)
    import math

    assert m["nats_per_token"] < math.log(400) - 2.0, m


def test_reverse_lm_is_inspected_right_to_left():
    fwd, bwd = _tiny_lm_model(), _tiny_lm_model(reverse=True)
    bwd.load_state_dict(fwd.state_dict())
    tokens_f, x_f, _ = fwd.inspect_inputs("abcd")
    tokens_b, x_b, _ = bwd.inspect_inputs("abcd")
    assert tokens_b == tokens_f[::-1] == list("dcba")
    torch.testing.assert_close(x_b, x_f.flip(1))
