"""Defaults that fit the run, and nothing lost or silently ignored (issue 21): automatic
warmup, the dev split's minimum, the warnings about a run whose model may be useless (stderr
and metrics.jsonl), the finished-model and --resume refusals, a closed stderr."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
from conftest import ROOT, SAMPLE, TINY, run_cli

from seqtool import api, notices
from seqtool.config import TrainConfig
from seqtool.data.split import MIN_DEV, dev_count
from seqtool.training.checks import RunChecks, one_class
from seqtool.training.schedule import AUTO_WARMUP_STEPS, auto_warmup, lr_lambda

SENTIMENT = ROOT / "corpora" / "sentiment-sample.csv"
LM = [*TINY, "--batch-size", "4", "--seq-len", "32", "--lr", "0.01"]


def _rows(out):
    path = out.parent / (out.name.removesuffix(".safetensors") + ".run") / "metrics.jsonl"
    return [json.loads(x) for x in path.open()]


def _warnings(out):
    return [r["warning"] for r in _rows(out) if "warning" in r]


# -- warmup ----------------------------------------------------------------------------------


def test_warmup_not_given_is_a_tenth_of_the_run_at_most_100_steps():
    assert auto_warmup(TrainConfig(), 40) == 4
    assert auto_warmup(TrainConfig(), 5000) == AUTO_WARMUP_STEPS
    assert auto_warmup(TrainConfig(), 5) == 0
    assert auto_warmup(TrainConfig(), None) == AUTO_WARMUP_STEPS  # a time budget: by time too
    assert auto_warmup(TrainConfig(warmup=300), 40) == 300  # given: as given


def test_automatic_warmup_also_ends_at_a_tenth_of_a_time_budget():
    used = {"share": 0.0}
    f = lr_lambda(TrainConfig(), 10**9, progress=lambda _s: 0.5, time_done=lambda: used["share"])
    assert f(9) == pytest.approx(10 / AUTO_WARMUP_STEPS)  # early on: by steps
    used["share"] = 0.1
    assert f(9) > 0.5  # a tenth of the budget gone: warmup is over, decay by time
    given = lr_lambda(TrainConfig(warmup=100), 10**9, lambda _s: 0.5, time_done=lambda: 0.5)
    assert given(9) == pytest.approx(0.1)  # an explicit --warmup is kept


def test_short_run_leaves_warmup_and_anneals(tmp_path):
    out = tmp_path / "m.safetensors"
    cfg = TrainConfig(steps=40, batch_size=4, seq_len=32, lr=0.01, log_every=1, threads=1)
    api.train("lm", out, cfg, files=[str(SAMPLE)], backbone=dict(hidden_size=8, layers=1))
    lrs = [r["lr"] for r in _rows(out) if "lr" in r]
    # 4 warmup steps (the LR after step s is logged: 0.25 of the peak was step 1's)
    assert lrs[:4] == pytest.approx([0.005, 0.0075, 0.01, 0.01])
    assert lrs[-1] == pytest.approx(0.001, rel=0.05)  # and the run anneals to its end


# -- the dev split ------------------------------------------------------------------------------


def test_dev_split_has_a_minimum_or_none_with_a_warning(capsys):
    assert dev_count(1000, 0.05) == 50
    assert dev_count(100, 0.05) == MIN_DEV  # raised to the minimum
    assert dev_count(80, 0.05) == MIN_DEV  # still leaves 3/4 for training
    assert dev_count(100, 0.0) == 0
    notices.clear()
    assert capsys.readouterr().err == ""
    assert dev_count(79, 0.05, "sentences") == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("warning: 79 sentences are too few")
    assert "--dev" in err and notices.take() == [(err.strip().removeprefix("warning: "), True)]
    with notices.deferred():  # while a run is set up: kept for the trainer to show
        dev_count(10, 0.05)
    assert capsys.readouterr().err == "" and not notices.take()[0][1]
    with pytest.raises(Exception, match="--dev-fraction must be in"):
        dev_count(100, 1.5)


def test_small_data_trains_on_every_row_and_says_so(tmp_path):
    out = tmp_path / "m.safetensors"
    r = run_cli("train", "classifier", SENTIMENT, "-o", out, "--tokenizer", "char", *TINY,
                "--steps", "4")  # fmt: skip
    assert r.code == 0, r
    line = next(x for x in r.err.splitlines() if "too few to hold out" in x)
    assert line.startswith("warning: 36 rows") and "--dev FILE" in line
    assert "no dev data" in r.err
    assert any("36 rows are too few" in w for w in _warnings(out))  # and in the run's log


# -- a run whose model may be useless -----------------------------------------------------------


def _table(path, rows):
    path.write_text("text,label\n" + "".join(f"the same words,{y}\n" for y in rows))
    return path


def test_one_class_model_and_dev_never_improving_are_warned(tmp_path):
    # Every text is the same: any model gives every dev row one label, the majority's.
    train = _table(tmp_path / "train.csv", ["a"] * 20 + ["b"] * 10)
    dev = _table(tmp_path / "dev.csv", ["a"] * 6 + ["b"] * 4)
    out = tmp_path / "m.safetensors"
    r = run_cli("train", "classifier", train, "--dev", dev, "-o", out, "--tokenizer", "char",
                *TINY, "--steps", "30", "--eval-every", "10", "--lr", "0.05")  # fmt: skip
    assert r.code == 0, r
    warned = [x.removeprefix("warning: ") for x in r.err.splitlines() if x.startswith("warning:")]
    assert any(w.startswith("the dev set has 10 rows, too few") for w in warned), r.err
    assert any(w.startswith("the saved model labels all 10 dev rows 'a'") for w in warned)
    assert any(w.startswith("dev accuracy never improved after the first of 3") for w in warned)
    assert set(warned) <= set(_warnings(out))  # each one is also in metrics.jsonl


def test_one_class_reads_the_confusion_matrix():
    conf = {"labels": ["neg", "pos"], "matrix": [[0, 5], [0, 7]]}
    assert one_class({"confusion": conf}) == ("pos", 12)
    assert one_class({"confusion": {**conf, "matrix": [[1, 4], [0, 7]]}}) is None
    assert one_class({"confusion": {**conf, "matrix": [[0, 0], [0, 7]]}}) is None  # gold too
    assert one_class({"accuracy": 1.0}) is None


def test_dev_that_improves_gives_no_warning():
    said = []
    trainer = SimpleNamespace(step=0, dev=object(), best_metrics={}, warn=said.append,
                              model=SimpleNamespace(main_metric="loss"))  # fmt: skip
    checks = RunChecks()
    for step, improved in [(10, True), (20, True), (30, False)]:
        trainer.step = step
        checks.on_eval(trainer, {"loss": 1.0}, improved)
    checks.on_train_end(trainer)
    assert said == []
    checks.load_state_dict({**checks.state_dict(), "best_step": 10})  # as if never improved
    checks.on_train_end(trainer)
    assert len(said) == 1 and "never improved after the first of 3" in said[0]


# -- nothing lost, nothing silently ignored -----------------------------------------------------


def _lm(out, *extra):
    return run_cli("train", "lm", SAMPLE, "-o", out, *LM, *extra)


def test_finished_model_is_replaced_only_with_overwrite(tmp_path):
    out = tmp_path / "m.safetensors"
    assert _lm(out, "--steps", "4").code == 0
    before = out.read_bytes()
    r = _lm(out, "--steps", "4", "--seed", "3")
    assert r.code == 2 and out.read_bytes() == before
    (line,) = r.err.strip().splitlines()
    assert "already holds a trained model (an lm, 4 steps)" in line and "--overwrite" in line
    r = _lm(out, "--steps", "4", "--seed", "3", "--overwrite")
    assert r.code == 0 and out.read_bytes() != before
    other = tmp_path / "notes.safetensors"
    other.write_text("my notes")
    r = _lm(other, "--steps", "4")
    assert r.code == 2 and "not a seqtool model" in r.err and other.read_text() == "my notes"


def test_resume_names_each_option_that_changes_the_model(tmp_path):
    out = tmp_path / "m.safetensors"
    assert _lm(out, "--steps", "4").code == 0
    r = _lm(out, "--steps", "8", "--resume", "--hidden", "16", "--cell", "gru", "--tokenizer",
            "bpe")  # fmt: skip
    assert r.code == 2
    (line,) = r.err.strip().splitlines()
    for part in ("--hidden 16 (the run has 7)", "--cell gru (the run has lstm)",
                 "--tokenizer bpe (the run has char)"):  # fmt: skip
        assert part in line
    r = _lm(out, "--steps", "8", "--resume", "--batch-size", "8")
    assert r.code == 2 and "--batch-size 8 (the run has 4)" in r.err


def test_resume_takes_new_training_options_and_keeps_the_rest(tmp_path):
    out = tmp_path / "m.safetensors"
    assert _lm(out, "--steps", "4", "--weight-decay", "0.05", "--log-every", "1").code == 0
    # Only the options named change; --weight-decay and the sizes stay the run's.
    r = run_cli("train", "lm", SAMPLE, "-o", out, "--resume", "--steps", "8", "--lr", "0.02")
    assert r.code == 0, r
    assert "resuming at step 4 with --steps 4 -> 8, --lr 0.01 -> 0.02" in r.err
    config = json.loads((tmp_path / "m.run" / "config.json").read_text())
    assert config["train"]["lr"] == 0.02 and config["train"]["weight_decay"] == 0.05
    assert config["model"]["backbone"]["hidden_size"] == 7
    lrs = {r["step"]: r["lr"] for r in _rows(out) if "lr" in r}
    assert lrs[5] == pytest.approx(0.02 * (0.1 + 0.45 * (1 + math.cos(math.pi * 5 / 8))))
    r = _lm(out, "--steps", "6", "--resume")
    assert r.code == 2 and "--steps 6 is below the 8 steps" in r.err


# -- small items ----------------------------------------------------------------------------------


def test_vocabulary_short_of_vocab_size_is_a_warning(tmp_path):
    r = run_cli("tokenize", "train", SAMPLE, "--vocab-size", "8000", "-o", tmp_path / "t.model")
    assert r.code == 0, r
    line = next(x for x in r.err.splitlines() if x.startswith("warning:"))
    assert line.startswith("warning: --vocab-size 8,000 not reached: this text gives ")


def test_short_runs_report_seconds(tmp_path):
    r = _lm(tmp_path / "m.safetensors", "--steps", "4")
    assert r.code == 0 and " s (completed)" in r.err and "0.0 min" not in r.err
    assert notices.duration(42.34) == "42.3 s" and notices.duration(754) == "12.6 min"
    assert notices.duration(7500) == "2 h 05 min"


def test_closed_stderr_does_not_stop_training(tmp_path):
    out = tmp_path / "m.safetensors"
    args = [sys.executable, "-m", "seqtool", "train", "lm", str(SAMPLE), "-o", str(out), *LM,
            "--steps", "20"]  # fmt: skip
    env = {**os.environ, "SEQTOOL_PROGRESS_SECONDS": "0"}  # a line every step
    with subprocess.Popen(args, stderr=subprocess.PIPE, env=env, cwd=tmp_path) as p:
        assert p.stderr is not None
        p.stderr.readline()  # what `2>&1 | head -n 1` reads, then the reader is gone
        p.stderr.close()
        code = p.wait(timeout=300)
    assert code == 0 and out.is_file()
    assert max(r["step"] for r in _rows(out)) == 20


# -- the README's classifier, with defaults ------------------------------------------------------


def test_readme_classifier_with_defaults_labels_its_training_rows(tmp_path):
    out = tmp_path / "sent.safetensors"
    r = run_cli("train", "classifier", SENTIMENT, "-o", out, "--steps", "40", "--threads", "1")
    assert r.code == 0, r
    assert api.evaluate(out, str(SENTIMENT))["accuracy"] >= 0.9


def test_resume_may_add_early_stopping(tmp_path):
    from seqtool.training import Interrupted
    from seqtool.training.callbacks import Callback

    class StopAt(Callback):
        def on_step_end(self, trainer, loss):
            if trainer.step == 6:
                trainer.request_interrupt()

    out = tmp_path / "m.safetensors"
    cfg = TrainConfig(steps=12, batch_size=4, seq_len=32, eval_every=3, threads=1)
    tiny = dict(hidden_size=8, layers=1)
    with pytest.raises(Interrupted):
        api.train("lm", out, cfg, files=[str(SAMPLE)], backbone=tiny, callbacks=[StopAt()])
    # The callbacks' saved states are matched by name, not by position in the list.
    more = cfg.replace(patience=50, max_time=60.0)
    summary = api.train("lm", out, more, files=[str(SAMPLE)], backbone=tiny, resume=True)
    assert summary["steps"] == 12 and summary["stopped"] == "completed"
