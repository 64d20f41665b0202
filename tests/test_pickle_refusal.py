"""No loading path runs code from a file: pickles (protocols 2 and 5), torch.save archives
(zip and legacy), a safetensors file whose tokenizer bytes are a pickle, and crafted run
folders (resume.pt, last.safetensors) are refused with one line and exit 2. Each payload
would create a marker file when unpickled (test_payloads_are_live proves it), so a missing
marker shows that nothing ran."""

from __future__ import annotations

import base64
import json
import os
import pickle
import shutil
import struct

import pytest
import torch
from conftest import ROOT, SAMPLE, run_cli

from seqtool import api
from seqtool.config import TrainConfig

C = ROOT / "corpora"
TINY = ["--hidden", "7", "--embedding-dim", "10", "--layers", "1", "--threads", "1"]


class Payload:
    """Unpickling this runs a shell command that creates `marker`."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def _polyglot(marker) -> bytes:
    """A well-formed seqtool checkpoint header whose tokenizer bytes are a pickle."""
    from safetensors.torch import save

    meta = {
        "format_version": "1",
        "seqtool_version": "0",
        "task": "lm",
        "config": "{}",
        "tokenizer": json.dumps(
            {"kind": "spm", "data": base64.b64encode(pickle.dumps(Payload(marker))).decode()}
        ),
    }
    return save({"w": torch.zeros(2)}, metadata=meta)


def _torch_save(obj, legacy: bool) -> bytes:
    import io

    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=not legacy)
    return buf.getvalue()


PAYLOADS = {
    "pickle2": lambda m: pickle.dumps({"w": Payload(m)}, protocol=2),
    "pickle5": lambda m: pickle.dumps({"w": Payload(m)}, protocol=5),
    "torch-zip": lambda m: _torch_save({"w": Payload(m)}, legacy=False),
    "torch-legacy": lambda m: _torch_save({"w": Payload(m)}, legacy=True),
}


@pytest.fixture
def marker(tmp_path):
    m = tmp_path / "PAYLOAD-RAN"
    yield m
    assert not m.exists(), "a payload ran"


def _refused(r, *needles: str) -> None:
    assert r.code == 2, r
    # one error line, the last (a resume may first echo the options it changes)
    lines = r.err.strip().splitlines()
    assert "Traceback" not in r.err and lines[-1].startswith("seqtool: error: "), r.err
    assert [ln for ln in lines if "error" in ln.lower()] == lines[-1:], r.err
    for n in needles:
        assert n in lines[-1], r.err
    assert r.out == ""


@pytest.mark.parametrize("kind", [*PAYLOADS, "polyglot"])
def test_payloads_are_live(tmp_path, kind):
    """Loaded the unsafe way, each payload does create its marker (so its absence means
    something). The polyglot's pickle sits in its tokenizer metadata."""
    m = tmp_path / "ran"
    if kind == "polyglot":
        from safetensors import safe_open

        p = tmp_path / "x.safetensors"
        p.write_bytes(_polyglot(m))
        with safe_open(str(p), "pt") as f:
            tok = json.loads(f.metadata()["tokenizer"])
        pickle.loads(base64.b64decode(tok["data"]))
    elif kind.startswith("torch"):
        p = tmp_path / "x.pt"
        p.write_bytes(PAYLOADS[kind](m))
        torch.load(p, weights_only=False)
    else:
        pickle.loads(PAYLOADS[kind](m))
    assert m.exists()


# Every option that names a checkpoint or tokenizer file (stdin: one line of text).
SLOTS = {
    "generate": lambda f: ["generate", "-m", f, "-n", "3"],
    "classify": lambda f: ["classify", "-m", f],
    "pseudo-label": lambda f: ["pseudo-label", "-m", f],
    "tag": lambda f: ["tag", "-m", f],
    "tag --segmenter": lambda f: ["tag", "--segmenter", f],
    "translate": lambda f: ["translate", "-m", f],
    "eval": lambda f: ["eval", f, str(SAMPLE)],
    "inspect trace": lambda f: ["inspect", "trace", "the cat", "-m", f],
    "inspect params": lambda f: ["inspect", "params", f],
    "inspect gradients": lambda f: ["inspect", "gradients", "-m", f, "--length", "5"],
    "tokenize words": lambda f: ["tokenize", "words", "-m", f],
    "tokenize sentences": lambda f: ["tokenize", "sentences", "-m", f],
    "tokenize encode": lambda f: ["tokenize", "encode", "-m", f],
    "tokenize decode": lambda f: ["tokenize", "decode", "-m", f],
    "calibrate": lambda f: ["calibrate", f, str(C / "sentiment-sample.csv")],
}


@pytest.mark.parametrize("kind", [*PAYLOADS, "polyglot"])
@pytest.mark.parametrize("slot", list(SLOTS))
def test_every_model_option_refuses_code(tmp_path, marker, slot, kind):
    f = tmp_path / "evil.safetensors"
    f.write_bytes(_polyglot(marker) if kind == "polyglot" else PAYLOADS[kind](marker))
    _refused(run_cli(*SLOTS[slot](f), stdin="a line\n"), str(f))


@pytest.mark.parametrize("kind", list(PAYLOADS))
def test_init_from_and_tokenizer_file_refuse_code(tmp_path, marker, kind):
    f = tmp_path / "evil.safetensors"
    f.write_bytes(PAYLOADS[kind](marker))
    for extra in (["--init-from", f], ["--tokenizer", f]):
        out = tmp_path / "c.safetensors"
        args = ["-o", out, *extra, "--dev-fraction", "0", *TINY]  # no small-dev warning
        r = run_cli("train", "classifier", C / "sentiment-sample.csv", *args)
        _refused(r, str(f))
        assert not out.exists() and not (tmp_path / "c.run").exists()


@pytest.mark.parametrize("kind", ["pickle5", "torch-zip"])
def test_a_shipped_model_slot_refuses_code(tmp_path, marker, monkeypatch, kind):
    """$SEQTOOL_CHECKPOINTS is searched first for the default models."""
    (tmp_path / "lm-shakespeare.safetensors").write_bytes(PAYLOADS[kind](marker))
    monkeypatch.setenv("SEQTOOL_CHECKPOINTS", str(tmp_path))
    _refused(run_cli("generate", "-n", "3"), "lm-shakespeare.safetensors")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished 2-step LM run: model file and run folder."""
    out = tmp_path_factory.mktemp("run") / "m.safetensors"
    cfg = TrainConfig(steps=2, batch_size=4, seq_len=16, eval_every=2, threads=1, seed=0)
    api.train(
        "lm",
        out,
        cfg,
        files=[str(SAMPLE)],
        backbone=dict(hidden_size=7, embedding_dim=10, layers=1),
    )
    return out


def _train_lm(out, *extra):
    args = ["train", "lm", SAMPLE, "-o", out, *TINY, "--batch-size", "4", "--seq-len", "16"]
    return run_cli(*args, "--eval-every", "2", "--seed", "0", *extra)


def _crafted(finished_run, tmp_path, kind, marker):
    """A copy of the run whose resume.pt is `kind`; "embedded": the real state with a
    payload tucked into it (what an attacker editing a real resume.pt would write)."""
    out = tmp_path / "m.safetensors"
    shutil.copy(finished_run, out)
    run = tmp_path / "m.run"
    shutil.copytree(finished_run.with_name("m.run"), run)
    if kind == "embedded":
        state = torch.load(run / "resume.pt", weights_only=True)
        state["best_metrics"] = {"x": Payload(marker)}
        state["finished"] = False
        (run / "resume.pt").write_bytes(_torch_save(state, legacy=False))
    else:
        (run / "resume.pt").write_bytes(PAYLOADS[kind](marker))
    return out, run


@pytest.mark.parametrize("kind", ["embedded", *PAYLOADS])
def test_crafted_resume_state_is_refused(finished_run, tmp_path, marker, kind):
    out, run = _crafted(finished_run, tmp_path, kind, marker)
    before = (run / "last.safetensors").read_bytes()
    _refused(_train_lm(out, "--steps", "4", "--resume"), "damaged resume state")
    assert (run / "last.safetensors").read_bytes() == before  # no step was taken
    # a plain rerun does not load it either, and does not throw it away unasked
    _refused(_train_lm(out, "--steps", "4"), "--resume", "--restart")
    assert (run / "resume.pt").exists()


TASK_DATA = {
    "lm": [SAMPLE],
    "classifier": [C / "sentiment-sample.csv"],
    "tagger": [C / "pos-sample.conllu"],
    "segmenter": [C / "pos-sample.conllu"],
    "translator": [C / "translation-sample.tsv"],
}


@pytest.mark.parametrize("task", list(TASK_DATA))
def test_crafted_last_checkpoint_is_refused_on_resume(tmp_path, marker, task):
    out, run = tmp_path / "m.safetensors", tmp_path / "m.run"
    run.mkdir()
    (run / "last.safetensors").write_bytes(PAYLOADS["torch-zip"](marker))
    (run / "resume.pt").write_bytes(PAYLOADS["pickle2"](marker))
    r = run_cli("train", task, *TASK_DATA[task], "-o", out, *TINY, "--steps", "2", "--resume")
    _refused(r, "last.safetensors")
    assert not out.exists()


def test_token_cache_with_a_pickled_offsets_file_is_rebuilt(tmp_path, marker, monkeypatch):
    """The corpus token cache reads .npy without pickles: a planted object array is treated
    as damaged and rebuilt, never unpickled."""
    import numpy as np

    monkeypatch.setenv("SEQTOOL_CACHE", str(tmp_path / "cache"))
    data = C / "sentiment-sample.csv"
    args = ["--tokenizer", "char", "--steps", "1", "--dev-fraction", "0", *TINY]
    first = run_cli("train", "classifier", data, "-o", tmp_path / "a.safetensors", *args)
    assert first.code == 0, first
    offsets = list((tmp_path / "cache").rglob("*.offsets.npy"))
    assert offsets
    for p in offsets:
        np.save(p, np.array([Payload(marker)], dtype=object), allow_pickle=True)
        with pytest.raises(ValueError, match="allow_pickle"):  # it does hold a pickle
            np.load(p, allow_pickle=False)
    r = run_cli("train", "classifier", data, "-o", tmp_path / "b.safetensors", *args)
    assert r.code == 0, r
    assert all(np.load(p, allow_pickle=False).dtype == np.int64 for p in offsets)  # rebuilt


def test_resume_state_holds_no_objects(finished_run):
    """What the trainer writes is loadable with weights_only=True (plain values, tensors):
    the refusal above costs real runs nothing."""
    state = torch.load(finished_run.with_name("m.run") / "resume.pt", weights_only=True)
    assert state["step"] == 2 and state["finished"] is True
    data = (finished_run.with_name("m.run") / "last.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    json.loads(data[8 : 8 + n])
