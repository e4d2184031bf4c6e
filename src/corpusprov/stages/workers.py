"""Parse and judge shard blocks on several cores; results come back in input order.

The main process reads and hashes each shard and keeps everything that depends on order
(dedup tables, counters, output bytes); worker processes do the per-line work (JSON
parsing, checks, canonical serialisation). Results are consumed in block order, so the
output is byte-identical to a single-process run.

A stage whose block function does its per-line work with the GIL released (merge's native
fast path) runs it in threads of the main process instead (``threads=True``): no blocks and
results pickled through pipes, no second interpreter.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import multiprocessing
import os
import signal
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, Final

from corpusprov.interrupts import held
from corpusprov.io.jsonl import Block
from corpusprov.stages.rowpolicy import BlockResult

__all__ = [
    "AUTO_JOBS_MIN_BYTES",
    "BlockFunction",
    "ProgressCallback",
    "WorkerPool",
    "choose_jobs",
    "die_with_parent",
    "keep_freed_memory",
    "metered",
    "quiet_gc",
]

#: Below this much input, starting worker processes costs more than it saves.
AUTO_JOBS_MIN_BYTES: Final = 32 * 1024 * 1024

#: Builds the per-block function inside each worker (it must be importable by name).
BlockFunction = Callable[[Block], BlockResult]

_STATE: dict[str, BlockFunction] = {}


def choose_jobs(requested: int | None, input_bytes: int) -> int:
    """``None`` means automatic: every core for large inputs, one process for small ones."""
    if requested is not None:
        return max(1, requested)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cores if input_bytes >= AUTO_JOBS_MIN_BYTES and cores > 1 else 1


#: ``prctl`` option: the signal this process gets when its parent dies (linux/prctl.h).
_PR_SET_PDEATHSIG: Final = 1


def die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGKILL this process when ``parent_pid`` (its parent) dies; a no-op elsewhere.

    A SIGKILLed main process runs no cleanup, so without this its workers would live on,
    idle and holding memory. If the parent died before the request took hold, exit now.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return  # not fatal: the pool still ends its workers on any exit it survives
    if os.getppid() != parent_pid:
        os._exit(1)


def _init_worker(factory: Callable[..., BlockFunction], args: tuple[Any, ...], parent_pid: int) -> None:
    die_with_parent(parent_pid)
    # Ctrl-C reaches the whole process group; the parent decides and tears the pool down.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    quiet_gc()
    keep_freed_memory()
    _STATE["fn"] = factory(*args)


def quiet_gc() -> None:
    """Collect cycles rarely: rows are acyclic, and millions of short-lived dicts would
    otherwise trigger a young-generation collection every few hundred rows."""
    gc.set_threshold(200_000, 50, 100)


#: ``mallopt`` parameters (malloc.h) and the values :func:`keep_freed_memory` sets.
_M_TRIM_THRESHOLD: Final = -1
_M_MMAP_THRESHOLD: Final = -3
#: glibc's largest mmap threshold on 64-bit hosts (DEFAULT_MMAP_THRESHOLD_MAX); a larger value is refused.
_MMAP_THRESHOLD_BYTES: Final = 32 * 1024 * 1024
_TRIM_THRESHOLD_BYTES: Final = 256 * 1024 * 1024


def keep_freed_memory() -> None:
    """Have glibc's malloc keep freed buffers for reuse instead of handing them back to Linux.

    A stage allocates and frees megabytes a millisecond (1 MiB reads, 768 KiB blocks and
    result buffers, pickles). By default glibc serves such sizes with fresh ``mmap``s and
    returns freed heap tops, so Linux zeroes every page again: 1.1 million page faults and
    about a quarter of all CPU time in the kernel on 300k real-shaped rows. A fixed mmap
    threshold and a high trim threshold make freed memory come back from the heap (30k
    faults; peak memory unchanged, measured in bench/README.md). Best effort: a no-op where
    the C library is not glibc.
    """
    if not sys.platform.startswith("linux"):
        return
    import platform

    if platform.libc_ver()[0] != "glibc":
        return
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)
        libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_BYTES)
    except (OSError, AttributeError):
        return


#: ``fcntl`` command that sets a pipe's capacity (linux/fcntl.h); Python 3.11's fcntl lacks the name.
_F_SETPIPE_SZ: Final = 1031
#: The capacity asked for: a block and its results (up to about 768 KiB each) pass in one write.
_PIPE_BYTES: Final = 1024 * 1024


def _widen_pipes(pool: ProcessPoolExecutor) -> None:
    """Give the pool's two pipes 1 MiB instead of Linux's 64 KiB (a no-op elsewhere).

    A block goes out and its results come back through these pipes; at 64 KiB each one
    crosses in four or more writes, each waking the other side, and the copying and waking
    cost the workers about a quarter of their time on real-shaped rows. Best effort: the
    queues are the executor's own attributes, and a refusal (a lower ``pipe-max-size``)
    leaves the default.
    """
    if not sys.platform.startswith("linux"):
        return
    import fcntl

    for queue_name in ("_call_queue", "_result_queue"):
        queue = getattr(pool, queue_name, None)
        for end in ("_reader", "_writer"):
            connection = getattr(queue, end, None)
            fileno = getattr(connection, "fileno", None)
            if fileno is None:
                continue
            with contextlib.suppress(OSError, ValueError):
                fcntl.fcntl(fileno(), _F_SETPIPE_SZ, _PIPE_BYTES)


def _run_block(block: Block) -> BlockResult:
    return _STATE["fn"](block)


class WorkerPool:
    """``jobs`` worker processes (or none, for ``jobs == 1``) running one block function.

    ``threads``: ``jobs`` threads of this process instead, sharing one block function, which
    must then be thread-safe and release the GIL for its per-line work.
    """

    def __init__(
        self, jobs: int, factory: Callable[..., BlockFunction], args: tuple[Any, ...], *, threads: bool = False
    ) -> None:
        self.jobs = jobs
        self.threads = threads and jobs > 1
        self._factory = factory
        self._args = args
        self._local: BlockFunction | None = None
        self._pool: Executor | None = None

    def __enter__(self) -> WorkerPool:
        if self.jobs <= 1:
            self._local = self._factory(*self._args)
        elif self.threads:
            self._local = self._factory(*self._args)
            self._pool = ThreadPoolExecutor(self.jobs, thread_name_prefix="corpusprov-block")
        else:
            # spawn, not fork: the parent has a hashing thread, and fork() with threads is unsafe.
            context = multiprocessing.get_context("spawn")
            # Workers are started from this (the main) thread, whose death is what the
            # parent-death signal watches.
            pool = ProcessPoolExecutor(
                self.jobs,
                mp_context=context,
                initializer=_init_worker,
                initargs=(self._factory, self._args, os.getpid()),
            )
            _widen_pipes(pool)
            self._pool = pool
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            with held():
                self._pool.shutdown(wait=True, cancel_futures=True)

    def map(self, blocks: Iterable[Block]) -> Iterator[BlockResult]:
        """Each block's results, in order; a worker's exception is raised at its block."""
        if self._pool is None:
            local = self._local
            assert local is not None  # noqa: S101 -- set in __enter__
            for block in blocks:
                yield local(block)
            return
        run = self._local if self.threads else _run_block
        assert run is not None  # noqa: S101 -- set in __enter__
        pending: deque[Future[BlockResult]] = deque()
        window = self.jobs * 3
        for block in blocks:
            with held():
                pending.append(self._pool.submit(run, block))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


#: ``(bytes, rows)`` of a block as it is handed on; for progress reports.
ProgressCallback = Callable[[int, int], None]


def metered(blocks: Iterable[Block], progress: ProgressCallback | None) -> Iterator[Block]:
    """Pass blocks through, reporting their size to ``progress``."""
    for block in blocks:
        if progress is not None:
            progress(sum(map(len, block.lines)) + len(block.lines), len(block.lines))
        yield block
