"""Worker processes never outlive the run: SIGKILL the main process and they are gone within a second.

Merge runs its blocks in threads where its native fast path answers (``non_finite: keep``),
so these runs use ``non_finite: null``, which takes worker processes (aggregate too runs
threads with ``keep``, and processes otherwise).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "bench"))
import realshape  # the bench's generator of real-shaped rows lives outside the package

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _children(pid: int) -> set[int]:
    """Live (not zombie) processes whose parent is ``pid``."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text(encoding="ascii", errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[1]) == pid:
            found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace").rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_sigkill_of_the_main_process_takes_the_workers_with_it(tmp_path: Path) -> None:
    shard_lines = "".join(
        realshape.dump_line(row, "\n")
        for _, row in realshape.iter_real_encode_rows(random.Random(5), [("a.jsonl", 4000)])
    )
    (tmp_path / "raw").mkdir()
    for index in range(12):  # ~100 MB: the run lasts well past the moment we kill it
        (tmp_path / "raw" / f"host-{index:02d}.jsonl").write_text(shard_lines, encoding="ascii")
    params = (REPO_ROOT / "params.yaml").read_text(encoding="utf-8")
    kept = "  non_finite: keep       # NaN/Infinity outside the key: keep | null | reject\n"
    assert kept in params
    (tmp_path / "params.yaml").write_text(params.replace(kept, "  non_finite: null\n", 1), encoding="utf-8")
    main = subprocess.Popen(
        [sys.executable, "-m", "corpusprov", "merge", "raw", "--output", "out/merged.jsonl", "--jobs", "2"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        workers: set[int] = set()
        while time.monotonic() < deadline and main.poll() is None:
            workers = _children(main.pid)
            # Two workers plus the resource tracker, and the workers busy parsing.
            if len(workers) >= 3:
                break
            time.sleep(0.05)
        assert main.poll() is None, "the run ended before it could be killed; make the input bigger"
        assert len(workers) >= 3, workers
        time.sleep(0.5)
        os.kill(main.pid, signal.SIGKILL)
        main.wait(timeout=10)
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
            time.sleep(0.02)
        survivors = [pid for pid in workers if _alive(pid)]
    finally:
        if main.poll() is None:
            main.kill()
    for pid in survivors:  # do not leave them behind if the test fails
        os.kill(pid, signal.SIGKILL)
    assert survivors == [], f"processes outlived the SIGKILLed main process: {survivors}"
    assert not (tmp_path / "out" / "merged.jsonl").exists()
