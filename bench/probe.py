"""Run one command in this very process and record its peak RSS (VmHWM) at exit.

Why in-process: Linux carries ``ru_maxrss`` across ``exec``, so ``getrusage(RUSAGE_CHILDREN)``
or ``wait4`` in a parent blames a child for memory its parent had at fork time. ``VmHWM`` in
``/proc/self/status`` belongs to the current address space, which ``exec`` replaced, so it
is exactly this command's peak. The probe adds only ``runpy`` to the process.

    python bench/probe.py REPORT.json -m MODULE [ARG...]     like ``python -m MODULE``
    python bench/probe.py REPORT.json SCRIPT.py [ARG...]     like ``python SCRIPT.py``
    python bench/probe.py REPORT.json --import MOD[,MOD...]  the idle process: imports only

``--memory-limit BYTES`` before REPORT.json caps the address space (RLIMIT_AS), so a run
that would not fit in RAM fails with MemoryError instead of calling the OOM killer.

Writes ``{"exit_code", "vm_hwm_bytes", "vm_rss_bytes", "cpu_user_s", "cpu_system_s",
"inner_wall_s"}`` to REPORT.json and exits with the command's exit code.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import runpy
import sys
import time
from pathlib import Path


def status_bytes(field: str) -> int:
    """A ``kB`` field of ``/proc/self/status`` (``VmHWM``, ``VmRSS``) in bytes."""
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def run_target(target: list[str]) -> int:
    """Run the target the way ``python`` would; return its exit code."""
    try:
        if target[0] == "--import":
            for module in target[1].split(","):
                importlib.import_module(module)
        elif target[0] == "-m":
            sys.argv = [target[1], *target[2:]]
            runpy.run_module(target[1], run_name="__main__", alter_sys=True)
        else:
            sys.argv = list(target)
            sys.path[0] = str(Path(target[0]).resolve().parent)
            runpy.run_path(target[0], run_name="__main__")
    except MemoryError:
        print("probe: MemoryError: the run needs more memory than --memory-limit allows", file=sys.stderr)
        return 3
    except SystemExit as exc:
        if exc.code is None:
            return 0
        if isinstance(exc.code, int):
            return exc.code
        print(exc.code, file=sys.stderr)
        return 1
    return 0


def main() -> int:
    """Run the target, then write what it cost."""
    args = sys.argv[1:]
    if args[:1] == ["--memory-limit"]:
        limit = int(args[1])
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        args = args[2:]
    if len(args) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    report_path = args[0]
    target = args[1:]
    started = time.perf_counter()
    exit_code = run_target(target)
    sys.stdout.flush()
    times = os.times()
    report = {
        "exit_code": exit_code,
        "vm_hwm_bytes": status_bytes("VmHWM"),
        "vm_rss_bytes": status_bytes("VmRSS"),
        "cpu_user_s": times.user,
        "cpu_system_s": times.system,
        "inner_wall_s": time.perf_counter() - started,
    }
    with open(report_path, "w", encoding="utf-8") as handle:
        json.dump(report, handle)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
