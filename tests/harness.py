"""Running netq in a subprocess, as a user does, for the tests that need it
(tests/test_run.py, tests/test_stress.py, tests/test_sweep.py,
tests/test_robust.py, tests/test_bad_input.py).

Every process is started in its own session (process group), so that a test
that gives up on it can end the whole tree: the supervisor and the workers it
forked.  Every wait is bounded.  When a wait runs out the group is killed,
the process reaped, the IPC objects it owned (``/netq.<pid>.*``) unlinked, and
the test fails with what the process printed; nothing is left for the next
test to trip over.  A process that ends by itself is left as it ended: the
tests check that it cleaned up after itself (:func:`leftovers`,
:func:`children`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

from shm.ipc import child_pids, netq_objects, pid_alive

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: processes of this tree: a stuck one is ended with its workers
children = child_pids


class Ran:
    """How a finished process ended and what it printed."""

    def __init__(self, code: int, stdout: str, stderr: str, pid: int) -> None:
        self.returncode, self.stdout, self.stderr, self.pid = code, stdout, stderr, pid

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def env(**extra: str) -> dict[str, str]:
    """The environment of a run: this checkout first on the path."""
    out = dict(os.environ, PYTHONPATH=ROOT)
    out.update(extra)
    return out


def spawn(
    cmd: list[str], env_: dict[str, str] | None = None, cwd: str | None = None
) -> subprocess.Popen:
    """``CMD...`` from the checkout (or ``cwd``), in a session of its own."""
    return subprocess.Popen(
        cmd,
        cwd=cwd or ROOT,
        env=env_ or env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def start(
    argv: list[str], env_: dict[str, str] | None = None, cwd: str | None = None
) -> subprocess.Popen:
    """``python ARGV...`` (this interpreter)."""
    return spawn([sys.executable, *argv], env_, cwd)


def start_netq(
    *args: str, env_: dict[str, str] | None = None, cwd: str | None = None
) -> subprocess.Popen:
    """``python -m netq.run ARGS...``."""
    return start(["-m", "netq.run", *args], env_, cwd)


def kill(p: subprocess.Popen) -> tuple[str, str]:
    """End ``p`` and everything in its process group, reap it, unlink the IPC
    objects it owned; returns what it printed."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(p.pid, signal.SIGKILL)
    try:
        out, err = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:  # cannot happen after SIGKILL, short of a kernel bug
        out, err = "", ""
    for o in netq_objects():
        if o.pid == p.pid:
            o.unlink()
    return out or "", err or ""


def finish(p: subprocess.Popen, timeout: float = 60.0, what: str = "") -> Ran:
    """Wait at most ``timeout`` seconds for ``p`` to end; if it does not,
    :func:`kill` it and fail the test with its output."""
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        out, err = kill(p)
        raise AssertionError(
            f"{what or p.pid} did not end within {timeout} s:\n{out}\n{err}"
        ) from None
    return Ran(p.returncode, out, err, p.pid)


def run(
    argv: list[str],
    env_: dict[str, str] | None = None,
    timeout: float = 120,
    cwd: str | None = None,
) -> Ran:
    """``python ARGV...`` to its end (bounded)."""
    return finish(start(argv, env_, cwd), timeout, " ".join(argv))


def run_cmd(cmd: list[str], env_: dict[str, str] | None = None, timeout: float = 120) -> Ran:
    """``CMD...`` to its end (bounded)."""
    return finish(spawn(cmd, env_), timeout, " ".join(cmd))


def netq(
    *args: str, env_: dict[str, str] | None = None, timeout: float = 120, cwd: str | None = None
) -> Ran:
    """``python -m netq.run ARGS...`` to its end (bounded)."""
    return run(["-m", "netq.run", *args], env_, timeout, cwd)


def wait_children(p: subprocess.Popen, n: int, timeout: float = 30.0) -> list[int]:
    """The pids of ``p``'s children once there are ``n`` of them (the workers)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kids = children(p.pid)
        if len(kids) >= n:
            return kids
        if p.poll() is not None:
            break
        time.sleep(0.05)
    out, err = kill(p)
    raise AssertionError(f"{n} workers did not start within {timeout} s:\n{out}\n{err}")


def wait_until(p: subprocess.Popen, ready, timeout: float, what: str) -> None:
    """Poll ``ready()`` until it is true while ``p`` runs; if ``p`` ends
    first or the time runs out, end it and fail with ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and p.poll() is None:
        if ready():
            return
        time.sleep(0.05)
    out, err = kill(p)
    raise AssertionError(f"{what}:\n{out}\n{err}")


def leftovers(pid: int) -> list[str]:
    """IPC objects in /dev/shm owned by ``pid``."""
    return [o.entry for o in netq_objects() if o.pid == pid]


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    """The pids still alive after ``timeout`` s (zombies count as gone)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        time.sleep(0.01)
    return [p for p in pids if pid_alive(p)]


def kill_all(pids: list[int]) -> None:
    """SIGKILL every pid still there (the last resort of a failing test)."""
    for p in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)
