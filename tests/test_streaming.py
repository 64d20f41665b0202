"""Live feeds (issue 16, item 7): `tail -f log | seqtool classify` answers each line as it
comes, while files and fast pipes are processed in the same full batches as before."""

from __future__ import annotations

import os
import random
import select
import subprocess
import sys
import threading
import time

import pytest
from conftest import SEQTOOL, checkout_env

from seqtool.data import stream
from seqtool.data.conllu import Sentence
from seqtool.data.tagging import chunked

# A hang must fail the test, never the suite: every wait below is bounded. The bounds are
# generous (a shared, loaded machine); what is tested is the order of events (an answer
# arrives while stdin is still open), not how fast it comes.
START_S = 120  # the first answer includes starting Python and loading torch on a busy machine
ANSWER_S = 60  # a later line, once the model is loaded


def _pipe_lines() -> tuple[stream.Lines, int]:
    r, w = os.pipe()
    return stream.Lines(os.fdopen(r, "rb", buffering=0), "<pipe>", close=True), w


def test_a_stalled_pipe_flushes_the_partial_batch_before_blocking():
    lines, w = _pipe_lines()
    assert lines.live
    got: list[list[bytes]] = []
    seen = threading.Event()

    def writer() -> None:
        os.write(w, b"a\nb\n")
        seen.wait(ANSWER_S)  # without the flush on stall this times out, and c joins a, b
        os.write(w, b"c\n")
        os.close(w)

    def process(batch: list[bytes]) -> None:
        got.append(batch)
        seen.set()

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    assert stream.batched(lines, 100, process, lines) == 3
    t.join(ANSWER_S)
    assert got == [[b"a\n", b"b\n"], [b"c\n"]]
    assert lines.on_stall is None  # the hook does not outlive the loop
    lines.close()


def test_a_pipe_that_keeps_up_batches_like_a_file(tmp_path):
    data = b"".join(b"line %d\n" % i for i in range(10)) + b"last, no newline"
    f = tmp_path / "in.txt"
    f.write_bytes(data)
    expected = [[b"line %d\n" % i for i in range(j, j + 4)] for j in (0, 4)]
    expected.append([b"line 8\n", b"line 9\n", b"last, no newline"])
    for source in ("file", "pipe"):
        if source == "file":
            lines = stream.open_lines(str(f))
            assert not lines.live
        else:
            lines, w = _pipe_lines()
            os.write(w, data)  # all there before reading: no stall
            os.close(w)
        got: list[list[bytes]] = []
        stream.batched(lines, 4, got.append, lines)
        assert got == expected, source
        lines.close()


def test_lines_across_reads_and_peek(monkeypatch):
    monkeypatch.setattr(stream, "READ_BYTES", 3)  # lines cut across many reads
    lines, w = _pipe_lines()
    os.write(w, "héllo\n\nwörld\r\nend".encode())
    os.close(w)
    assert lines.peek() == "héllo\n".encode()
    assert list(lines) == ["héllo\n".encode(), b"\n", "wörld\r\n".encode(), b"end"]
    empty, w = _pipe_lines()
    os.close(w)
    assert empty.peek() == b"" and list(empty) == []


def test_batches_close_by_weight_as_the_tagger_chunks_did():
    rng = random.Random(0)
    sents = [Sentence(words=["w"] * rng.randint(0, 40)) for _ in range(300)]
    got: list[list[Sentence]] = []
    stream.batched(sents, 16, got.append, None, lambda s: len(s.words), 100)
    assert got == list(chunked(sents, 16, 100))


def _read_lines(proc: subprocess.Popen, n: int, timeout: float, buf: bytearray) -> list[str]:
    """n lines of the process's stdout, or fewer if they do not come within timeout."""
    fd = proc.stdout.fileno()
    end = time.monotonic() + timeout
    while buf.count(b"\n") < n and (left := end - time.monotonic()) > 0:
        if not select.select([fd], [], [], left)[0]:
            break
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            break
        buf += chunk
    lines: list[str] = []
    while len(lines) < n and b"\n" in buf:
        i = buf.index(b"\n")
        lines.append(buf[:i].decode())
        del buf[: i + 1]
    return lines


@pytest.mark.skipif(sys.platform == "win32", reason="select() on pipes")
@pytest.mark.parametrize(
    "args, first, second, answers",
    [
        (["classify"], "a wonderful film\n", "a dull mess\n", 1),
        # a table on stdin: the header line comes out with the first row's answer
        (["classify", "--text-column", "text"], "text\na wonderful film\n", "a dull mess\n", 2),
        (["tag"], "The cat sleeps .\n", "A dog runs .\n", 1),
        (["translate", "--beam", "2"], "A dog is running .\n", "Two men .\n", 1),
    ],
)
def test_a_live_feed_is_answered_line_by_line(args, first, second, answers):
    """`tail -f | seqtool CMD`: each line's result arrives while stdin stays open (before:
    nothing until 256 lines, or the end of input)."""
    proc = subprocess.Popen(
        [*SEQTOOL, *args, "--threads", "1"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=checkout_env(),
    )
    buf = bytearray()
    try:
        proc.stdin.write(first.encode())
        proc.stdin.flush()
        got = _read_lines(proc, answers, START_S, buf)
        assert len(got) == answers, (got, proc.poll())
        proc.stdin.write(second.encode())
        proc.stdin.flush()
        got2 = _read_lines(proc, 1, ANSWER_S, buf)  # stdin still open: no end of input yet
        assert len(got2) == 1 and proc.poll() is None, got2
        proc.stdin.close()
        assert proc.wait(ANSWER_S) == 0
        assert not buf and proc.stdout.read() == b""  # nothing more, nothing held back
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if args[0] == "classify" and answers == 2:
        assert got[0] == "text,label,score" and got[1].startswith("a wonderful film,")
    else:
        assert got[0] and got2[0]
