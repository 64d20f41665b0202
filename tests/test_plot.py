"""`seqtool plot`: training curves and summaries from model.run/metrics.jsonl."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import ROOT, TINY, run_cli

from seqtool import plotting
from seqtool.errors import DataError, SeqtoolError


def _log(tmp: Path, name: str, records: list[dict], task: str | None = "classifier") -> Path:
    """A model path whose NAME.run/ holds `records` as its metrics log."""
    run = tmp / f"{name}.run"
    run.mkdir()
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    if task:
        (run / "config.json").write_text(json.dumps({"task": task}))
    return tmp / f"{name}.safetensors"


def _train(step: int, loss: float) -> dict:
    return {"step": step, "time": step * 0.5, "loss": loss, "lr": 0.001, "tokens_per_sec": 9.0}


def _dev(step: int, acc: float) -> dict:
    return {"step": step, "time": step * 0.5, "dev": {"accuracy": acc, "nll": 1 - acc}}


RECORDS = [_train(2, 0.9), _dev(2, 0.5), _train(4, 0.7), _dev(4, 0.8), _train(6, 0.4), _dev(6, 0.8)]


def test_summary_ranks_by_the_tasks_main_metric(tmp_path):
    run = plotting.read_run(str(_log(tmp_path, "a", RECORDS)))
    s = run.summary()
    assert (s["task"], s["metric"], s["steps"], s["time_s"]) == ("classifier", "accuracy", 6, 3.0)
    assert (s["best"], s["best_step"]) == (0.8, 4)  # the first of equals, as the trainer keeps
    assert s["final_train_loss"] == 0.4 and s["evaluations"] == 3
    assert run.dev_loss_key == "nll"


def test_lower_is_better_metric(tmp_path):
    recs = [{"step": s, "time": s, "dev": {"nats_per_char": v}} for s, v in [(1, 3.0), (2, 2.0)]]
    run = plotting.read_run(str(_log(tmp_path, "lm", [_train(1, 3.0), *recs], task="lm")))
    assert run.best() == (2, 2.0) and run.dev_loss_key is None


def test_run_named_by_model_folder_or_log(tmp_path):
    model = _log(tmp_path, "a", RECORDS)
    for given in (model, tmp_path / "a.run", tmp_path / "a.run" / "metrics.jsonl", tmp_path / "a"):
        run = plotting.read_run(str(given))
        assert run.name == str(tmp_path / "a") and len(run.dev) == 3


def test_resumed_steps_replace_the_replayed_ones_and_warnings_are_kept(tmp_path):
    recs = [*RECORDS, _train(4, 0.65), {"step": 4, "warning": "dev loss never improved"}]
    run = plotting.read_run(str(_log(tmp_path, "a", recs)))
    assert [r[0] for r in run.train] == [2, 4] and run.train[-1][2] == 0.65
    assert run.warnings == ["dev loss never improved"]


def test_a_last_line_still_being_written_is_skipped(tmp_path):
    model = _log(tmp_path, "a", RECORDS)
    with (tmp_path / "a.run" / "metrics.jsonl").open("a") as f:
        f.write('{"step": 8, "ti')
    assert plotting.read_run(str(model)).summary()["steps"] == 6


def test_bad_logs_are_one_line_errors(tmp_path):
    model = _log(tmp_path, "bad", RECORDS)
    log = tmp_path / "bad.run" / "metrics.jsonl"
    log.write_text(json.dumps(RECORDS[0]) + "\n{oops\n" + json.dumps(RECORDS[1]) + "\n")
    with pytest.raises(DataError, match=r"metrics.jsonl:2:2: not a JSON record"):
        plotting.read_run(str(model))
    log.write_text("")
    with pytest.raises(SeqtoolError, match="is empty"):
        plotting.read_run(str(model))
    with pytest.raises(SeqtoolError, match=r"nothing\.safetensors: no training log"):
        plotting.read_run(str(tmp_path / "nothing.safetensors"))


@pytest.mark.parametrize(
    "args,message",
    [
        (["missing.safetensors"], "missing.safetensors: no training log"),
        (["."], "is a directory"),
        (["a.safetensors", "--format", "svg"], "--format must be one of"),
        (["a.safetensors", "-o", "no/such/dir/c.png"], "no such folder"),
    ],
)
def test_cli_errors_exit_2_with_one_line(tmp_path, monkeypatch, args, message):
    _log(tmp_path, "a", RECORDS)
    monkeypatch.chdir(tmp_path)
    r = run_cli("plot", *args)
    assert r.code == 2 and message in r.err and len(r.err.strip().splitlines()) == 1, r


def test_text_and_json_summaries(tmp_path, monkeypatch):
    _log(tmp_path, "a", RECORDS)
    _log(tmp_path, "b", [_train(3, 1.0), _dev(3, 0.6)])
    monkeypatch.chdir(tmp_path)
    r = run_cli("plot", "a.safetensors", "b.run", "--format", "text")
    assert r.code == 0, r
    rows = [line for line in r.out.splitlines() if " classifier " in line]
    assert len(rows) == 2 and "accuracy 0.8" in rows[0] and "accuracy 0.6" in rows[1]
    assert not (tmp_path / "curves.png").exists()
    r = run_cli("plot", "a.safetensors", "b.run", "--format", "json")
    assert [json.loads(line)["best"] for line in r.out.splitlines()] == [0.8, 0.6]


def test_png_of_several_runs(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    _log(tmp_path, "a", RECORDS)
    _log(tmp_path, "b", [_train(3, 1.0), _dev(3, 0.6)])
    monkeypatch.chdir(tmp_path)
    r = run_cli("plot", "a.safetensors", "b.safetensors", "-o", "c.png")
    assert r.code == 0 and "wrote c.png (2 runs)" in r.err, r
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "accuracy 0.8" in r.out  # the summary is printed as well
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".c.png")] == []


def test_without_matplotlib(tmp_path, monkeypatch):
    _log(tmp_path, "a", RECORDS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    r = run_cli("plot", "a.safetensors", "--format", "png")
    assert r.code == 2 and "pip install 'seqtool[plot]'" in r.err, r
    r = run_cli("plot", "a.safetensors")
    assert r.code == 0 and "accuracy 0.8" in r.out and "seqtool[plot]" in r.err, r
    assert not (tmp_path / "curves.png").exists()


def test_a_real_training_log(tmp_path, monkeypatch):
    """The reader follows what the trainer writes (not only the records written above)."""
    monkeypatch.chdir(tmp_path)
    corpora = ROOT / "corpora"
    dev = corpora / "sentiment-behaviour.csv"
    args = ["--steps", "6", "--log-every", "2", "--eval-every", "3", "--dev", dev]
    r = run_cli("train", "classifier", corpora / "sentiment-sample.csv", *args, *TINY)
    assert r.code == 0, r
    r = run_cli("plot", "model.safetensors", "--format", "json")
    s = json.loads(r.out)
    assert (s["task"], s["steps"], s["evaluations"]) == ("classifier", 6, 2)
    assert s["metric"] == "accuracy" and s["best_step"] in (3, 6) and s["final_train_loss"] > 0
    assert s["warnings"] >= 1  # --vocab-size 16,000 is not reached on 36 rows: logged too
