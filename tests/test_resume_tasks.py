"""Exact resume for the bucketed tasks (the LM's is in test_trainer.py): an interrupted and
resumed run ends with the same weights, bit for bit, as one that never stopped."""

from __future__ import annotations

import pytest
import torch
from conftest import ROOT
from test_trainer import InterruptAt

from seqtool import api
from seqtool.config import TrainConfig
from seqtool.training import Interrupted

TINY_BB = dict(hidden_size=7, embedding_dim=10, layers=1)
CASES = {
    "classifier": dict(
        files=[str(ROOT / "corpora" / "sentiment-sample.csv")],
        dev=[str(ROOT / "corpora" / "sentiment-sample.csv")],
        tokenizer="char",
    ),
    # Sampled teacher forcing draws random numbers every step: resume must restore them.
    "translator": dict(
        files=[str(ROOT / "corpora" / "translation-sample.tsv")],
        dev=str(ROOT / "corpora" / "translation-sample.tsv"),
        tokenizer="char",
        teacher_forcing=0.5,
    ),
    "tagger": dict(
        files=[str(ROOT / "corpora" / "pos-sample.conllu")],
        dev=str(ROOT / "corpora" / "pos-sample.conllu"),
    ),
}


@pytest.mark.parametrize("task", sorted(CASES))
def test_interrupted_then_resumed_matches_uninterrupted(tmp_path, task):
    cfg = TrainConfig(
        steps=12, batch_size=4, warmup=2, eval_every=5, log_every=1, seed=2, threads=1
    )
    kw = dict(CASES[task], backbone=dict(TINY_BB))
    full, part = tmp_path / "full.safetensors", tmp_path / "part.safetensors"
    api.train(task, full, cfg, **kw)
    with pytest.raises(Interrupted, match="step 7/12"):
        api.train(task, part, cfg, callbacks=[InterruptAt(7)], **kw)
    api.train(task, part, cfg, resume=True, **kw)
    a = api.load(tmp_path / "full.run" / "last.safetensors").state_dict()
    b = api.load(tmp_path / "part.run" / "last.safetensors").state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
