"""Interrupts held back while the worker pool must not be cut in half (corpusprov.interrupts)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from corpusprov.cli.base import Terminated
from corpusprov.interrupts import held, raise_or_hold


@pytest.fixture
def sigterm_raises() -> Iterator[None]:
    """The CLI's SIGTERM handler, for this test only."""

    def handler(_signum: int, _frame: object) -> None:
        raise_or_hold(Terminated())

    previous = signal.signal(signal.SIGTERM, handler)
    yield
    signal.signal(signal.SIGTERM, previous)


def test_outside_a_held_section_an_interrupt_raises_at_once() -> None:
    with pytest.raises(KeyboardInterrupt):
        raise_or_hold(KeyboardInterrupt())


@pytest.mark.usefixtures("sigterm_raises")
def test_a_real_sigterm_inside_a_held_section_waits_for_its_end() -> None:
    ran: list[str] = []

    def body() -> None:
        with held():
            os.kill(os.getpid(), signal.SIGTERM)
            ran.append("after the signal")

    with pytest.raises(Terminated):
        body()
    assert ran == ["after the signal"]
    # Delivered once: the next section runs undisturbed.
    with held():
        ran.append("next")
    assert ran == ["after the signal", "next"]


def test_nested_sections_release_at_the_outermost_end() -> None:
    ran: list[str] = []

    def body() -> None:
        with held():
            with held():
                raise_or_hold(KeyboardInterrupt())
                ran.append("inner")
            ran.append("outer")

    with pytest.raises(KeyboardInterrupt):
        body()
    assert ran == ["inner", "outer"]


def test_the_first_interrupt_wins_and_beats_an_error_raised_meanwhile() -> None:

    def body() -> None:
        with held():
            raise_or_hold(Terminated())
            raise_or_hold(KeyboardInterrupt())
            raise ValueError("the body failed too")

    with pytest.raises(Terminated):
        body()
    with held():
        pass  # nothing left pending


def test_an_error_without_an_interrupt_passes_through() -> None:
    with pytest.raises(ValueError, match="plain"), held():
        raise ValueError("plain")
    with pytest.raises(KeyboardInterrupt):
        raise_or_hold(KeyboardInterrupt())  # the depth went back to zero
