"""What a worker needs from the host OS, and measured platform costs.

Process lifetime: every worker is forked by the supervisor and must not
outlive it.  :func:`die_with_parent` asks the kernel (``prctl(2)``
``PR_SET_PDEATHSIG``) to send SIGKILL to the worker when its parent thread
exits -- even when the parent is killed by SIGKILL and runs no cleanup --
and then checks that the parent is still the process that forked it (the
supervisor may have died between ``fork`` and ``prctl``; the worker would
then already be a child of init and no death signal would ever come).

Platform costs: the size of every timing effect netq shows depends on what
a lock operation and a context switch cost on the host, so each run
measures the basics in a few milliseconds before the workers start, side by
side with the run.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time

import posix_ipc

#: include/uapi/linux/prctl.h
PR_SET_PDEATHSIG = 1
PR_GET_PDEATHSIG = 2

_libc = ctypes.CDLL(None, use_errno=True)


def die_with_parent(parent_pid: int) -> None:
    """SIGKILL this process when its parent dies; exit now if it already has.

    ``parent_pid`` is the forker's pid, read before the fork.  Linux only
    (prctl); the death signal fires when the parent *thread* exits, and the
    supervisor forks from its main thread, which lives as long as it does."""
    if _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_PDEATHSIG): {os.strerror(err)}")
    if os.getppid() != parent_pid:
        os._exit(1)  # the supervisor died before prctl: nobody will stop us


def parent_death_signal() -> int:
    """The death signal set for this process (0: none), from PR_GET_PDEATHSIG."""
    sig = ctypes.c_int(0)
    if _libc.prctl(PR_GET_PDEATHSIG, ctypes.byref(sig), 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_GET_PDEATHSIG): {os.strerror(err)}")
    return sig.value


def proc_state(pid: int) -> str | None:
    """The state letter of ``pid`` in /proc/PID/stat (R, S, D, T stopped,
    t traced, Z zombie ...), or None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0].decode()
    except (OSError, IndexError):
        return None


def measure_platform(owner, n: int = 20000) -> dict:
    """raw semaphore acquire+release, a failing try-acquire, a clock read."""
    sem = owner.semaphore("platform", 1)
    acq, rel = sem.acquire, sem.release
    pc = time.perf_counter_ns

    def loop_ns(body, k):
        best = None
        for _ in range(3):
            t0 = pc()
            body(k)
            dt = (pc() - t0) / k
            best = dt if best is None else min(best, dt)
        return best

    def empty(k):
        for _ in range(k):
            pass

    def pair(k):
        for _ in range(k):
            acq()
            rel()

    def clock(k):
        for _ in range(k):
            pc()

    def failed_try(k):
        for _ in range(k):
            try:
                acq(0)
            except posix_ipc.BusyError:
                pass

    base = loop_ns(empty, n)
    out = {
        "raw_sem_pair_ns": round(loop_ns(pair, n) - base, 1),
        "clock_read_ns": round(loop_ns(clock, n) - base, 1),
    }
    acq()
    out["failed_trylock_ns"] = round(loop_ns(failed_try, n // 10) - base, 1)
    rel()
    return out
