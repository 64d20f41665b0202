"""One test class run over every task (flair's pattern): each model is the shared backbone plus
a small head, fulfils the same contract, saves and loads exactly; and the LM's sampling and
the translator's greedy and beam search step through one loop and one stepper."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from seqtool import api, decoding, tasks
from seqtool.backbone import Decoder, Encoder, Recurrent
from seqtool.backbone.cells import Stepper
from seqtool.config import TrainConfig

ROOT = Path(__file__).resolve().parent.parent
C = ROOT / "corpora"
TINY = {"hidden_size": 7, "embedding_dim": 10, "layers": 1}
# Per task: its training data, a few options, held-out data and a text to inspect.
SETUPS = {
    "lm": ({"files": [str(C / "play-sample.txt")]}, C / "play-sample.txt", "ROMEO:"),
    "classifier": (
        {"files": [str(C / "sentiment-sample.csv")], "tokenizer": "char"},
        C / "sentiment-sample.csv",
        "a fine film",
    ),
    "tagger": ({"files": [str(C / "pos-sample.conllu")]}, C / "pos-sample.conllu", "the cat sat"),
    "segmenter": ({"files": [str(C / "pos-sample.conllu")]}, C / "pos-sample.conllu", "I don't."),
    "translator": (
        {"files": [str(C / "translation-sample.tsv")], "tokenizer": "char"},
        C / "translation-sample.tsv",
        "a man rides",
    ),
}


@pytest.fixture(scope="module", params=list(SETUPS))
def trained(request, tmp_path_factory):
    task = request.param
    options, dev, _ = SETUPS[task]
    out = tmp_path_factory.mktemp(task) / "m.safetensors"
    cfg = TrainConfig(steps=3, batch_size=4, seq_len=16, eval_every=3, threads=1, seed=0)
    api.train(task, out, cfg, backbone=dict(TINY), dev_fraction=0.0, **options)
    return task, out, dev


class TestEveryTask:
    def test_registered_and_declares_its_options(self, trained):
        task, _, _ = trained
        cls = tasks.get(task)
        assert cls.task == task and cls.options_class.__doc__
        assert "Examples" in cls.options_class.__doc__  # it is the `train TASK --help` text
        names = {f.name for f in dataclasses.fields(cls.options_class)}
        assert "files" in names

    def test_model_is_the_shared_encoder_plus_a_head(self, trained):
        task, path, _ = trained
        model = api.load(path)
        encoders = [m for m in model.modules() if type(m) is Encoder]
        assert len(encoders) == 1  # the same class for every task
        # Every recurrent stack belongs to the backbone's encoder or decoder.
        owners = [m for m in model.modules() if isinstance(m, Encoder | Decoder)]
        inside = {id(m) for o in owners for m in o.modules()}
        stacks = [m for m in model.modules() if isinstance(m, Recurrent | torch.nn.RNNBase)]
        assert stacks and all(id(m) in inside for m in stacks)

    def test_saved_model_loads_with_identical_weights(self, trained, tmp_path):
        _, path, _ = trained
        a = api.load(path)
        a.save(tmp_path / "again.safetensors")
        b = api.load(tmp_path / "again.safetensors")
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)

    def test_evaluate_reports_the_main_metric(self, trained):
        task, path, dev = trained
        metrics = api.evaluate(path, str(dev), threads=1)
        model = api.load(path)
        assert isinstance(metrics[model.main_metric], float)
        api.report(path, metrics)  # the extra tables render without error

    def test_inspection_sees_the_encoders_own_stack(self, trained):
        task, path, _ = trained
        model = api.load(path)
        tokens, x, rnn = model.inspect_inputs(SETUPS[task][2])
        encoder = next(m for m in model.modules() if type(m) is Encoder)
        assert rnn is encoder.rnn and x.shape[:2] == (1, len(tokens))
        out, _ = rnn(x)
        assert out.shape[1] == len(tokens)

    def test_eval_rejects_an_option_of_another_task(self, trained):
        task, path, dev = trained
        other = "beam" if task != "translator" else "text_column"
        with pytest.raises(Exception, match="not an option"):
            api.evaluate(path, str(dev), **{other: 2})


def _spy(monkeypatch, owner, name):
    calls: list = []
    real = getattr(owner, name)

    def wrapper(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapper)
    return calls


def test_sampling_greedy_and_beam_share_one_loop_and_one_stepper(monkeypatch, tmp_path):
    cfg = TrainConfig(steps=2, batch_size=4, seq_len=16, threads=1)
    lm_path, tr_path = tmp_path / "lm.safetensors", tmp_path / "tr.safetensors"
    api.train("lm", lm_path, cfg, backbone=dict(TINY), **SETUPS["lm"][0])
    api.train("translator", tr_path, cfg, backbone=dict(TINY), **SETUPS["translator"][0])
    lm, tr = api.load(lm_path), api.load(tr_path)
    loops = _spy(monkeypatch, decoding, "search")
    steps = _spy(monkeypatch, Stepper, "advance")
    text = "".join(api.generate(lm, "RO", 5, seed=1))
    assert len(text) > 0 and type(loops[-1][2]) is decoding.Sampler and steps
    for beam, strategy in ((1, decoding.Greedy), (3, decoding.Beam)):
        n = len(steps)
        tr.translate(["a man"], beam=beam)
        assert type(loops[-1][2]) is strategy and len(steps) > n
