"""Checkpoints: exact round trip, no pickle, clear errors for foreign/corrupt/wrong files."""

from __future__ import annotations

import json
import struct

import pytest
import torch
from conftest import run_cli

from seqtool import api, checkpoint
from seqtool.errors import CheckpointError


def test_round_trip_gives_identical_outputs(tiny_lm, tmp_path):
    model = api.load(tiny_lm)
    x = torch.randint(4, model.config.backbone.vocab_size, (2, 12))
    a, _, _ = model(x)
    copy = tmp_path / "copy.safetensors"
    model.save(copy)
    b, _, _ = api.load(copy)(x)
    assert torch.equal(a, b)
    h = checkpoint.read_header(copy)
    assert h.task == "lm" and h.metadata["format_version"] == checkpoint.FORMAT_VERSION
    assert h.config["backbone"]["hidden_size"] == 7
    assert h.tokenizer_bytes()[0] == "char"
    assert h.metadata["seqtool_version"]


def test_fp16_storage_is_smaller_and_close(tiny_lm, tmp_path):
    model = api.load(tiny_lm)
    half = tmp_path / "half.safetensors"
    model.save(half, dtype="fp16")
    assert half.stat().st_size < tiny_lm.stat().st_size
    x = torch.randint(4, model.config.backbone.vocab_size, (1, 10))
    assert torch.allclose(model(x)[0], api.load(half)(x)[0], atol=2e-2)


def test_stored_train_config(tiny_lm):
    cfg = checkpoint.read_header(tiny_lm).json("train_config")
    assert cfg["steps"] == 30 and cfg["seq_len"] == 32


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "make,needle",
    [
        (lambda p: _write(p, b""), "too short"),
        (lambda p: _write(p, b"hello world, not a checkpoint"), "not a safetensors file"),
        (lambda p: _write(p, struct.pack("<Q", 2) + b"{}"), "not a seqtool checkpoint"),
    ],
)
def test_foreign_files_are_clear_errors(tmp_path, make, needle):
    p = make(tmp_path / "x.safetensors")
    with pytest.raises(CheckpointError, match=needle):
        api.load(p)


def test_plain_safetensors_file_is_not_a_seqtool_checkpoint(tmp_path):
    from safetensors.torch import save_file

    p = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(3)}, str(p))
    with pytest.raises(CheckpointError, match="not a seqtool checkpoint"):
        api.load(p)


def test_truncated_checkpoint(tiny_lm, tmp_path):
    data = tiny_lm.read_bytes()
    p = _write(tmp_path / "cut.safetensors", data[: len(data) - 100])
    with pytest.raises(CheckpointError, match="truncated"):
        api.load(p)
    r = run_cli("eval", p, "corpora/play-sample.txt")
    assert r.code == 2 and "truncated" in r.err and len(r.err.strip().splitlines()) == 1


def test_wrong_task_is_named(tiny_lm):
    header = checkpoint.read_header(tiny_lm)
    with pytest.raises(
        CheckpointError, match="is an lm checkpoint; `seqtool classify` needs a classifier"
    ):
        checkpoint.expect_task(header, "classifier", "classify")


def test_atomic_write_leaves_no_temp_files(tmp_path):
    target = tmp_path / "out.bin"
    checkpoint.atomic_write_bytes(target, b"abc")

    assert target.read_bytes() == b"abc"
    # a failed write keeps the old file and leaves no temp behind
    with pytest.raises(TypeError):
        checkpoint.atomic_write_bytes(target, 12345)  # type: ignore[arg-type]
    assert target.read_bytes() == b"abc"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_no_pickle_in_checkpoint(tiny_lm):
    data = tiny_lm.read_bytes()
    assert b"\x80\x04\x95" not in data[:4096]  # pickle protocol-4 frame header
    (n,) = struct.unpack("<Q", data[:8])
    json.loads(data[8 : 8 + n])  # the header is plain JSON
