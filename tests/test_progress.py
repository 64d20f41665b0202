"""Progress of work with no count to show (`seqtool eval`): quiet when quick, plain lines on a
non-terminal stderr once it takes a while, and how long it took."""

from __future__ import annotations

import time

from seqtool.cli import _progress


def test_quick_work_prints_nothing(capsys):
    with _progress.ticking("evaluating m on d"):
        pass
    assert capsys.readouterr().err == ""


def test_slow_work_prints_elapsed_lines_and_the_total(capsys, monkeypatch):
    monkeypatch.setenv("SEQTOOL_PROGRESS_SECONDS", "0")  # as often as allowed (every 0.2 s)
    with _progress.ticking("evaluating m on d", delay=0.1):
        time.sleep(0.9)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) >= 3, lines
    assert all(line.startswith("evaluating m on d: elapsed 0:0") for line in lines[:-1]), lines
    assert lines[-1].startswith("evaluating m on d: done in ") and lines[-1].endswith(" s")


def test_interval_follows_the_training_variable(monkeypatch):
    monkeypatch.setenv("SEQTOOL_PROGRESS_SECONDS", "2.5")
    assert _progress._plain_every() == 2.5
    monkeypatch.setenv("SEQTOOL_PROGRESS_SECONDS", "soon")
    assert _progress._plain_every() == _progress.PLAIN_EVERY


def test_an_error_still_stops_the_ticker(capsys):
    try:
        with _progress.ticking("evaluating", delay=0.05):
            raise ValueError("bad row")
    except ValueError:
        pass
    assert not any(t.name == "seqtool-progress" for t in _progress.threading.enumerate())
