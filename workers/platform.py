"""Measured platform costs, reported in every run's setup.

The size of every timing effect netq shows depends on what a lock operation
and a context switch cost on the host, so each run measures the basics in a
few milliseconds before the workers start, side by side with the run.
"""
from __future__ import annotations

import time

import posix_ipc


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
    out = {"raw_sem_pair_ns": round(loop_ns(pair, n) - base, 1),
           "clock_read_ns": round(loop_ns(clock, n) - base, 1)}
    acq()
    out["failed_trylock_ns"] = round(loop_ns(failed_try, n // 10) - base, 1)
    rel()
    return out
