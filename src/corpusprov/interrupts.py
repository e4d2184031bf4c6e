"""Ctrl-C and SIGTERM as exceptions, held back while code that must not be cut in half runs.

The CLI's signal handlers raise (KeyboardInterrupt, Terminated) so a run unwinds and removes
its temp files. An exception raised inside multiprocessing's own code, though, can land
between starting a worker and sending it its start-up data: the worker then waits for that
data forever and the pool's shutdown waits for the worker. Code that drives the pool runs
inside :func:`held`; a signal that arrives meanwhile raises the moment the section ends.
(Masking the signal would not do: the kernel hands it to another thread, and Python runs the
handler in the main thread all the same.)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["held", "raise_or_hold"]

_depth = 0
_pending: list[BaseException] = []


def raise_or_hold(exc: BaseException) -> None:
    """From a signal handler: raise ``exc`` now, or when the outermost held section ends."""
    if _depth:
        if not _pending:
            _pending.append(exc)
        return
    raise exc


@contextmanager
def held() -> Iterator[None]:
    """Run the body whole: an interrupt that arrives meanwhile is raised when it ends (it wins over an error)."""
    global _depth
    _depth += 1
    try:
        yield
    except BaseException:
        _depth -= 1
        if _depth == 0 and _pending:
            raise _release() from None
        raise
    _depth -= 1
    if _depth == 0 and _pending:
        raise _release()


def _release() -> BaseException:
    exc = _pending[0]
    _pending.clear()
    return exc
