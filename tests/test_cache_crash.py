"""A cache build killed with SIGKILL at any point leaves nothing a later run trusts: the next
run builds the entry again and reads the right tokens (token-file and row caches)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import checkout_env

from seqtool import tokenizers
from seqtool.data import corpus, rows

# The child builds a cache; "mid-way" it stalls after writing part of the data (the parent then
# kills it, so the kill always lands mid-way however loaded the machine); "before-meta" it
# kills itself just before the metadata is written.
CHILD = """
import os, signal, sys, time
from seqtool import tokenizers
from seqtool.data import corpus, rows

mode, what, path = sys.argv[1:4]
corpus.CHUNK = 1 << 18
if mode == "before-meta":
    def die(*_):
        os.kill(os.getpid(), signal.SIGKILL)
    corpus.write_bytes = rows.write_bytes = die
def stall(k):
    if mode == "mid-way" and k == 4:
        time.sleep(600)
if what == "tokens":
    passes = []
    plain = corpus.iter_text
    def iter_text(*a, **k):
        passes.append(1)
        for i, chunk in enumerate(plain(*a, **k)):
            if len(passes) == 2:  # the tokenizing pass (the first one hashes)
                stall(i)
            yield chunk
    corpus.iter_text = iter_text
    h, _, chars = corpus.corpus_hash([path], "strict")
    tok = tokenizers.CharTokenizer(set(open(path, encoding="utf-8").read()))
    corpus.tokenize_to_cache([path], tok, h, chars)
else:
    def build(w):
        for i in range(200):
            stall(i // 40)
            w.add([[i % 7] * (i % 5), [1, 2, 3]] * 500)
    rows.cached("crash", 10, build)
print("finished")
"""


def _text() -> str:
    line = "To be, or not to be: ünïcödé 😀 that is the question.\n"
    return line * (4_000_000 // len(line))  # ~4 MB: 16 chunks of 256 KiB


def _run_child(tmp_path: Path, mode: str, what: str, corpus_path: Path | None = None) -> Path:
    """Run the child until it is killed; the cache directory it wrote to."""
    cache = tmp_path / "cache"
    env = checkout_env(SEQTOOL_CACHE=str(cache))
    args = [sys.executable, "-c", CHILD, mode, what, str(corpus_path or "")]
    child = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    d = cache / what
    try:
        if mode == "mid-way":  # SIGKILL once a temp file holds some of the data
            deadline = time.monotonic() + 300
            while not any(p.stat().st_size > 0 for p in d.glob(".*.tmp") if p.exists()):
                assert child.poll() is None, child.communicate()
                assert time.monotonic() < deadline, "no temp file appeared"
                time.sleep(0.002)
            child.send_signal(signal.SIGKILL)
        _, err = child.communicate(timeout=300)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL, err.decode()  # killed, not finished
    assert not list(d.glob("*.json")), "a killed build left metadata behind"
    return cache


@pytest.mark.parametrize("mode", ["mid-way", "before-meta"])
def test_killed_token_cache_build_is_rebuilt(tmp_path, monkeypatch, mode):
    text = _text()
    p = tmp_path / "big.txt"
    p.write_text(text, encoding="utf-8")
    cache = _run_child(tmp_path, mode, "tokens", p)
    if mode == "before-meta":  # the token file was renamed in whole, but is not trusted alone
        assert [b.name for b in (cache / "tokens").glob("*.bin")]
    monkeypatch.setenv("SEQTOOL_CACHE", str(cache))
    h, _, chars = corpus.corpus_hash([str(p)], "strict")
    tok = tokenizers.CharTokenizer(set(text))
    tf = corpus.tokenize_to_cache([str(p)], tok, h, chars)
    meta = json.loads(tf.path.with_suffix(".json").read_text())
    assert meta["tokens"] == len(text) and meta["hash"] == h
    assert tf.read().tolist() == tok.encode(text)


@pytest.mark.parametrize("mode", ["mid-way", "before-meta"])
def test_killed_row_cache_build_is_rebuilt(tmp_path, monkeypatch, mode):
    cache = _run_child(tmp_path, mode, "rows")
    monkeypatch.setenv("SEQTOOL_CACHE", str(cache))
    built = []

    def build(w):
        built.append(1)
        for i in range(200):
            w.add([[i % 7] * (i % 5), [1, 2, 3]] * 500)

    store = rows.cached("crash", 10, build)
    assert built == [1]  # not taken from the killed run
    want = [r for i in range(200) for r in ([i % 7] * (i % 5), [1, 2, 3]) * 500]
    assert [store.row(i).tolist() for i in range(len(store))] == want


def test_truncated_token_cache_metadata_is_rebuilt(tmp_path, monkeypatch):
    """A half-written metadata file (what an in-place write could leave) is rebuilt, not an
    error and not trusted."""
    monkeypatch.setenv("SEQTOOL_CACHE", str(tmp_path / "cache"))
    p = tmp_path / "c.txt"
    text = "abc def\n" * 50
    p.write_text(text)
    h, _, chars = corpus.corpus_hash([str(p)], "strict")
    tok = tokenizers.CharTokenizer(set(text))
    tf = corpus.tokenize_to_cache([str(p)], tok, h, chars)
    meta_path = tf.path.with_suffix(".json")
    meta_path.write_text(meta_path.read_text()[:10])
    os.truncate(tf.path, 6)
    again = corpus.tokenize_to_cache([str(p)], tok, h, chars)
    assert again.read().tolist() == tok.encode(text)
    assert json.loads(meta_path.read_text())["tokens"] == len(text)
