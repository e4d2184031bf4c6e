"""Benchmark ``corpusprov merge`` and ``aggregate`` against a reference implementation and the hashing floor.

    python bench/run.py [--rows N] [--mos-rows N] [--repeat K] [--curve [--curve-max N]]
                        [--out bench/out/results.json] [--keep-data DIR]

Generates encode-grid and MOS corpora, runs ours (the normal CLI, manifests on), the
reference (``bench/reference.py``) and the floor (``bench/floor.py``: sha256 + md5 of the
same bytes) as separate processes, and prints wall time, throughput and peak RSS side by
side with the SPEC's targets. ``bench/README.md`` explains how to read the table.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from cases import IMPLS, CaseResult, MismatchError, measure_idle, run_case
from corpora import (
    Corpus,
    encode_corpus,
    mos_corpus,
    native_path_share,
    real_encode_corpus,
    real_mos_corpus,
    slow_path_share,
)
from corpusprov.sample import MIN_MOS_ROWS, MIN_ROWS
from measure import RunFailedError, mem_available_bytes
from realshape import ENCODE_V3_KEYS
from report import least_squares, render_cases, render_curve, render_targets, targets

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
#: Encode-grid sizes of the growth curve (``--curve``), capped by ``--curve-max``.
CURVE_SIZES = (100_000, 300_000, 1_000_000, 3_000_000)
#: Bytes added to every MOS row for the aggregate width check.
WIDE_EXTRA = 2048
#: Share of the memory available at start a reference run may use before it is stopped.
MEMORY_SHARE = 0.85


def log(message: str) -> None:
    """Progress on stderr, so stdout carries only the tables."""
    print(message, file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="encode-grid rows for merge (default 1,000,000)")
    parser.add_argument("--mos-rows", type=int, default=400_000, help="MOS rows for aggregate (default 400,000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per implementation; the median counts (default 3)")
    parser.add_argument("--curve", action="store_true", help="also time merge at 100k, 300k, 1M, 3M rows")
    parser.add_argument("--curve-only", action="store_true", help="only the growth curve, no main table")
    parser.add_argument("--curve-max", type=int, default=CURVE_SIZES[-1], help="largest curve size (default 3M)")
    parser.add_argument("--curve-repeat", type=int, default=1, help="runs per curve point (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    parser.add_argument(
        "--params",
        type=Path,
        default=REPO / "params.yaml",
        help="params file, copied into the work folder (default: the repo's params.yaml)",
    )
    parser.add_argument("--out", type=Path, default=BENCH / "out" / "results.json", help="JSON results file")
    parser.add_argument(
        "--corpora",
        choices=("both", "real", "easy"),
        default="both",
        help="real-shaped corpora, the easy sample corpora, or both (default)",
    )
    parser.add_argument(
        "--keep-data",
        type=Path,
        metavar="DIR",
        help="work in DIR and keep the corpora there; a later run reuses matching ones",
    )
    args = parser.parse_args(argv)
    if args.rows < MIN_ROWS or args.mos_rows < MIN_MOS_ROWS:
        parser.error(f"--rows must be at least {MIN_ROWS} and --mos-rows at least {MIN_MOS_ROWS}")
    if args.repeat < 1 or args.curve_repeat < 1:
        parser.error("--repeat and --curve-repeat must be at least 1")
    return args


def _meminfo_total() -> int:
    with open("/proc/meminfo", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def _cpu_model() -> str:
    with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _filesystem(path: Path) -> str:
    """The file system type ``path`` lives on (a tmpfs work folder would flatter every number)."""
    best, kind = "", "unknown"
    resolved = str(path.resolve())
    with open("/proc/mounts", encoding="utf-8") as handle:
        for line in handle:
            fields = line.split()
            mount = fields[1]
            if (resolved == mount or resolved.startswith(mount.rstrip("/") + "/")) and len(mount) > len(best):
                best, kind = mount, fields[2]
    return kind


def machine_info(workdir: Path) -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "mem_total_bytes": _meminfo_total(),
        "mem_available_bytes": mem_available_bytes(),
        "python": f"{platform.python_version()} ({platform.python_implementation()})",
        "platform": platform.platform(),
        "corpusprov": metadata.version("corpusprov"),
        "orjson": metadata.version("orjson"),
        "work_dir_fs": _filesystem(workdir),
        "load_avg_start": os.getloadavg(),
    }


def render_header(machine: dict[str, Any], args: argparse.Namespace, params: dict[str, str], date: str) -> str:
    """The lines above the tables: when, where, with what."""
    runs = [] if args.curve_only else [f"main table: median of {args.repeat} interleaved run(s)"]
    if args.curve or args.curve_only:
        runs.append(f"curve: {args.curve_repeat} run(s) per size")
    return "\n".join(
        [
            f"corpusprov bench, {date}",
            f"machine: {machine['nproc']} CPUs ({machine['cpus_usable']} usable), {machine['cpu_model']}, "
            f"{machine['mem_total_bytes'] / 2**30:.1f} GiB RAM; Python {machine['python']}; {machine['platform']}",
            f"software: corpusprov {machine['corpusprov']}, orjson {machine['orjson']}; params {params['source']} "
            f"(sha256 {params['sha256'][:12]}); work folder on {machine['work_dir_fs']}",
            f"load average at start: {' '.join(f'{value:.2f}' for value in machine['load_avg_start'])}; "
            f"{'; '.join(runs)}; warm page cache; wall = whole process; peak = VmHWM",
        ]
    )


def prepare_params(source: Path, workdir: Path) -> dict[str, str]:
    """Copy the params file into the work folder (every implementation reads that copy)."""
    data = source.read_bytes()
    (workdir / "params.yaml").write_bytes(data)
    return {"source": str(source), "path": str(workdir / "params.yaml"), "sha256": hashlib.sha256(data).hexdigest()}


def prepare_real_params(source: Path, workdir: Path) -> Path:
    """The params of the real-shaped cases: the repo's, with CRLF accepted and all 54 v3 keys required.

    Set explicitly rather than taken from the defaults, so the bench measures the same work
    whatever the shipped defaults say about CRLF and the required key set.
    """
    yaml = YAML()
    params = yaml.load(source.read_text(encoding="utf-8"))
    params["merge"]["required_keys"] = list(ENCODE_V3_KEYS)
    params["merge"]["jsonl"]["crlf"] = "accept"
    params["aggregate"]["jsonl"]["crlf"] = "accept"
    path = workdir / "params-real.yaml"
    with open(path, "w", encoding="utf-8") as handle:
        yaml.dump(params, handle)
    return path


def _made(corpus: Corpus) -> Corpus:
    how = "reused" if corpus.generate_s is None else f"generated in {corpus.generate_s:.1f} s"
    log(f"  {corpus.folder.name}: {corpus.rows} rows, {corpus.bytes / 1e6:.1f} MB ({how})")
    return corpus


def main_run(args: argparse.Namespace, workdir: Path, params: Path) -> tuple[dict[str, Any], str]:
    """The side-by-side table: merge, aggregate, and aggregate over 2 KB wider rows."""
    data = workdir / "data"
    real_params = prepare_real_params(params, workdir)
    log("generating corpora")
    plan: list[tuple[str, str, Corpus, Path]] = []
    if args.corpora in ("both", "real"):
        plan += [
            ("merge real", "merge", _made(real_encode_corpus(data, args.rows, args.seed)), real_params),
            ("aggregate real", "aggregate", _made(real_mos_corpus(data, args.mos_rows, args.seed)), real_params),
            (
                f"aggregate real +{WIDE_EXTRA}B",
                "aggregate",
                _made(real_mos_corpus(data, args.mos_rows, args.seed, extra_width=WIDE_EXTRA)),
                real_params,
            ),
        ]
    if args.corpora in ("both", "easy"):
        plan += [
            ("merge easy", "merge", _made(encode_corpus(data, args.rows, args.seed)), params),
            ("aggregate easy", "aggregate", _made(mos_corpus(data, args.mos_rows, args.seed)), params),
            (
                f"aggregate easy +{WIDE_EXTRA}B",
                "aggregate",
                _made(mos_corpus(data, args.mos_rows, args.seed, extra_width=WIDE_EXTRA)),
                params,
            ),
        ]
    log("measuring idle processes")
    idle = measure_idle(workdir, args.repeat)
    limit = int(mem_available_bytes() * MEMORY_SHARE)
    cases = []
    for name, stage, corpus, case_params in plan:
        share, sampled = slow_path_share(corpus)
        native = native_path_share(corpus, case_params)
        shown = "not probed" if share is None else f"{share:.1%} of {sampled} sampled lines"
        if native is not None:
            shown += f", native-path share {native:.1%}"
        log(f"measuring {name} ({corpus.rows} rows, {corpus.bytes / 1e6:.0f} MB; careful-path share {shown})")
        case = CaseResult(
            name, stage, corpus, slow_path_share=share, slow_path_sampled=sampled, native_path_share=native
        )
        cases.append(
            run_case(case, workdir=workdir, params=case_params, repeat=args.repeat, log=log, memory_limit=limit)
        )
    # The SPEC's targets are judged on the real-shaped corpora when they ran.
    by_name = {case.name: case for case in cases}
    kind = "real" if args.corpora != "easy" else "easy"
    merge, aggregate, aggregate_wide = (
        by_name[f"merge {kind}"],
        by_name[f"aggregate {kind}"],
        by_name[f"aggregate {kind} +{WIDE_EXTRA}B"],
    )
    found = targets(merge, aggregate, aggregate_wide, idle)
    text = "\n\n".join(
        [
            render_cases(cases, idle),
            f"SPEC targets, judged on the {kind} corpora",
            render_targets(found, aggregate, aggregate_wide),
        ]
    )
    result = {
        "idle": {impl: item.to_dict() for impl, item in idle.items()},
        "cases": [case.to_dict() for case in cases],
        "targets": found,
    }
    return result, text


def _predicted_too_big(points: list[CaseResult], rows: int, limit: int) -> str | None:
    """Why the reference should not run at ``rows``: its peak, scaled from the last size, would not fit."""
    measured = [case for case in points if "reference" in case.measurements]
    if not measured:
        return None
    last = measured[-1]
    predicted = last.measurements["reference"].peak_bytes * rows / last.corpus.rows
    if predicted <= limit:
        return None
    return (
        f"predicted peak {predicted / 2**30:.1f} GiB (scaled from {last.corpus.rows} rows) exceeds "
        f"{limit / 2**30:.1f} GiB ({MEMORY_SHARE:.0%} of the memory available)"
    )


def curve_run(args: argparse.Namespace, workdir: Path, params: Path, keep: bool) -> tuple[dict[str, Any], str]:
    """Merge at growing sizes, one after the other, and least-squares lines through the points.

    The real-shaped corpus (with its params) unless ``--corpora easy``: the SPEC's memory
    target is the slope on real-shaped shards.
    """
    sizes = [size for size in CURVE_SIZES if size <= args.curve_max]
    points: list[CaseResult] = []
    real = args.corpora != "easy"
    if real:
        params = prepare_real_params(params, workdir)
    for size in sizes:
        log(f"curve: {size} {'real-shaped' if real else 'easy'} rows")
        make = real_encode_corpus if real else encode_corpus
        corpus = _made(make(workdir / "data", size, args.seed))
        limit = int(mem_available_bytes() * MEMORY_SHARE)
        case = CaseResult(f"merge {size}", "merge", corpus)
        reason = _predicted_too_big(points, size, limit)
        if reason is not None:
            case.skipped["reference"] = reason
            log(f"  reference skipped: {reason}")
        points.append(
            run_case(case, workdir=workdir, params=params, repeat=args.curve_repeat, log=log, memory_limit=limit)
        )
        if not keep and size != args.rows:
            shutil.rmtree(corpus.folder, ignore_errors=True)
    fits = {}
    for impl in IMPLS:
        measured = [case for case in points if impl in case.measurements]
        fits[impl] = {
            "wall": least_squares(
                [case.corpus.rows / 1e6 for case in measured], [case.measurements[impl].wall_s for case in measured]
            ),
            "peak": least_squares(
                [case.unique_keys / 1e6 for case in measured],
                [case.measurements[impl].peak_bytes / 2**20 for case in measured],
            ),
        }
    result = {
        "sizes": sizes,
        "points": [case.to_dict() for case in points],
        "fits": {
            impl: {name: None if fit is None else vars(fit) for name, fit in item.items()}
            for impl, item in fits.items()
        },
        "units": {"wall": "seconds per million rows", "peak": "MiB per million unique keys"},
    }
    ours_peak = fits["ours"]["peak"]
    margin = None if ours_peak is None else ours_peak.slope * 2**20 / 1e6
    result["margin_bytes_per_key"] = margin
    verdict = "not measured" if margin is None else f"{margin:.1f} B (≤ 64 B): {'met' if margin <= 64 else 'MISSED'}"
    return result, render_curve(points, fits) + f"\n\nSPEC target, merge memory at the margin (ours' slope): {verdict}"


def write_json(path: Path, document: dict[str, Any]) -> None:
    """Write the results atomically (temp file in the same folder, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_text(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    os.replace(temp, path)


def run(args: argparse.Namespace, workdir: Path) -> int:
    """Everything the command line asked for, in ``workdir``."""
    started = time.perf_counter()
    date = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    machine = machine_info(workdir)
    params = prepare_params(args.params, workdir)
    header = render_header(machine, args, params, date)
    if machine["work_dir_fs"] in ("tmpfs", "ramfs"):
        log(f"warning: the work folder is on {machine['work_dir_fs']}; use --keep-data DIR on a disk")
    document: dict[str, Any] = {
        "schema": "corpusprov-bench/1",
        "date_utc": date,
        "machine": machine,
        "args": vars(args),
        "params": params,
        "main": None,
        "curve": None,
    }
    sections = [header]
    try:
        if not args.curve_only:
            document["main"], text = main_run(args, workdir, Path(params["path"]))
            sections.append(text)
        if args.curve or args.curve_only:
            document["curve"], text = curve_run(args, workdir, Path(params["path"]), args.keep_data is not None)
            kind = "easy" if args.corpora == "easy" else "real-shaped"
            sections.append(f"merge growth on the {kind} corpus (--curve, {args.curve_repeat} run(s) per size)\n{text}")
    except (MismatchError, RunFailedError) as exc:
        log(f"bench: error: {exc}")
        return 1
    machine["load_avg_end"] = os.getloadavg()
    document["bench_wall_s"] = time.perf_counter() - started
    sections.append(
        f"load average at end: {' '.join(f'{value:.2f}' for value in machine['load_avg_end'])}; "
        f"whole bench: {document['bench_wall_s']:.1f} s"
    )
    document["rendered"] = "\n\n".join(sections)
    print(document["rendered"])
    write_json(args.out, document)
    log(f"results written to {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, pick the work folder, run, clean up."""
    args = parse_args(argv)
    args.params = args.params.resolve()
    if args.keep_data is not None:
        workdir = args.keep_data.resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        return run(args, workdir)
    workdir = Path(tempfile.mkdtemp(prefix="corpusprov-bench-"))
    try:
        return run(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
