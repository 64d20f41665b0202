"""Fuzzed input: arbitrary bytes given to every reader either parse or raise SeqtoolError
naming the file; nothing else escapes (no UnicodeDecodeError, IndexError, KeyError...)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from seqtool import checkpoint, tokenizers
from seqtool.data import conllu, corpus, parallel, tabular, text
from seqtool.errors import SeqtoolError

# Bytes with the shapes readers care about: separators, quotes, ids, bad UTF-8.
TOKENS = [
    b"a",
    b"text",
    b"label",
    b"pos",
    b",",
    b"\t",
    b'"',
    b"\n",
    b"\r\n",
    b" ",
    b"\xff",
    b"\xc3",
    b"\xc3\xa9",
    b"1",
    b"2-3",
    b"4.1",
    b"_",
    b"NOUN",
    b"{",
    b"}",
    b":",
    b"#",
]
DATA = st.one_of(
    st.binary(max_size=300), st.lists(st.sampled_from(TOKENS), max_size=120).map(b"".join)
)
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
_n = itertools.count()


def _file(d: Path, data: bytes, suffix: str) -> Path:
    p = d / f"f{next(_n)}{suffix}"
    p.write_bytes(data)
    return p


def _check(fn, path: Path, *also: Path) -> None:
    try:
        fn(str(path))
    except SeqtoolError as e:
        assert any(p.name in str(e) for p in (path, *also)), f"error without location: {e}"


@SETTINGS
@given(data=DATA)
def test_text_readers(tmp_path, data):
    p = _file(tmp_path, data, ".txt")
    _check(text.read_text, p)
    _check(lambda f: list(text.iter_lines(f)), p)
    _check(lambda f: corpus.corpus_hash([f], "strict"), p)


@SETTINGS
@given(data=DATA)
def test_conllu_reader(tmp_path, data):
    p = _file(tmp_path, data, ".conllu")
    _check(lambda f: list(conllu.read_conllu_file(f)), p)


@SETTINGS
@given(data=DATA)
def test_parallel_readers(tmp_path, data):
    p = _file(tmp_path, data, ".tsv")
    _check(parallel.read_tsv, p)
    q = _file(tmp_path, data[: len(data) // 2], ".de")
    _check(lambda f: parallel.read_parallel(f, str(q)), p, q)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=DATA, suffix=st.sampled_from([".csv", ".tsv", ".jsonl"]))
def test_tabular_reader(tmp_path, data, suffix):
    p = _file(tmp_path, data, suffix)
    _check(tabular.read_labelled, p)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=DATA, suffix=st.sampled_from([".csv", ".tsv", ".jsonl"]))
def test_tabular_stream(tmp_path, data, suffix):
    p = _file(tmp_path, data, suffix)

    def stream(f: str) -> None:
        raw, name = tabular.open_input(f)
        with raw:
            list(tabular.iter_records(raw, name, suffix.lstrip(".")))

    _check(stream, p)


@SETTINGS
@given(data=DATA)
def test_tokenizer_and_checkpoint_files(tmp_path, data):
    p = _file(tmp_path, data, ".model")
    _check(tokenizers.load, p)
    _check(checkpoint.read_header, p)


@pytest.fixture(scope="module")
def toks():
    sample = ["the duke rides at dawn", "a brother is a brother"] * 20
    return [tokenizers.train(sample, "char"), tokenizers.train(sample, "bpe", 300)]


# derandomize: the same cases every run (CI cannot fail by chance); the examples always run.
@settings(
    max_examples=100, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(s=st.text())
@example(s="a\u2581b")
@example(s="\u2581\u2581 \u2581 x  \u2581")
@example(s="  \t runs  of  spaces\t ")
def test_tokenizers_encode_any_text(toks, s):
    for tok in toks:
        ids = tok.encode(s)
        assert all(0 <= i < tok.vocab_size for i in ids)
        text = tok.decode(ids)
        if tok.kind == "spm":  # exact for any text (a char vocabulary has <unk>)
            assert text == s


def test_every_property_test_is_derandomized():
    """conftest's profile reaches each @given test here and in the other modules, even
    those with @settings of their own (they inherit the profile)."""
    import importlib

    found = 0
    for name in ("test_fuzz", "test_tokenizers", "test_corpus"):
        module = importlib.import_module(name)
        for fn in vars(module).values():
            s = getattr(fn, "_hypothesis_internal_use_settings", None)
            if s is not None and getattr(fn, "is_hypothesis_test", False):
                found += 1
                assert s.derandomize and s.database is None, f"{name}.{fn.__name__}"
    assert found >= 10, found
