"""Whole-process measurements: wall time taken by the parent, peak RSS read by the probe in the child."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["PROBE", "Measurement", "RunFailedError", "Sample", "mem_available_bytes", "run_probe"]

#: The wrapper every measured command runs under (see its docstring for why).
PROBE = Path(__file__).resolve().parent / "probe.py"


class RunFailedError(Exception):
    """A measured command exited non-zero."""

    def __init__(self, target: Sequence[str], sample: Sample) -> None:
        tail = (sample.stderr.strip().splitlines() or ["(no stderr)"])[-3:]
        super().__init__(f"{' '.join(target)} exited {sample.exit_code}: " + " | ".join(tail))
        self.sample = sample


@dataclass(frozen=True)
class Sample:
    """One run of one command."""

    wall_s: float
    """Whole-process wall time: interpreter start to exit, as the parent saw it."""
    peak_bytes: int
    """``VmHWM`` of the command's process at exit."""
    cpu_s: float
    """User + system CPU seconds of the process."""
    exit_code: int
    """The command's exit code."""
    stdout: str
    """What it printed (small: summaries and counters)."""
    stderr: str
    """What it printed on stderr."""


@dataclass(frozen=True)
class Measurement:
    """Repeated runs of one command; the summary is the median."""

    samples: tuple[Sample, ...]
    """Every run, in order."""

    @property
    def wall_s(self) -> float:
        """Median wall time."""
        return statistics.median(sample.wall_s for sample in self.samples)

    @property
    def peak_bytes(self) -> float:
        """Median peak RSS."""
        return statistics.median(sample.peak_bytes for sample in self.samples)

    def to_dict(self) -> dict[str, Any]:
        """JSON form: the medians and every run (without the captured output)."""
        return {
            "wall_s": self.wall_s,
            "peak_bytes": self.peak_bytes,
            "runs": [
                {key: value for key, value in asdict(sample).items() if key not in ("stdout", "stderr")}
                for sample in self.samples
            ],
        }


def mem_available_bytes() -> int:
    """``MemAvailable`` from ``/proc/meminfo``."""
    with open("/proc/meminfo", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("/proc/meminfo has no MemAvailable")


def run_probe(target: Sequence[str], *, cwd: Path, memory_limit: int | None = None) -> Sample:
    """Run ``target`` (probe syntax: ``-m MODULE ...``, ``SCRIPT ...``, ``--import MODS``) once.

    ``memory_limit`` caps the child's address space, so a reference that would not fit in
    RAM fails with MemoryError instead of waking the OOM killer on a shared machine.
    """
    report = cwd / f".probe-{os.getpid()}-{time.monotonic_ns()}.json"
    limit = ["--memory-limit", str(memory_limit)] if memory_limit else []
    argv = [sys.executable, str(PROBE), *limit, str(report), *target]
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    try:
        facts = json.loads(report.read_text(encoding="utf-8"))
        report.unlink()
    except FileNotFoundError:
        # The probe itself died (killed, or MemoryError before it could report).
        facts = {"vm_hwm_bytes": 0, "cpu_user_s": 0.0, "cpu_system_s": 0.0}
    sample = Sample(
        wall_s=wall,
        peak_bytes=int(facts["vm_hwm_bytes"]),
        cpu_s=float(facts["cpu_user_s"]) + float(facts["cpu_system_s"]),
        exit_code=done.returncode,
        stdout=done.stdout,
        stderr=done.stderr,
    )
    if done.returncode != 0:
        raise RunFailedError(target, sample)
    return sample
