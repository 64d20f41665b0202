"""`seqtool models` and -m NAME: shipped and $SEQTOOL_MODELS checkpoints by name."""

from __future__ import annotations

import json
import shutil

from conftest import ROOT, run_cli

from seqtool import paths

SHIPPED = ROOT / "checkpoints"


def test_models_lists_the_shipped_ones_with_task_size_and_dev():
    r = run_cli("models", "--format", "json")
    assert r.code == 0, r
    rows = {m["name"]: m for m in json.loads(r.out)}
    for f in SHIPPED.glob("*.safetensors"):
        m = rows[f.stem]
        assert m["origin"] == "shipped" and m["path"].endswith(f.name)
        assert m["parameters"] > 0 and m["megabytes"] > 0 and m["dev"]
    assert rows["sentiment"]["task"] == "classifier" and rows["lm-shakespeare"]["task"] == "lm"
    table = run_cli("models")
    assert table.code == 0 and "sentiment" in table.out and "classifier" in table.out


def test_user_models_are_listed_and_named(tmp_path, monkeypatch):
    mine = tmp_path / "mine"
    mine.mkdir()
    shutil.copy(SHIPPED / "sentiment.safetensors", mine / "my-sent.safetensors")
    run = mine / "my-sent.run"
    run.mkdir()
    (run / "metrics.jsonl").write_text(
        '{"step": 1, "loss": 0.7}\n{"step": 2, "dev": {"accuracy": 0.61, "macro_f1": 0.5}}\n'
        '{"step": 4, "dev": {"accuracy": 0.83, "macro_f1": 0.8}}\n'
        '{"step": 6, "dev": {"accuracy": 0.79, "macro_f1": 0.7}}\n'
    )
    (mine / "junk.safetensors").write_bytes(b"not a checkpoint")
    monkeypatch.setenv("SEQTOOL_MODELS", str(mine))
    rows = {m["name"]: m for m in json.loads(run_cli("models", "--format", "json").out)}
    assert rows["my-sent"]["origin"] == "user" and rows["my-sent"]["dev"] == "accuracy 0.83"
    assert rows["junk"]["task"].startswith("unreadable")
    r = run_cli("classify", "-m", "my-sent", "--device", "cpu", stdin="a wonderful film\n")
    assert r.code == 0 and r.out.split("\t")[0] in ("positive", "negative"), r


def test_a_name_is_resolved_before_a_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sentiment").write_text("a file that is not the model")
    assert paths.resolve_model("sentiment") == str(SHIPPED / "sentiment.safetensors")
    assert paths.resolve_model("sentiment.safetensors") == str(SHIPPED / "sentiment.safetensors")
    assert paths.resolve_model("./x.safetensors") == "./x.safetensors"  # a path stays a path


def test_an_unknown_name_lists_the_names():
    r = run_cli("generate", "-m", "lm-shakespear", "--length", "5")
    assert r.code == 2
    assert "no model named 'lm-shakespear'" in r.err and "lm-shakespeare" in r.err
    assert len(r.err.strip().splitlines()) == 1


def test_named_models_run_in_every_command():
    assert run_cli("generate", "-m", "lm-shakespeare", "--length", "5", "--seed", "1").code == 0
    assert run_cli("tag", "-m", "pos-en", stdin="The dog runs .\n").code == 0
    r = run_cli("translate", "-m", "translate-en-de", "--beam", "1", stdin="A dog .\n")
    assert r.code == 0 and r.out.strip(), r
    r = run_cli("eval", "sentiment", str(ROOT / "corpora" / "sentiment-sample.csv"))
    assert r.code == 0 and "accuracy" in r.out, r
    assert run_cli("inspect", "params", "sentiment").code == 0
