"""Crash safety and concurrency: killed, interrupted, size-limited and racing runs never leave a bad output.

Every run here is a real ``corpusprov`` (or ``dvc``) process started from the venv, so the
signals, the file-size limit and the locks are the real ones. Each test checks the exit
code, the message and the state of the output folder: the corpus is absent, the previous
one, or one complete run's output; a manifest on disk describes the corpus beside it; and
no ``.corpusprov-tmp-*`` file of a dead process survives the next run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from corpusprov.record.manifest import Manifest, accounting_problems, load_manifest
from corpusprov.sample import generate_samples
from tests.conftest import REPO_ROOT, TEST_ENV, VENV_BIN, encode_row, run

TEMP_PREFIX = ".corpusprov-tmp-"
CORPUSPROV = str(VENV_BIN / "corpusprov")
#: Larger than any pid Linux can hand out (pid_max is at most 2**22), so never alive.
NEVER_A_PID = 2**22 + 1
KILL_ROUNDS = 20


# --------------------------------------------------------------------------- helpers


def _child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, **TEST_ENV, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("CORPUSPROV_DEBUG", None)
    env.update(extra or {})
    return env


def _default_sigint() -> None:
    # A child of a non-interactive shell may inherit SIGINT as ignored; Python then never
    # turns it into KeyboardInterrupt. Give the child the default disposition, as a terminal would.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(
    args: Sequence[str], cwd: Path, *, preexec: Callable[[], None] = _default_sigint, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """Start ``corpusprov ARGS`` as a real child process."""
    return subprocess.Popen(
        [CORPUSPROV, *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_child_env(env),
        preexec_fn=preexec,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str, str]:
    """Wait for a child; its exit code, stdout and stderr."""
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def temps(*folders: Path) -> list[Path]:
    """Every corpusprov temp file in ``folders``."""
    found: list[Path] = []
    for folder in folders:
        if folder.is_dir():
            found.extend(sorted(folder.glob(f"{TEMP_PREFIX}*")))
    return found


def temp_pid(path: Path) -> int:
    """The pid a temp file name carries."""
    return int(path.name[len(TEMP_PREFIX) :].split("-", 1)[0])


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()  # noqa: S324 -- DVC's content id, as the manifest records it


def read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def wait_for(predicate: Callable[[], bool], proc: subprocess.Popen[str], timeout: float = 20) -> bool:
    """Poll until ``predicate()`` holds; False when the process ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if proc.poll() is not None:
            return predicate()
        time.sleep(0.002)
    raise AssertionError("timed out waiting for the child")


def checked_manifest(path: Path, corpus: Path) -> Manifest:
    """Load a manifest, schema-check it, check its counters, and tie it to the corpus bytes beside it."""
    manifest, _ = load_manifest(path, path.name)
    assert accounting_problems(manifest) == []
    entry = manifest.output("corpus")
    assert entry is not None
    data = read_or_none(corpus)
    assert data is not None, f"{path.name} is on disk but the corpus it describes is not"
    assert entry.md5 == md5(data), f"{path.name} names corpus md5 {entry.md5}, the file on disk is {md5(data)}"
    assert entry.bytes == len(data)
    return manifest


@dataclass(frozen=True)
class OutputSetBytes:
    """The three files one complete run leaves."""

    corpus: bytes
    manifest: bytes
    rejects: bytes


@dataclass(frozen=True)
class Layout:
    """A working directory with a multi-MB sample, the repo's params.yaml and a run's output paths."""

    root: Path
    out: Path

    @property
    def corpus(self) -> Path:
        return self.out / "m.jsonl"

    @property
    def manifest(self) -> Path:
        return self.out / "m.jsonl.manifest.json"

    @property
    def rejects(self) -> Path:
        return self.out / "m.rejects.jsonl"

    def snapshot(self) -> OutputSetBytes | None:
        corpus = read_or_none(self.corpus)
        if corpus is None:
            return None
        manifest = read_or_none(self.manifest)
        rejects = read_or_none(self.rejects)
        assert manifest is not None and rejects is not None
        return OutputSetBytes(corpus, manifest, rejects)

    def restore(self, state: OutputSetBytes | None) -> None:
        for path in (self.corpus, self.manifest, self.rejects):
            path.unlink(missing_ok=True)
        if state is not None:
            self.out.mkdir(parents=True, exist_ok=True)
            self.corpus.write_bytes(state.corpus)
            self.manifest.write_bytes(state.manifest)
            self.rejects.write_bytes(state.rejects)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A multi-MB sample (6000 encode rows, ~4000 MOS rows) and the template's params.yaml."""
    root = tmp_path_factory.mktemp("crash")
    generate_samples(root / "data", seed=0, rows=6000)
    (root / "params.yaml").write_bytes((REPO_ROOT / "params.yaml").read_bytes())
    small = root / "small" / "encode.jsonl"
    small.parent.mkdir()
    with open(root / "data" / "encode" / "grid-host-a.jsonl", "rb") as handle:
        small.write_bytes(b"".join(handle.readline() for _ in range(200)))
    return root


def layout(workdir: Path, name: str) -> Layout:
    return Layout(workdir, workdir / name)


def merge_args(lay: Layout, *inputs: str) -> list[str]:
    return ["merge", *(inputs or ("data/encode",)), "--output", str(lay.corpus.relative_to(lay.root))]


# --------------------------------------------------------------------------- SIGKILL


def test_sigkill_mid_write_leaves_previous_or_complete_or_nothing(workdir: Path) -> None:
    lay = layout(workdir, "out-kill")
    # A distinct, complete "previous" output at the same paths: one shard instead of three.
    code, _, err = finish(start(merge_args(lay, "data/encode/grid-host-a.jsonl"), workdir))
    assert code == 0, err
    previous = lay.snapshot()
    assert previous is not None

    began = time.monotonic()
    code, _, err = finish(start(merge_args(lay), workdir))
    duration = time.monotonic() - began
    assert code == 0, err
    good = lay.snapshot()
    assert good is not None
    assert len(good.corpus) > 5 * 1024 * 1024, "the kill test needs a multi-MB write"
    assert good.corpus != previous.corpus
    assert temps(lay.out) == []

    rng = random.Random(20261127)
    mid_write_kills = 0
    for round_no in range(KILL_ROUNDS):
        before = previous if round_no % 2 == 0 else None
        lay.restore(before)
        proc = start(merge_args(lay), workdir)
        if round_no % 4 < 2:
            # Anywhere in the run, start-up included.
            time.sleep(rng.uniform(0.0, 1.1) * duration)
        else:
            # Somewhere inside the write: wait for the staged corpus, then a random part of the rest.
            seen = wait_for(lambda: any(p.name.endswith("-m.jsonl") for p in temps(lay.out)), proc)
            if seen:
                time.sleep(rng.uniform(0.0, 0.3) * duration)
        proc.send_signal(signal.SIGKILL)
        code, _, err = finish(proc)
        where = f"round {round_no} (previous output: {before is not None}, exit {code})"
        assert code in (0, -signal.SIGKILL), f"{where}: {err}"

        corpus = read_or_none(lay.corpus)
        allowed = [good.corpus] + ([previous.corpus] if before is not None else [])
        if corpus is None:
            assert before is None, f"{where}: the previous output vanished"
        else:
            assert any(corpus == item for item in allowed), (
                f"{where}: corpus on disk ({len(corpus)} bytes) is neither the previous nor a complete output"
            )
        if lay.manifest.exists():
            checked_manifest(lay.manifest, lay.corpus)
        rejects = read_or_none(lay.rejects)
        if rejects is not None:
            assert rejects in (good.rejects, previous.rejects), f"{where}: rejects file is not a complete one"
        if code == 0:
            assert lay.snapshot() is not None and corpus == good.corpus

        left = temps(lay.out)
        assert all(temp_pid(path) == proc.pid for path in left), f"{where}: foreign temps {left}"
        if left:
            mid_write_kills += 1
            # The next (complete) run removes what the dead one left.
            code, _, err = finish(start(merge_args(lay), workdir))
            assert code == 0, err
            assert temps(lay.out) == [], f"{where}: the next run left {temps(lay.out)}"
            assert lay.corpus.read_bytes() == good.corpus
            checked_manifest(lay.manifest, lay.corpus)

    # Half the rounds aim inside the write; make sure the test really cut writes short.
    assert mid_write_kills >= KILL_ROUNDS // 4, f"only {mid_write_kills} kills landed mid-write"


# --------------------------------------------------------------------------- SIGINT / SIGTERM


SIGNALS = pytest.mark.parametrize(
    ("signum", "exit_code", "word"),
    [
        (signal.SIGINT, 130, "interrupted"),
        (signal.SIGTERM, 143, "terminated"),
    ],
    ids=["sigint", "sigterm"],
)


def _stage_args(lay: Layout, kind: str) -> list[str]:
    if kind == "merge":
        return merge_args(lay)
    return ["aggregate", "data/mos", "--output", str(lay.corpus.relative_to(lay.root))]


def _writing(lay: Layout) -> bool:
    """Bytes have reached a temp file: every output is staged and the run is streaming."""
    for path in temps(lay.out):
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_size > 0:
                return True
    return False


def _staging(lay: Layout) -> bool:
    """The first temp file exists: the run is opening its outputs."""
    return bool(temps(lay.out))


def _assert_signalled_cleanly(
    lay: Layout, proc: subprocess.Popen[str], signum: int, exit_code: int, word: str, previous: OutputSetBytes
) -> None:
    proc.send_signal(signum)
    code, out, err = finish(proc)
    # The folder first, so a failure below is about the exit code or the message alone.
    assert temps(lay.out) == [], f"temp files left after {signal.Signals(signum).name}: {temps(lay.out)}"
    assert lay.snapshot() == previous
    assert code == exit_code, f"stdout: {out}\nstderr: {err}"
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0] == f"corpusprov: {word}; no output was written"


@pytest.mark.parametrize("kind", ["merge", "aggregate"])
@SIGNALS
def test_signal_mid_write_exits_cleanly(workdir: Path, kind: str, signum: int, exit_code: int, word: str) -> None:
    lay = layout(workdir, f"out-{kind}-{signum}")
    code, _, err = finish(start(_stage_args(lay, kind), workdir))
    assert code == 0, err
    previous = lay.snapshot()
    assert previous is not None

    proc = start(_stage_args(lay, kind), workdir)
    assert wait_for(lambda: _writing(lay), proc), "the run finished before it was seen writing"
    _assert_signalled_cleanly(lay, proc, signum, exit_code, word, previous)


@SIGNALS
def test_signal_while_outputs_are_being_opened_leaves_no_temp(
    workdir: Path, signum: int, exit_code: int, word: str
) -> None:
    # The narrowest window: the signal lands the moment the first temp file appears, while
    # the remaining outputs are being created. Repeated, since the window is a few microseconds.
    lay = layout(workdir, f"out-open-{signum}")
    code, _, err = finish(start(merge_args(lay), workdir))
    assert code == 0, err
    previous = lay.snapshot()
    assert previous is not None
    for _ in range(8):
        proc = start(merge_args(lay), workdir)
        assert wait_for(lambda: _staging(lay), proc), "the run finished before its temp files were seen"
        _assert_signalled_cleanly(lay, proc, signum, exit_code, word, previous)


# --------------------------------------------------------------------------- file size limit


def _limit_file_size(limit: int) -> Callable[[], None]:
    def preexec() -> None:
        _default_sigint()
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


@pytest.mark.parametrize(
    ("case", "args", "limit"),
    [
        # A multi-MB corpus: the limit is hit while rows stream out.
        ("merge-streaming", ["merge", "data/encode"], 1024 * 1024),
        # A ~300 KB corpus: everything is still buffered, the limit is hit when it is flushed.
        ("merge-small", ["merge", "small/encode.jsonl"], 64 * 1024),
        # aggregate also writes a spill temp file.
        ("aggregate", ["aggregate", "data/mos"], 512 * 1024),
    ],
)
def test_file_size_limit_is_a_clear_error_and_leaves_no_output(
    workdir: Path, case: str, args: list[str], limit: int
) -> None:
    lay = layout(workdir, f"out-fsize-{case}")
    full = [*args, "--output", str(lay.corpus.relative_to(workdir))]
    code, _, err = finish(start(full, workdir))
    assert code == 0, err
    previous = lay.snapshot()
    assert previous is not None
    assert len(previous.corpus) > limit

    # No .pyc writes: the limit applies from the first byte the child writes.
    proc = start(full, workdir, preexec=_limit_file_size(limit), env={"PYTHONDONTWRITEBYTECODE": "1"})
    code, _, err = finish(proc)

    # The folder first, so a failure below is about the message alone.
    assert temps(lay.out) == []
    assert lay.snapshot() == previous
    assert code == 1, f"exit {code}\nstderr: {err}"
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("corpusprov: error: "), lines[0]
    assert "Traceback" not in err and "internal error" not in err
    assert any(word in lines[0].lower() for word in ("size limit", "free space", "too large", "no space"))
    assert f"{lay.out.name}/m.jsonl" in lines[0], f"the message does not name the output: {lines[0]}"


def test_file_size_limit_with_no_previous_output_leaves_nothing(workdir: Path) -> None:
    lay = layout(workdir, "out-fsize-fresh")
    proc = start(merge_args(lay), workdir, preexec=_limit_file_size(1024 * 1024), env={"PYTHONDONTWRITEBYTECODE": "1"})
    code, _, err = finish(proc)
    assert not lay.out.exists() or list(lay.out.iterdir()) == []
    assert code == 1, err
    assert err.startswith("corpusprov: error: ") and len(err.splitlines()) == 1, err


# --------------------------------------------------------------------------- stale temp files


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_next_run_removes_temps_of_dead_pids_only(workdir: Path) -> None:
    lay = layout(workdir, "out-stale")
    metrics = workdir / "metrics-stale"
    metrics.mkdir()
    lay.out.mkdir()
    dead = _dead_pid()
    stale = [
        lay.out / f"{TEMP_PREFIX}{dead}-0badf00d-m.jsonl",
        lay.out / f"{TEMP_PREFIX}{NEVER_A_PID}-deadbeef-m.jsonl",
        lay.out / f"{TEMP_PREFIX}{dead}-0badf00d-spill-m.jsonl",
        lay.out / f"{TEMP_PREFIX}{NEVER_A_PID}-00c0ffee-m.rejects.jsonl",
        lay.out / f"{TEMP_PREFIX}{dead}-12345678-m.jsonl.manifest.json",
        metrics / f"{TEMP_PREFIX}{NEVER_A_PID}-abcdef01-merge.json",
    ]
    alive = [
        lay.out / f"{TEMP_PREFIX}{os.getpid()}-feedface-m.jsonl",
        lay.out / f"{TEMP_PREFIX}{os.getpid()}-feedface-m.jsonl.manifest.json",
    ]
    for path in [*stale, *alive]:
        path.write_bytes(b'{"half": "a row cut o')

    code, _, err = finish(
        start([*merge_args(lay, "small/encode.jsonl"), "--metrics-out", "metrics-stale/merge.json"], workdir)
    )
    assert code == 0, err
    assert [path for path in stale if path.exists()] == []
    assert all(path.exists() for path in alive), "a temp file of a live process was removed"
    assert set(temps(lay.out, metrics)) == set(alive)
    checked_manifest(lay.manifest, lay.corpus)


@pytest.mark.parametrize(
    ("output", "manifest_out"),
    [
        ("out/x-m.json", "out/m.json"),
        ("out/old-corpus.jsonl", "out/corpus.jsonl"),
    ],
)
def test_stale_temp_cleanup_never_removes_this_runs_own_temps(tmp_path: Path, output: str, manifest_out: str) -> None:
    # Cleaning next to one target matches `*-<target name>`; a sibling target whose name ends
    # in "-<that name>" must not lose its temp file to it.
    (tmp_path / "a.jsonl").write_text(json.dumps(encode_row()) + "\n", encoding="utf-8")
    done = run(
        ["corpusprov", "merge", "a.jsonl", "--output", output, "--manifest-out", manifest_out], tmp_path, check=False
    )
    assert done.returncode == 0, done.stderr
    checked_manifest(tmp_path / manifest_out, tmp_path / output)
    assert temps(tmp_path / "out") == []


# --------------------------------------------------------------------------- concurrency


@pytest.fixture(scope="module")
def race(workdir: Path) -> dict[str, OutputSetBytes]:
    """Two params files whose merges differ (keep first / keep last) and each one's complete output."""
    expected: dict[str, OutputSetBytes] = {}
    for keep in ("first", "last"):
        (workdir / f"params-{keep}.yaml").write_text(f"merge:\n  dedup:\n    keep: {keep}\n", encoding="utf-8")
        lay = layout(workdir, f"out-race-{keep}")
        code, _, err = finish(start([*merge_args(lay), "--params", f"params-{keep}.yaml"], workdir))
        assert code == 0, err
        snapshot = lay.snapshot()
        assert snapshot is not None
        expected[keep] = snapshot
    assert expected["first"].corpus != expected["last"].corpus
    return expected


def test_two_direct_runs_to_one_output_never_mix(workdir: Path, race: dict[str, OutputSetBytes]) -> None:
    lay = layout(workdir, "out-race")
    winners = []
    for attempt in range(5):
        lay.restore(None)
        procs = {
            keep: start([*merge_args(lay), "--params", f"params-{keep}.yaml"], workdir) for keep in ("first", "last")
        }
        for keep, proc in procs.items():
            code, _, err = finish(proc)
            assert code == 0, f"attempt {attempt}, keep {keep}: {err}"
        corpus = lay.corpus.read_bytes()
        winner = next((keep for keep, item in race.items() if item.corpus == corpus), None)
        assert winner is not None, f"attempt {attempt}: the corpus is neither run's complete output"
        manifest = checked_manifest(lay.manifest, lay.corpus)
        assert manifest.params["path"] == f"params-{winner}.yaml", (
            f"attempt {attempt}: corpus from keep={winner}, manifest from {manifest.params['path']}"
        )
        assert manifest.policy["dedup"]["keep"] == winner
        rejects_entry = manifest.output("rejects")
        assert rejects_entry is not None and rejects_entry.md5 == md5(lay.rejects.read_bytes())
        assert temps(lay.out) == []
        winners.append(winner)
    assert len(winners) == 5


@contextlib.contextmanager
def _reaped(procs: list[subprocess.Popen[str]]) -> Iterator[None]:
    try:
        yield
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.mark.dvc
def test_two_dvc_repro_at_once_fail_clearly_on_the_lock(template_repo: Callable[..., Path]) -> None:
    # Enough rows that the first repro holds DVC's lock longer than DVC's 3 s retry window.
    repo = template_repo(rows=4000)
    procs = [
        subprocess.Popen(
            ["dvc", "repro"], cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_child_env()
        )
        for _ in range(2)
    ]
    with _reaped(procs):
        results = [finish(proc, timeout=300) for proc in procs]
    failed = [(code, out, err) for code, out, err in results if code != 0]
    assert len(failed) <= 1, f"both dvc repro runs failed:\n{results}"
    for code, out, err in failed:
        text = (out + err).lower()
        assert code != 0
        assert "unable to acquire lock" in text or "is busy" in text, f"failure does not name the lock:\n{err}"
        assert "traceback" not in text
    for folder in ("data/merged", "data/unified", "metrics"):
        assert temps(repo / folder) == []

    run(["dvc", "repro"], repo)
    done = run(["corpusprov", "verify"], repo)
    assert done.returncode == 0, done.stdout + done.stderr
