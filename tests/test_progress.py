"""Progress reporting: a live bar on a terminal, one summary line under DVC or for long runs."""

from __future__ import annotations

import io
import time

import pytest

from corpusprov import progress as progress_module
from corpusprov.progress import Progress


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_live_bar_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([0.0, 1.5, 1.8, 2.5, 3.0])
    monkeypatch.setattr(time, "monotonic", lambda: next(clock))
    stream = FakeTerminal()
    bar = Progress("merge", 4 * 1024 * 1024, stream)
    bar.advance(1024 * 1024, 1000)   # t=1.5: drawn
    bar.advance(1024 * 1024, 1000)   # t=1.8: too soon to redraw
    bar.advance(1024 * 1024, 1000)   # t=2.5: drawn
    bar.finish()                      # t=3.0
    text = stream.getvalue()
    assert text.count("\r") >= 3
    assert "[##################------]  75.0% 3.0 MiB/4.0 MiB" in text
    assert "rows/s ETA 0:00" in text
    assert text.endswith("merge: read 3.0 MiB in 3.0 s (1.0 MiB/s, 1,000 rows/s)\n")


def test_under_dvc_one_summary_line_and_no_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DVC_STAGE", "merge")
    stream = FakeTerminal()
    bar = Progress("merge", 100, stream)
    bar.advance(100, 10)
    bar.finish()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("merge: read 100 B in ")
    assert "\r" not in stream.getvalue()


def test_quick_runs_off_a_terminal_stay_quiet() -> None:
    stream = io.StringIO()
    bar = Progress("aggregate", 100, stream)
    bar.advance(100, 10)
    bar.finish()
    assert stream.getvalue() == ""


def test_long_runs_off_a_terminal_report_once(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    bar = Progress("aggregate", progress_module.LONG_RUN_BYTES, stream)
    bar.advance(progress_module.LONG_RUN_BYTES, 5)
    bar.finish()
    assert stream.getvalue().count("\n") == 1
    assert "aggregate: read 32.0 MiB" in stream.getvalue()
