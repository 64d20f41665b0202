"""`train classifier --init-from CLASSIFIER`: fine-tune a classifier checkpoint (the shipped
sentiment model, say) on new data: it starts from every weight, tokenizer and option."""

from __future__ import annotations

import torch
from conftest import ROOT, run_cli

SAMPLE = ROOT / "corpora" / "sentiment-sample.csv"


def test_fine_tuning_starts_from_every_weight_of_the_classifier(tiny_clf, tmp_path):
    from seqtool import api

    out = tmp_path / "ft.safetensors"
    r = run_cli("train", "classifier", SAMPLE, "--init-from", tiny_clf, "-o", out,
                "--steps", "1", "--lr", "1e-12", "--dev-fraction", "0", "--threads", "1")  # fmt: skip
    assert r.code == 0, r
    base, tuned = api.load(tiny_clf), api.load(out)
    assert tuned.config == base.config and tuned.labels == base.labels
    assert tuned.tokenizer.to_bytes() == base.tokenizer.to_bytes()
    a, b = base.state_dict(), tuned.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)  # one step at lr 1e-12


def test_fine_tuning_needs_the_models_labels(tiny_clf, tmp_path):
    other = tmp_path / "other.csv"
    other.write_text("text,label\ngreat,yes\nawful,no\n" * 10)
    r = run_cli("train", "classifier", other, "--init-from", tiny_clf,
                "-o", tmp_path / "x.safetensors", "--steps", "1")  # fmt: skip
    assert r.code == 2 and "are not the model's" in r.err and "'no', 'yes'" in r.err


def test_a_classifier_start_comes_alone(tiny_clf, tiny_lm, tmp_path):
    r = run_cli("train", "classifier", SAMPLE, "--init-from", tiny_clf, "--init-from", tiny_lm,
                "-o", tmp_path / "x.safetensors", "--steps", "1")  # fmt: skip
    assert r.code == 2 and "comes alone" in r.err
