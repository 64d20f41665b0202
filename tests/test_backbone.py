"""The shared backbone: shapes, masking, state in/out, step mode, the inference stepper."""

from __future__ import annotations

import itertools

import pytest
import torch

from seqtool.backbone import Backbone, Recurrent
from seqtool.config import BackboneConfig
from seqtool.errors import ConfigError

CELLS = ["rnn", "lstm", "gru"]


@pytest.mark.parametrize("cell,bi", list(itertools.product(CELLS, [False, True])))
def test_shapes_every_cell_and_direction(cell, bi):
    cfg = BackboneConfig(
        vocab_size=20, embedding_dim=10, hidden_size=7, layers=2, cell=cell, bidirectional=bi
    )
    bb = Backbone(cfg)
    ids = torch.randint(4, 20, (3, 5))
    out, state = bb(ids)
    d = 2 if bi else 1
    assert out.shape == (3, 5, 7 * d)
    assert bb.output_size == 7 * d
    assert len(state) == (2 if cell == "lstm" else 1)
    assert all(s.shape == (2 * d, 3, 7) for s in state)


@pytest.mark.parametrize("cell", CELLS)
def test_padding_never_leaks_into_either_direction(cell):
    torch.manual_seed(0)
    rnn = Recurrent(10, 7, layers=2, cell=cell, bidirectional=True).eval()
    x = torch.randn(1, 4, 10)
    alone, st_alone = rnn(x, torch.tensor([4]))
    padded = torch.cat([x, torch.randn(1, 3, 10) * 50], dim=1)  # garbage after the end
    batch = torch.cat([padded, torch.randn(1, 7, 10)])
    out, st = rnn(batch, torch.tensor([4, 7]))
    assert torch.allclose(out[0, :4], alone[0], atol=1e-6)
    assert torch.all(out[0, 4:] == 0)
    assert torch.allclose(st[0][:, 0], st_alone[0][:, 0], atol=1e-6)


@pytest.mark.parametrize("cell", CELLS)
def test_state_carries_across_chunks(cell):
    torch.manual_seed(0)
    rnn = Recurrent(10, 7, layers=2, cell=cell).eval()
    x = torch.randn(2, 9, 10)
    full, _ = rnn(x)
    a, st = rnn(x[:, :4])
    b, _ = rnn(x[:, 4:], state=st)
    assert torch.allclose(torch.cat([a, b], 1), full, atol=1e-6)


@pytest.mark.parametrize("cell", CELLS)
def test_step_mode_and_stepper_match_full_sequence(cell):
    torch.manual_seed(0)
    cfg = BackboneConfig(vocab_size=15, embedding_dim=10, hidden_size=7, layers=3, cell=cell)
    bb = Backbone(cfg).eval()
    ids = torch.randint(0, 15, (2, 6))
    full, final = bb(ids)
    # trainable step mode through the fused module
    st, outs = None, []
    for t in range(6):
        o, st = bb.rnn.step(bb.embedding(ids[:, t]), st)
        outs.append(o)
    assert torch.allclose(torch.stack(outs, 1), full, atol=1e-6)
    # inference stepper (lookup table for layer 0)
    stepper = bb.stepper()
    st, outs = stepper.initial_state(2), []
    for t in range(6):
        o, st = stepper.step(ids[:, t], st)
        outs.append(o)
    assert torch.allclose(torch.stack(outs, 1), full, atol=1e-5)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(st, final, strict=True))


def test_stepper_refuses_bidirectional():
    with pytest.raises(ValueError):
        Recurrent(4, 3, bidirectional=True).stepper()


def test_dropout_between_layers_is_active_only_in_training():
    torch.manual_seed(0)
    rnn = Recurrent(5, 8, layers=2, cell="lstm", dropout=0.5)
    x = torch.randn(2, 4, 5)
    rnn.train()
    assert not torch.allclose(rnn(x)[0], rnn(x)[0])
    rnn.eval()
    assert torch.allclose(rnn(x)[0], rnn(x)[0])


def test_config_rejects_bad_values_and_unknown_keys():
    with pytest.raises(ConfigError):
        BackboneConfig(vocab_size=5, cell="transformer")
    with pytest.raises(ConfigError):
        BackboneConfig(vocab_size=5, dropout=1.5)
    with pytest.raises(ConfigError):
        BackboneConfig.from_dict({"vocab_size": 5, "hiddn": 3})
    cfg = BackboneConfig(vocab_size=5, hidden_size=3)
    assert BackboneConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("cell,bi", list(itertools.product(CELLS, [False, True])))
def test_per_length_path_equals_packing(cell, bi):
    torch.manual_seed(0)
    rnn = Recurrent(6, 5, layers=2, cell=cell, bidirectional=bi).eval()
    x = torch.randn(5, 8, 6)
    lengths = torch.tensor([8, 3, 8, 5, 3])  # 3 distinct lengths: one dense call each
    state = rnn.initial_state(5)
    state = tuple(torch.randn_like(s) for s in state)
    with torch.no_grad():
        dense, st_dense = rnn(x, lengths, state)
        packed, st_packed = rnn.forward_packed(x, lengths, state)
    assert torch.allclose(dense, packed, atol=1e-6)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(st_dense, st_packed, strict=True))


def test_weight_dropout_masks_recurrence_in_training_only():
    from seqtool.backbone import Recurrent

    torch.manual_seed(0)
    r = Recurrent(6, 8, layers=2, cell="lstm", bidirectional=True, weight_dropout=0.5)
    plain = Recurrent(6, 8, layers=2, cell="lstm", bidirectional=True)
    plain.load_state_dict(r.state_dict())
    x = torch.randn(4, 7, 6)
    lengths = torch.tensor([7, 7, 5, 3])
    r.eval(), plain.eval()
    assert torch.equal(r(x, lengths)[0], plain(x, lengths)[0])  # inference: no dropout
    r.train(), plain.train()
    torch.manual_seed(1)
    out, _ = r(x, lengths)
    assert not torch.allclose(out, plain(x, lengths)[0])
    # One mask per batch: the per-length path and the packed path agree under the same draw.
    torch.manual_seed(1)
    packed, _ = r.forward_packed(x, lengths)
    assert torch.allclose(out, packed, atol=1e-6)
    out.sum().backward()
    assert r.rnn.weight_hh_l0.grad.abs().sum() > 0 and r.rnn.weight_ih_l0.grad.abs().sum() > 0
    # The module's own weights are untouched by the masking.
    assert torch.equal(r.rnn.weight_hh_l0, plain.rnn.weight_hh_l0)
