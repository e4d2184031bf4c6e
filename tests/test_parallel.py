"""The multi-process path gives the same bytes and manifests as the single-process one."""

from __future__ import annotations

import fcntl
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from corpusprov.sample import generate_samples
from corpusprov.stages.workers import WorkerPool
from tests.conftest import REPO_ROOT, Cli

#: ``fcntl`` command that reads a pipe's capacity (linux/fcntl.h).
F_GETPIPE_SZ = 1032
VOLATILE = ("started_at_utc", "finished_at_utc", "duration_s")


def _manifest(path: Path) -> dict[str, Any]:
    document = json.loads(path.read_text(encoding="utf-8"))
    for key in VOLATILE:
        document["provenance"].pop(key)
    document["command"].pop("argv")  # differs by the -j flag only
    result: dict[str, Any] = document
    return result


@pytest.mark.parametrize(
    ("stage", "folder", "keep"),
    [("merge", "encode", "first"), ("merge", "encode", "last"), ("aggregate", "mos", "first")],
)
def test_jobs_do_not_change_outputs(cli: Cli, tmp_path: Path, stage: str, folder: str, keep: str) -> None:
    generate_samples(tmp_path / "raw", seed=11, rows=1500)
    params = (REPO_ROOT / "params.yaml").read_text(encoding="utf-8").replace("keep: first", f"keep: {keep}")
    (tmp_path / "params.yaml").write_text(params, encoding="utf-8")
    for jobs in ("1", "2"):
        result = cli(
            stage,
            f"raw/{folder}",
            "--output",
            f"j{jobs}/out.jsonl",
            "--metrics-out",
            f"j{jobs}/m.json",
            "--plots-dir",
            f"j{jobs}/plots",
            "--jobs",
            jobs,
        )
        assert result.exit_code == 0, result.output
    plots = [f"plots/{path.name}" for path in (tmp_path / "j1/plots").iterdir()]
    for name in ("out.jsonl", "out.rejects.jsonl", "m.json", *plots):
        assert (tmp_path / "j1" / name).read_bytes() == (tmp_path / "j2" / name).read_bytes(), name
    one = _manifest(tmp_path / "j1/out.jsonl.manifest.json")
    two = _manifest(tmp_path / "j2/out.jsonl.manifest.json")
    one_text = json.dumps(one, sort_keys=True).replace("j1/", "jN/")
    two_text = json.dumps(two, sort_keys=True).replace("j2/", "jN/")
    assert one_text == two_text


def test_a_failing_row_fails_the_same_way_with_workers(cli: Cli, tmp_path: Path) -> None:
    generate_samples(tmp_path / "raw", seed=3, rows=1200)
    shard = tmp_path / "raw/encode/grid-host-b.jsonl"
    lines = shard.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[250] = '{"broken": \n'
    shard.write_text("".join(lines), encoding="utf-8")
    outcomes = []
    for jobs in ("1", "2"):
        result = cli("merge", "raw/encode", "--output", f"j{jobs}/out.jsonl", "--jobs", jobs)
        outcomes.append((result.exit_code, result.stderr))
        assert not (tmp_path / f"j{jobs}/out.jsonl").exists()
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] == 1
    assert "raw/encode/grid-host-b.jsonl:251: invalid JSON" in outcomes[0][1]


def _echo_factory() -> Any:
    def run(block: Any) -> Any:
        return block

    return run


_CHURN = """
import resource, sys
if sys.argv[1] == "keep":
    from corpusprov.stages.workers import keep_freed_memory
    keep_freed_memory()
def churn():
    for _ in range(40):
        held = [b"x" * (1 << 20) for _ in range(8)]  # reads and blocks in flight, then dropped
        del held
churn()  # the first round may grow the heap
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
churn()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc settings")
def test_freed_buffers_are_reused_without_page_faults() -> None:
    """With :func:`keep_freed_memory` (every stage process calls it) a dropped 1 MiB buffer
    comes back from the heap; by default glibc hands freed heap tops back to Linux, and every
    page of the next buffers faults in afresh."""
    import platform
    import subprocess

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("not glibc")

    def faults(mode: str) -> int:
        done = subprocess.run([sys.executable, "-c", _CHURN, mode], capture_output=True, text=True, check=True)
        return int(done.stdout)

    assert faults("default") > 40 * 8 * 200  # 320 MiB of fresh pages, 256 faults a MiB
    assert faults("keep") < 1000


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pipe capacity is a Linux setting")
def test_worker_pipes_are_widened() -> None:
    """Blocks and results cross 1 MiB pipes, not 64 KiB ones (the widening reads executor internals:
    this fails if a Python upgrade moves them, rather than the speed quietly going)."""
    with WorkerPool(2, _echo_factory, ()) as pool:
        executor: Any = pool._pool  # the pipes are what is checked
        assert executor is not None
        for queue in (executor._call_queue, executor._result_queue):
            for end in (queue._reader, queue._writer):
                assert fcntl.fcntl(end.fileno(), F_GETPIPE_SZ) >= 1024 * 1024


def test_a_threaded_pool_runs_blocks_in_this_process_in_order() -> None:
    """``threads=True`` (merge's native path): the blocks run in threads of this process, no
    worker process starts, and results come back in block order."""
    import multiprocessing
    import threading
    import time

    from corpusprov.io.jsonl import Block

    def slow_first_factory() -> Any:
        def run(block: Any) -> Any:
            if block.first_line == 1:
                time.sleep(0.05)  # the first block finishes last
            return (block.first_line, threading.current_thread().name)

        return run

    blocks = [Block("a.jsonl", 1 + 10 * index, [b"{}"], False) for index in range(8)]
    with WorkerPool(2, slow_first_factory, (), threads=True) as pool:
        results: list[Any] = list(pool.map(iter(blocks)))
        assert multiprocessing.active_children() == []
    assert [first for first, _ in results] == [block.first_line for block in blocks]
    assert {name for _, name in results} <= {f"corpusprov-block_{index}" for index in range(2)}


def test_merge_runs_in_threads_where_its_native_path_answers() -> None:
    """``non_finite: keep`` (the default) lets the native path take real rows, NaN and all:
    threads; another policy sends a third of real rows to the Python path: processes."""
    from dataclasses import replace

    from corpusprov.params.stages import MergeParams
    from corpusprov.stages.merge import NATIVE_MERGE_ROWS, merge_uses_threads

    if not NATIVE_MERGE_ROWS:
        pytest.skip("the native merge fast path is not built here")
    assert merge_uses_threads(MergeParams())
    assert not merge_uses_threads(replace(MergeParams(), non_finite="null"))


def test_aggregate_runs_in_threads_where_its_native_path_answers() -> None:
    """Unified rows with ``non_finite: keep`` (the defaults) take the native path, NaN std-devs
    and all: threads; another policy, or passthrough rows, take the Python path: processes."""
    from dataclasses import replace

    from corpusprov.params.scales import ScaleEntry
    from corpusprov.params.stages import AggregateParams
    from corpusprov.stages.aggregate import NATIVE_AGGREGATE_ROWS, aggregate_uses_threads

    if not NATIVE_AGGREGATE_ROWS:
        pytest.skip("the native aggregate fast path is not built here")
    params = AggregateParams(scales={"konvid": ScaleEntry("konvid", 1.0, 5.0, True, "1-5 ACR")})
    assert aggregate_uses_threads(params)
    assert not aggregate_uses_threads(replace(params, non_finite="null"))
    assert not aggregate_uses_threads(replace(params, output_row="passthrough"))
