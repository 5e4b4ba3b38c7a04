"""Load studies on a Dask cluster (scripts/sweep.py --local-cluster N): the
same rows as the in-process sweep, every row once when a worker dies
mid-study, and --resume across cluster runs.

Each study is the quick ``queues`` study (4 points x 0.3 s) run as a user
runs it, in a subprocess with a hard timeout (tests/harness.py). Timing is
not asserted: the wall-clock points run one at a time per machine anyway."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import time

import pytest

from netq.app import sweep
from shm.ipc import netq_objects, pid_alive
from tests import harness

pytest.importorskip("distributed", reason="the dist extra (dask distributed) is not installed")

SWEEP = os.path.join(harness.ROOT, "scripts", "sweep.py")
#: a killed worker's lock lease must expire quickly in a test
FAST_LEASES = {
    "DASK_DISTRIBUTED__SCHEDULER__LOCKS__LEASE_TIMEOUT": "3s",
    "DASK_DISTRIBUTED__SCHEDULER__LOCKS__LEASE_VALIDATION_INTERVAL": "500ms",
}


def rows_of(out) -> list[dict[str, str]]:
    with open(os.path.join(out, "queues.csv"), newline="") as f:
        return list(csv.DictReader(f))


def keys_of(rows: list[dict[str, str]]) -> list[tuple[str, ...]]:
    return sorted(tuple(r[k] for k in sweep.KEY) for r in rows)


def plan_keys(*args: str) -> list[tuple[str, ...]]:
    opts = sweep.parse_args(["queues", "--quick", *args])
    assert opts is not None
    return sorted(p.key(r) for p, r in opts.plan())


def run_sweep(*args: str, timeout: float = 240) -> harness.Ran:
    return harness.run(
        [SWEEP, "queues", "--quick", *args], harness.env(**FAST_LEASES), timeout=timeout
    )


def test_a_local_cluster_gives_the_rows_of_the_in_process_sweep(tmp_path):
    alone, spread = tmp_path / "alone", tmp_path / "spread"
    a = run_sweep("--out", str(alone))
    b = run_sweep("--out", str(spread), "--local-cluster", "2")
    assert a.returncode in (0, 1) and b.returncode in (0, 1), a.output + b.output
    ra, rb = rows_of(alone), rows_of(spread)
    assert keys_of(ra) == keys_of(rb) == plan_keys()
    assert list(ra[0]) == list(rb[0])  # the same columns, in the same order
    assert all(r["worker_host"] and int(r["worker_cores"]) >= 1 for r in ra + rb)
    assert "Dask cluster of 2 worker(s)" in b.stderr
    assert not [o for o in netq_objects() if not pid_alive(o.pid)]


def _ppid(pid: int) -> int:
    """The parent of ``pid`` (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def _task_children(root: int) -> list[tuple[int, int]]:
    """(pid, parent pid) of every running netq.app.sweep.task process that
    descends from ``root`` (this test's sweep: never another session's)."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if b"netq.app.sweep.task" not in cmd:
            continue
        ppid = _ppid(int(p))
        a = ppid
        while a > 1 and a != root:
            a = _ppid(a)
        if a == root:
            out.append((int(p), ppid))
    return out


def test_a_worker_killed_mid_study_still_gives_every_row_once(tmp_path):
    out = tmp_path / "killed"
    p = harness.start(
        [SWEEP, "queues", "--quick", "--repeat", "2", "--out", str(out), "--local-cluster", "2"],
        harness.env(**FAST_LEASES),
    )
    try:
        deadline = time.monotonic() + 120
        tasks: list[tuple[int, int]] = []
        while time.monotonic() < deadline and p.poll() is None and not tasks:
            tasks = _task_children(p.pid)
            time.sleep(0.05)
        assert tasks, "no point started on the cluster"
        child, worker = tasks[0]
        os.kill(worker, signal.SIGKILL)  # the Dask worker running a point
        r = harness.finish(p, 240, "sweep with a killed worker")
    except BaseException:
        harness.kill(p)
        raise
    rows = rows_of(out)
    assert r.returncode in (0, 1), r.output
    assert keys_of(rows) == plan_keys("--repeat", "2")  # every row, each once
    assert harness.wait_gone([child], 10) == []  # the point's process died with its worker
    # the next task on the machine removed what the killed run left
    assert not [o for o in netq_objects() if not pid_alive(o.pid)]


def test_resume_across_cluster_runs(tmp_path):
    out = tmp_path / "resumed"
    first = run_sweep("--out", str(out), "--local-cluster", "2")
    assert first.returncode in (0, 1), first.output
    kept = rows_of(out)
    again = run_sweep("--out", str(out), "--local-cluster", "2", "--repeat", "2", "--resume")
    assert again.returncode in (0, 1), again.output
    assert "4 of 8 runs already in" in again.stderr
    rows = rows_of(out)
    assert keys_of(rows) == plan_keys("--repeat", "2")
    assert rows[: len(kept)] == kept  # the first run's rows untouched


@pytest.mark.parametrize(
    "args,field",
    [
        (["--local-cluster", "0"], "--local-cluster"),
        (["--local-cluster", "2", "--scheduler", "tcp://127.0.0.1:1"], "--scheduler"),
        (["--scheduler", " "], "--scheduler"),
    ],
)
def test_bad_cluster_arguments_exit_2_with_one_line(tmp_path, args, field):
    r = harness.run([SWEEP, "queues", "--quick", "--out", str(tmp_path / "x"), *args], timeout=60)
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1 and field in r.stderr, r.stderr
    assert not (tmp_path / "x").exists()


def test_the_point_process_exits_with_its_worker():
    """A point's process is started with a parent-death signal: when the
    worker that started it dies, so does it (and the run it supervises)."""
    code = (
        "import os, subprocess, sys, time\n"
        "from workers.platform import die_with_parent\n"
        "me = os.getpid()\n"
        "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'],"
        " preexec_fn=lambda: die_with_parent(me))\n"
        "print(c.pid, flush=True)\n"
        "os._exit(0)\n"
    )
    out = subprocess.run(
        [harness.sys.executable, "-c", code],
        cwd=harness.ROOT,
        env=harness.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert harness.wait_gone([int(out.stdout.split()[0])], 10) == []
