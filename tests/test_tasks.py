"""One test class run over every task (flair's pattern): each model is the shared backbone plus
a small head, fulfils the same contract, saves and loads exactly; and the LM's sampling and
the translator's greedy and beam search step through one loop and one stepper."""

from __future__ import annotations

import dataclasses
import io
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from seqtool import api, decoding, tasks
from seqtool.backbone import Decoder, Encoder, Recurrent
from seqtool.backbone.cells import Stepper
from seqtool.config import TrainConfig
from seqtool.training.callbacks import Callback

ROOT = Path(__file__).resolve().parent.parent
C = ROOT / "corpora"
TINY = {"hidden_size": 7, "embedding_dim": 10, "layers": 1}
# Per task: its training data (also the held-out data: the metric must move on what the
# model saw), a text to inspect, fixed inputs for predict() with its options, and how long
# and fast the tiny model trains for its main metric to move.
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
PREDICT = {
    "lm": (["ROMEO:", "The "], {"length": 12, "top_k": 1}),  # greedy: no sampling noise
    "classifier": (["a fine film", "i hated it", "x"], {}),
    "tagger": ([["The", "cat", "sat", "."], ["Dogs", "run"]], {}),
    "segmenter": (["I don't know. He left.", "Hello"], {}),
    "translator": (["A dog is sitting at the beach .", "a man"], {"beam": 2}),
}
# steps, lr, hidden size; the translator learns 4 pairs by heart (BLEU moves off 0).
TRAINING = {
    "lm": (30, 0.02, 7),
    "classifier": (30, 0.02, 7),
    "tagger": (30, 0.02, 7),
    "segmenter": (30, 0.02, 7),
    "translator": (60, 0.03, 12),
}


class Watch(Callback):
    """The main metric before the first step and after the last, and the trained model's
    predictions on fixed inputs (before anything is saved or reloaded)."""

    def __init__(self, task: str, dev: Path) -> None:
        self.task, self.dev = task, dev
        self.metrics: dict[str, dict] = {}

    def _measure(self, trainer: Any, when: str) -> None:
        model = trainer.model
        self.metrics[when] = model.evaluate(model.eval_data(str(self.dev)))
        model.train()  # evaluate() may leave eval mode on; the trainer expects train mode

    def on_train_start(self, trainer: Any) -> None:
        self._measure(trainer, "start")

    def on_train_end(self, trainer: Any) -> None:
        self._measure(trainer, "end")
        inputs, options = PREDICT[self.task]
        self.predicted = _predict(trainer.model, inputs, options)


class Trained(tuple):
    """(task, model path, held-out data), and `.watch`: what happened while it trained."""

    def __new__(cls, task: str, path: Path, dev: Path, watch: Watch):
        self = super().__new__(cls, (task, path, dev))
        self.watch = watch
        return self


def _predict(model: Any, inputs: list, options: dict) -> list:
    if model.task == "lm":  # sampling draws from torch's global RNG: fix it per call
        torch.manual_seed(0)
    return model.predict(inputs, **options)


@pytest.fixture(scope="module", params=list(SETUPS))
def trained(request, tmp_path_factory):
    task = request.param
    options, dev, _ = SETUPS[task]
    tmp = tmp_path_factory.mktemp(task)
    if task == "translator":
        pairs = dev.read_text(encoding="utf-8").splitlines()[:4]
        dev = tmp / "pairs.tsv"
        dev.write_text("\n".join(pairs) + "\n", encoding="utf-8")
        options = dict(options, files=[str(dev)])
    steps, lr, hidden = TRAINING[task]
    out = tmp / "m.safetensors"
    cfg = TrainConfig(steps=steps, batch_size=4, seq_len=16, warmup=2, lr=lr, threads=1, seed=0)
    watch = Watch(task, dev)
    backbone = dict(TINY, hidden_size=hidden, embedding_dim=16 if task == "translator" else 10)
    api.train(task, out, cfg, backbone=backbone, dev_fraction=0.0, callbacks=[watch], **options)
    return Trained(task, out, dev, watch)


def _render(tables: list) -> str:
    from rich.console import Console

    console = Console(width=200, record=True, file=io.StringIO())
    for t in tables:
        console.print(t)
    return console.export_text()


def _prf_rows(task: str, metrics: dict) -> dict[str, dict]:
    """The precision/recall/F1 rows the task's report must show: title -> rows."""
    if task == "classifier":
        return {"per class": metrics["per_class"]}
    if task == "tagger":
        return {"per tag": metrics["per_tag"]}
    if task == "segmenter":
        keep = ("Tokens", "Words", "Sentences")
        return {f"udeval: {mode}": {k: r[k] for k in keep if k in r}
                for mode, r in metrics["udeval"].items()}  # fmt: skip
    return {}


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

    def test_reloaded_model_predicts_what_the_trained_one_did(self, trained, tmp_path):
        task, path, _ = trained
        inputs, options = PREDICT[task]
        before = trained.watch.predicted
        assert len(before) == len(inputs)
        assert _predict(api.load(path), inputs, options) == before
        api.load(path).save(tmp_path / "again.safetensors")  # and once more through save()
        assert _predict(api.load(tmp_path / "again.safetensors"), inputs, options) == before

    def test_main_metric_is_finite_and_moves_with_training(self, trained):
        task, path, dev = trained
        cls = tasks.get(task)
        start = trained.watch.metrics["start"][cls.main_metric]
        end = trained.watch.metrics["end"][cls.main_metric]
        assert math.isfinite(start) and math.isfinite(end)
        assert (end > start) if cls.higher_is_better else (end < start), (start, end)
        # `seqtool eval`'s path reads the saved model and reports the same number
        metrics = api.evaluate(path, str(dev), threads=1)
        assert metrics[cls.main_metric] == pytest.approx(end, rel=1e-6)

    def test_report_renders_the_tables_of_its_metrics(self, trained):
        task, path, dev = trained
        metrics = api.evaluate(path, str(dev), threads=1)
        text = _render(api.report(path, metrics))
        lines = text.splitlines()
        if task == "lm":
            assert text.strip() == ""  # perplexity is the headline; no extra tables
        if task == "translator":
            assert f"BLEU {metrics['bleu']:.2f}  chrF {metrics['chrf']:.2f}" in text
            assert f"beam {int(metrics['beam'])}" in text
            assert f"teacher-forced {metrics['loss_teacher_forced']:.3f}" in text
            assert f"free-running {metrics['loss_free_running']:.3f}" in text
        expected = _prf_rows(task, metrics)
        for title, rows in expected.items():
            assert title in text and rows
            for name, m in rows.items():
                cells = [name, f"{m['precision']:.4f}", f"{m['recall']:.4f}", f"{m['f1']:.4f}"]
                cells.append(str(m["support"]))
                assert any(all(c in ln for c in cells) for ln in lines), (name, cells, text)
        if task == "tagger":  # most frequent tags first
            order = sorted(rows, key=lambda t: -rows[t]["support"])
            pos = [next(i for i, ln in enumerate(lines) if f" {t} " in ln) for t in order]
            assert pos == sorted(pos)
        if task == "classifier":
            conf = metrics["confusion"]
            assert "confusion matrix" in text
            for name, row in zip(conf["labels"], conf["matrix"], strict=True):
                assert any(name in ln and all(str(v) in ln for v in row) for ln in lines)

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
