"""Streaming corpora: chunking on character boundaries, error locations, the token cache."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqtool import tokenizers
from seqtool.data import corpus
from seqtool.errors import DataError


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(corpus, "CHUNK", 7)  # forces many chunk boundaries


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(), min_size=1, max_size=3))
def test_chunks_reassemble_any_text(tmp_path_factory, texts):
    d = tmp_path_factory.mktemp("c")
    files = []
    for i, t in enumerate(texts):
        p = d / f"{i}.txt"
        p.write_text(t, encoding="utf-8")
        files.append(str(p))
    old = corpus.CHUNK
    corpus.CHUNK = 5
    try:
        got = "".join(text for _, text in corpus.iter_text(files))
    finally:
        corpus.CHUNK = old
    want = "".join(
        t if t.endswith("\n") or i == len(texts) - 1 else t + "\n" for i, t in enumerate(texts)
    )
    assert got == want


def test_error_location_across_chunks(tmp_path, small_chunks):
    p = tmp_path / "bad.txt"
    p.write_bytes(
        "héllo\nwörld and more text\nthird \xff line\n".encode("latin-1")
        .replace(b"\xe9", "é".encode())
        .replace(b"\xf6", "ö".encode())
    )
    with pytest.raises(DataError) as e:
        list(corpus.iter_text([str(p)]))
    raw = p.read_bytes()
    off = raw.index(b"\xff")
    assert str(e.value) == (
        f"{p}:3:7: invalid UTF-8 at byte offset {off} (use --encoding-errors replace to substitute)"
    )


def test_token_cache_is_reused_and_exact(tmp_path, monkeypatch, small_chunks):
    monkeypatch.setenv("SEQTOOL_CACHE", str(tmp_path / "cache"))
    p = tmp_path / "c.txt"
    text = "To be, or not to be: ünïcödé 😀 included.\n" * 20
    p.write_text(text)
    h, counts, chars = corpus.corpus_hash([str(p)], "strict")
    assert chars == len(text)
    tok = tokenizers.CharTokenizer(set(text))
    a = corpus.tokenize_to_cache([str(p)], tok, h, chars)
    assert a.tensor().tolist() == tok.encode(text)
    stamp = a.path.stat().st_mtime_ns
    b = corpus.tokenize_to_cache([str(p)], tok, h, chars)
    assert b.path == a.path and b.path.stat().st_mtime_ns == stamp  # reused, not rewritten
    # another tokenizer over the same text gets its own cache entry
    spm = tokenizers.train(text.splitlines(), "bpe", 300, dummy_prefix=False)
    c = corpus.tokenize_to_cache([str(p)], spm, h, chars)
    assert c.path != a.path
    assert spm.decode(c.tensor().tolist()) == text


def test_window_sampler_reads_the_same_windows_from_disk_and_memory(tmp_path, monkeypatch):
    import torch

    from seqtool.data.lm import WindowSampler

    monkeypatch.setenv("SEQTOOL_CACHE", str(tmp_path / "cache"))
    p = tmp_path / "c.txt"
    p.write_text("abcdefghij klmnop\n" * 50)
    h, counts, chars = corpus.corpus_hash([str(p)], "strict")
    tok = tokenizers.CharTokenizer(set(p.read_text()))
    tf = corpus.tokenize_to_cache([str(p)], tok, h, chars).span(10, 800)
    assert len(tf) == 790
    disk = WindowSampler(tf, 4, 16, seed=3)
    mem = WindowSampler(tf.tensor(), 4, 16, seed=3)
    for _ in range(5):
        a, b = disk.next_batch(), mem.next_batch()
        assert torch.equal(a["x"], b["x"]) and torch.equal(a["y"], b["y"])
