"""Exact resume for every task: an interrupted and resumed run draws the same batches from
the step it stopped at, and ends with the same weights, bit for bit, as one that never
stopped. (The LM's losses and dev curve step for step are in test_trainer.py.)"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from conftest import ROOT
from test_trainer import InterruptAt

from seqtool import api
from seqtool.config import TrainConfig
from seqtool.training import Interrupted
from seqtool.training.callbacks import Callback

TINY_BB = dict(hidden_size=7, embedding_dim=10, layers=1)
C = ROOT / "corpora"
CASES = {
    "lm": dict(files=[str(C / "play-sample.txt")], dev_fraction=0.0),  # its dev: test_trainer
    "classifier": dict(
        files=[str(C / "sentiment-sample.csv")],
        dev=[str(C / "sentiment-sample.csv")],
        tokenizer="char",
    ),
    # Sampled teacher forcing draws random numbers every step: resume must restore them.
    "translator": dict(
        files=[str(C / "translation-sample.tsv")],
        dev=str(C / "translation-sample.tsv"),
        tokenizer="char",
        teacher_forcing=0.5,
    ),
    "tagger": dict(files=[str(C / "pos-sample.conllu")], dev=str(C / "pos-sample.conllu")),
    # Random windows of running text: the generator's state is the data position.
    "segmenter": dict(files=[str(C / "pos-sample.conllu")], dev=str(C / "pos-sample.conllu")),
}


class RecordBatches(Callback):
    """Every batch the trainer draws, from wherever the run (re)starts."""

    def __init__(self) -> None:
        self.batches: list[dict[str, Any]] = []

    def on_train_start(self, trainer: Any) -> None:
        source = trainer.train_data
        draw = source.next_batch

        def next_batch() -> dict[str, Any]:
            batch = draw()
            self.batches.append(
                {k: v.clone() if torch.is_tensor(v) else v for k, v in batch.items()}
            )
            return batch

        source.next_batch = next_batch


def _same_batch(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if a.keys() != b.keys():
        return False
    return all(torch.equal(a[k], b[k]) if torch.is_tensor(a[k]) else a[k] == b[k] for k in a)


@pytest.mark.parametrize("task", sorted(CASES))
def test_interrupted_then_resumed_matches_uninterrupted(tmp_path, task):
    cfg = TrainConfig(
        steps=12, batch_size=4, seq_len=16, warmup=2, eval_every=5, log_every=1, seed=2, threads=1
    )
    kw = dict(CASES[task], backbone=dict(TINY_BB))
    full, part = tmp_path / "full.safetensors", tmp_path / "part.safetensors"
    seen_full, seen_part = RecordBatches(), RecordBatches()
    api.train(task, full, cfg, callbacks=[seen_full], **kw)
    with pytest.raises(Interrupted, match="step 7/12"):
        api.train(task, part, cfg, callbacks=[InterruptAt(7)], **kw)
    api.train(task, part, cfg, resume=True, callbacks=[seen_part], **kw)
    # the resumed run draws batch 8 onwards, exactly as the uninterrupted one did
    assert len(seen_full.batches) == 12 and len(seen_part.batches) == 5
    for i, (a, b) in enumerate(zip(seen_full.batches[7:], seen_part.batches, strict=True)):
        assert _same_batch(a, b), f"batch {8 + i} differs after resume"
    assert not _same_batch(seen_full.batches[7], seen_full.batches[8])  # batches do differ
    a = api.load(tmp_path / "full.run" / "last.safetensors").state_dict()
    b = api.load(tmp_path / "part.run" / "last.safetensors").state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
