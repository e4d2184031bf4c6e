"""Progress reporting: a live bar on a terminal, one summary line under DVC or for long runs."""

from __future__ import annotations

import io

import pytest

from corpusprov import progress as progress_module
from corpusprov.progress import Progress


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_live_bar_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DVC_STAGE", raising=False)
    stream = FakeTerminal()
    bar = Progress("merge", 4 * 1024 * 1024, stream)
    assert bar.live
    bar.started -= 5  # as if the run began 5 s ago: the summary line reports the rate
    bar.advance(3 * 1024 * 1024, 3000)
    assert bar._bar is not None
    bar._bar.refresh()  # what tqdm draws after its one-second delay
    bar.finish()
    text = stream.getvalue()
    assert "merge:  75%" in text and "3.00M/4.00M" in text
    last = text.splitlines()[-1]
    assert last.startswith("\x1b[Kmerge: read 3.0 MiB in 5.0 s (") and last.endswith(" rows/s)"), last


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


def test_long_runs_off_a_terminal_report_once() -> None:
    stream = io.StringIO()
    bar = Progress("aggregate", progress_module.LONG_RUN_BYTES, stream)
    bar.advance(progress_module.LONG_RUN_BYTES, 5)
    bar.finish()
    assert stream.getvalue().count("\n") == 1
    assert "aggregate: read 32.0 MiB" in stream.getvalue()
