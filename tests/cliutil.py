"""The one small subprocess helper of the robustness tests: start
``python -m netq.run`` as a user would, find its workers, wait for pids to
go.  Every wait is bounded; a process left running is killed."""
from __future__ import annotations

import os
import subprocess
import sys
import time

from shm.ipc import child_pids, netq_objects, pid_alive

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def start(*args: str, **kw) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.Popen([sys.executable, "-m", "netq.run", *args], cwd=kw.pop("cwd", ROOT),
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **kw)


def finish(p: subprocess.Popen, timeout: float = 120) -> tuple[int, str, str]:
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, 9)
        p.communicate()
        raise AssertionError(f"netq did not end within {timeout}s") from None
    return p.returncode, out, err


def run(*args: str, timeout: float = 120, **kw) -> tuple[int, str, str]:
    return finish(start(*args, **kw), timeout)


def wait_workers(pid: int, n: int, timeout: float = 30.0) -> list[int]:
    """The first ``n`` children of ``pid`` (the NIC and the CPUs)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kids = [k for k in child_pids(pid) if pid_alive(k)]
        if len(kids) >= n:
            return kids
        time.sleep(0.02)
    raise AssertionError(f"{n} workers of {pid} did not start within {timeout}s")


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    """The pids still alive after ``timeout`` s (zombies count as gone)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        time.sleep(0.01)
    return [p for p in pids if pid_alive(p)]


def leftovers(pid: int) -> list[str]:
    return [o.entry for o in netq_objects() if o.pid == pid]


def kill_all(pids: list[int]) -> None:
    for p in pids:
        try:
            os.kill(p, 9)
        except ProcessLookupError:
            pass
