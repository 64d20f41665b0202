"""Calibrated classifier probabilities (issue 27): the metrics, the fit, storage in the
checkpoint, `seqtool calibrate`, calibration at the end of training, and blank input lines."""

from __future__ import annotations

import csv
import json
import math
import random
from pathlib import Path

import pytest
import torch
from conftest import ROOT, TINY, run_cli

from seqtool.metrics import calibration_metrics, reliability
from seqtool.recipes.calibration import Calibration, fit

SAMPLE = ROOT / "corpora" / "sentiment-sample.csv"


# -- metrics ---------------------------------------------------------------------------------


def test_calibration_metrics_on_a_hand_computed_case():
    probs = [[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.45, 0.55]]
    gold = [0, 1, 1, 0]
    m = calibration_metrics(probs, gold, bins=10)
    # bins: 0.9 -> [0.9,1.0) right; 0.8 -> [0.8,0.9) wrong; 0.7 right; 0.55 wrong
    ece = (abs(1 - 0.9) + abs(0 - 0.8) + abs(1 - 0.7) + abs(0 - 0.55)) / 4
    assert m["ece"] == pytest.approx(ece)
    nll = -(math.log(0.9) + math.log(0.2) + math.log(0.7) + math.log(0.45)) / 4
    assert m["nll"] == pytest.approx(nll)
    brier = (2 * 0.1**2 + 2 * 0.8**2 + 2 * 0.3**2 + 2 * 0.55**2) / 4
    assert m["brier"] == pytest.approx(brier)


def test_unknown_gold_labels_are_left_out_and_bins_count_rows():
    m = calibration_metrics([[0.6, 0.4], [0.99, 0.01]], [0, -1])
    assert m["ece"] == pytest.approx(0.4)
    bins = reliability([([0.6, 0.4], 0), ([0.95, 0.05], 1), ([0.97, 0.03], 0)])
    assert [(b["lo"], b["count"]) for b in bins] == [(0.6, 1), (0.9, 2)]
    assert bins[1]["accuracy"] == 0.5


# -- the fit ---------------------------------------------------------------------------------


def _overconfident(n: int, scale: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits `scale` times those of a calibrated model, and labels drawn from it."""
    g = torch.Generator().manual_seed(seed)
    true = torch.randn(n, generator=g) * 2  # calibrated logit of class 1
    labels = (torch.rand(n, generator=g) < true.sigmoid()).long()
    logits = torch.stack([torch.zeros(n), true * scale], 1)
    return logits, labels


def test_one_temperature_undoes_a_known_overconfidence():
    logits, labels = _overconfident(4000, 3.0)
    cal, warning = fit(logits, torch.full((4000,), 20), labels, "temperature")
    assert warning is None and cal.method == "temperature"
    assert math.exp(cal.a) == pytest.approx(3.0, rel=0.15)
    before = calibration_metrics(logits.softmax(-1).tolist(), labels.tolist())
    after = calibration_metrics(
        cal.apply(logits, torch.full((4000,), 20)).tolist(), labels.tolist()
    )
    assert after["nll"] < before["nll"] and after["ece"] < before["ece"] / 2


def test_length_temperature_follows_what_varies_with_length():
    # Short texts 4x overconfident, long ones calibrated: one T cannot fit both.
    short, ys = _overconfident(3000, 4.0, seed=1)
    long_, yl = _overconfident(3000, 1.0, seed=2)
    logits, labels = torch.cat([short, long_]), torch.cat([ys, yl])
    lengths = torch.cat([torch.full((3000,), 10), torch.full((3000,), 300)])
    cal, _ = fit(logits, lengths, labels, "length")
    t_short, t_long = cal.temperatures(torch.tensor([10, 300])).tolist()
    assert t_short == pytest.approx(4.0, rel=0.2) and t_long == pytest.approx(1.0, rel=0.2)
    one, _ = fit(logits, lengths, labels, "temperature")
    for sl in (slice(0, 3000), slice(3000, 6000)):  # better on each kind of text
        by_len = calibration_metrics(
            cal.apply(logits[sl], lengths[sl]).tolist(), labels[sl].tolist()
        )
        by_one = calibration_metrics(
            one.apply(logits[sl], lengths[sl]).tolist(), labels[sl].tolist()
        )
        assert by_len["ece"] < by_one["ece"]


def test_too_few_texts_or_one_class_keep_temperature_one():
    logits, labels = _overconfident(49, 3.0)
    cal, warning = fit(logits, torch.full((49,), 5), labels)
    assert cal.method == "none" and "too few" in warning
    cal, warning = fit(logits[:0].repeat(1, 1), torch.ones(0), labels[:0])
    assert cal.method == "none"
    cal, warning = fit(*_overconfident(200, 2.0)[:1], torch.full((200,), 5),
                       torch.zeros(200, dtype=torch.long))  # fmt: skip
    assert cal.method == "none" and "one class" in warning
    # temperature 1 means the plain softmax
    x = torch.randn(5, 2)
    assert torch.allclose(cal.apply(x, torch.ones(5)), x.softmax(-1))


def test_calibration_round_trips_through_a_dict():
    cal = Calibration("length", 1.5, -0.25, 3366)
    assert Calibration.from_dict(cal.to_dict()) == cal
    assert Calibration.from_dict(None) == Calibration()


# -- the CLI ---------------------------------------------------------------------------------


def _labelled(path: Path, n: int, seed: int = 0) -> Path:
    """n rows of obvious sentiment words, 10 % of labels flipped (so no model is certain)."""
    rng = random.Random(seed)
    pos, neg = ["good", "great", "fine", "lovely", "superb"], ["bad", "awful", "dull", "poor"]
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i in range(n):
            label = "positive" if i % 2 else "negative"
            words = rng.choices(pos if label == "positive" else neg, k=rng.randint(1, 6))
            if rng.random() < 0.1:
                label = "negative" if label == "positive" else "positive"
            w.writerow([" ".join(words), label])
    return path


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny classifier trained with a 120-row dev set: calibrated when training ends."""
    d = tmp_path_factory.mktemp("cal")
    train, dev = _labelled(d / "train.csv", 300), _labelled(d / "dev.csv", 120, seed=1)
    out = d / "clf.safetensors"
    r = run_cli("train", "classifier", train, "--dev", dev, "-o", out, *TINY,
                "--steps", "60", "--batch-size", "16", "--lr", "0.02", "--tokenizer", "char")  # fmt: skip
    assert r.code == 0, r
    assert "calibrated on 120 dev texts" in r.err
    return out, dev


def test_training_stores_the_calibration_fitted_on_dev(calibrated):
    from seqtool import checkpoint

    out, _ = calibrated
    cal = checkpoint.read_header(out).json("calibration")
    assert cal["method"] == "length" and cal["texts"] == 120


def test_calibrate_writes_a_copy_with_the_same_weights(calibrated, tmp_path):
    from safetensors.torch import load_file

    from seqtool import checkpoint

    out, dev = calibrated
    before = out.read_bytes()
    copy = tmp_path / "copy.safetensors"
    r = run_cli("calibrate", out, dev, "--method", "temperature", "-o", copy, "--format", "json")
    assert r.code == 0, r
    assert out.read_bytes() == before  # -o leaves the model alone
    res = json.loads(r.out)
    assert res["calibration"]["method"] == "temperature" and res["sets"][0]["examples"] == 120
    # a refit on the data training fitted on finds the same optimum
    again = json.loads(run_cli("calibrate", out, dev, "-o", copy, "--format", "json").out)
    assert again["sets"][0]["nll_after"] == pytest.approx(again["sets"][0]["nll_before"], abs=1e-3)
    r = run_cli("calibrate", out, dev, "--method", "temperature", "-o", copy)
    assert checkpoint.read_header(copy).json("calibration")["method"] == "temperature"
    a, b = load_file(str(out)), load_file(str(copy))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # labels never change, scores follow the stored temperature
    lines = "great fine\nawful dull bad\n"
    ra, rb = (
        run_cli("classify", "-m", out, stdin=lines),
        run_cli("classify", "-m", copy, stdin=lines),
    )
    assert [x.split("\t")[0] for x in ra.out.split("\n")] == [
        x.split("\t")[0] for x in rb.out.split("\n")
    ]


def test_eval_reports_calibration(calibrated):
    out, dev = calibrated
    m = json.loads(run_cli("eval", out, dev, "--format", "json").out)
    assert {"ece", "nll", "brier"} <= set(m) and 0 <= m["ece"] <= 1 and m["nll"] > 0


def test_calibrate_too_little_dev_warns_and_keeps_temperature_one(tiny_clf, tmp_path):
    from seqtool import checkpoint

    copy = tmp_path / "c.safetensors"
    r = run_cli("calibrate", tiny_clf, SAMPLE, "-o", copy)
    assert r.code == 0, r
    assert "too few to fit a temperature" in r.err
    assert checkpoint.read_header(copy).json("calibration")["method"] == "none"


def test_calibrate_a_non_classifier_names_its_task(tiny_lm):
    r = run_cli("calibrate", tiny_lm, SAMPLE)
    assert r.code == 2 and "is an lm checkpoint" in r.err and "classifier" in r.err


def test_calibrate_checks_its_options(tiny_clf):
    r = run_cli("calibrate", tiny_clf, SAMPLE, "--method", "isotonic")
    assert r.code == 2 and "--method must be one of length, temperature" in r.err


def test_an_older_checkpoint_without_calibration_loads_at_temperature_one(tiny_clf, tmp_path):
    """Checkpoints saved before calibration existed carry no `calibration` key."""
    from safetensors.torch import load_file, save_file

    from seqtool import api, checkpoint

    header = checkpoint.read_header(tiny_clf)
    meta = {k: v for k, v in header.metadata.items() if k != "calibration"}
    old = tmp_path / "old.safetensors"
    save_file(load_file(str(tiny_clf)), str(old), metadata=meta)
    model = api.load(old)
    assert model.calibration == Calibration()
    ids = model.encode(["great", "awful"])
    logits, lengths = model.logits_ids(ids)
    assert torch.allclose(model.predict_ids(ids), logits.softmax(-1))


# -- blank in, blank out ---------------------------------------------------------------------


def test_blank_lines_get_blank_output_in_every_format(tiny_clf, tmp_path):
    r = run_cli("classify", "-m", tiny_clf, stdin="great film\n\n   \nawful\n")
    assert r.code == 0, r
    lines = r.out.split("\n")
    assert lines[1] == "" and lines[2] == "" and "\t" in lines[0] and "\t" in lines[3]
    assert r.err.count("2 blank texts left unlabelled") == 1
    src = tmp_path / "in.csv"
    src.write_text('text,id\ngreat,1\n"",2\nawful,3\n')
    r = run_cli("classify", "-m", tiny_clf, src)
    rows = list(csv.reader(r.out.splitlines()))
    assert rows[2] == ["", "2", "", ""] and rows[1][2] and rows[3][2]
    r = run_cli("classify", "-m", tiny_clf, src, "--format", "jsonl")
    objs = [json.loads(x) for x in r.out.splitlines()]
    assert objs[1]["label"] is None and objs[1]["score"] is None and objs[1]["probs"] is None
    assert objs[0]["label"] in ("positive", "negative")
