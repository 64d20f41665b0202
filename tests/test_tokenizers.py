"""Tokenizers: one protocol, exact round trips, bytes, and the tokenize CLI as a filter."""

from __future__ import annotations

import pytest
from conftest import SAMPLE, run_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from seqtool import tokenizers
from seqtool.errors import SeqtoolError
from seqtool.tokenizers import CharTokenizer

TEXT = SAMPLE.read_text()


@pytest.fixture(scope="module")
def bpe():
    return tokenizers.train(TEXT.splitlines(), "bpe", 400)


@pytest.fixture(scope="module")
def unigram():
    return tokenizers.train(TEXT.splitlines(), "unigram", 400)


def test_special_ids_agree_across_kinds(bpe):
    char = tokenizers.train([TEXT], "char")
    for t in (char, bpe):
        assert (t.pad_id, t.unk_id, t.bos_id, t.eos_id) == (0, 1, 2, 3)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=sorted(set(TEXT))))
def test_char_round_trip(s):
    tok = CharTokenizer(set(TEXT))
    assert tok.decode(tok.encode(s)) == s


@settings(max_examples=100, deadline=None)
@given(st.text())
def test_spm_round_trip_any_text(bpe, unigram, s):
    # Identity normalization + byte fallback: every string survives, unseen scripts included.
    for tok in (bpe, unigram):
        assert tok.decode(tok.encode(s)) == s


def test_encode_list_and_bytes(bpe):
    lines = ["the duke", "a brother is a brother"]
    assert bpe.encode(lines) == [bpe.encode(x) for x in lines]
    assert bpe.decode(bpe.encode(lines)) == lines
    again = tokenizers.from_bytes("spm", bpe.to_bytes())
    assert again.encode(lines) == bpe.encode(lines)
    char = tokenizers.train([TEXT], "char")
    assert tokenizers.from_bytes("char", char.to_bytes()).chars == char.chars


def test_char_unknown_reports_positions():
    tok = CharTokenizer("abc")
    assert tok.unknown("abxc") == [(2, "x")]
    assert tok.encode("x") == [tok.unk_id]


def test_corrupt_tokenizer_bytes():
    with pytest.raises(SeqtoolError):
        tokenizers.from_bytes("char", b"\x00garbage")
    with pytest.raises(SeqtoolError):
        tokenizers.from_bytes("spm", b"\x00garbage")


@pytest.mark.parametrize("kind", ["bpe", "char"])
def test_cli_train_encode_decode_pipeline(tmp_path, kind):
    model = tmp_path / "tok.model"
    r = run_cli(
        "tokenize", "train", SAMPLE, "--model-type", kind, "--vocab-size", "400", "-o", model
    )
    assert r.code == 0, r
    assert model.is_file()
    text = "Who goes there?\n  Stand,\tand unfold é!\n\n"
    for fmt in ("pieces", "ids"):
        enc = run_cli("tokenize", "encode", "--model", model, "--format", fmt, stdin=text)
        assert enc.code == 0, enc
        assert len(enc.out.splitlines()) == len(text.splitlines())
        dec = run_cli("tokenize", "decode", "--model", model, "--format", fmt, stdin=enc.out)
        assert dec.code == 0, dec
        if kind == "bpe":  # chars outside the vocabulary become <unk> for char tokenizers
            assert dec.out == text


def test_cli_decode_bad_id_names_line_and_column(tmp_path):
    model = tmp_path / "tok.model"
    assert run_cli("tokenize", "train", SAMPLE, "--model-type", "char", "-o", model).code == 0
    r = run_cli("tokenize", "decode", "--model", model, "--format", "ids", stdin="5 6\n7 x9\n")
    assert r.code == 2
    assert "<stdin>:2:3" in r.err


def test_cli_tokenizer_file_missing(tmp_path):
    r = run_cli("tokenize", "encode", "--model", tmp_path / "none.model", stdin="a\n")
    assert r.code == 2 and "no such tokenizer file" in r.err
