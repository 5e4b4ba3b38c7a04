"""Helpers for multi-process tests of shm/: bounded joins that always clean up."""

from __future__ import annotations

import os
import signal
import time

import multiprocess as mp

CTX = mp.get_context("fork")


def start(target, *args) -> mp.Process:
    p = CTX.Process(target=target, args=args, daemon=True)
    p.start()
    return p


def join_all(procs, timeout: float = 30.0) -> list[int]:
    """Join every process within ``timeout`` s in all; kill stragglers.

    Returns the exit codes; raises AssertionError if any had to be killed.
    """
    deadline = time.monotonic() + timeout
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
    stuck = [p for p in procs if p.is_alive()]
    for p in stuck:
        os.kill(p.pid, signal.SIGKILL)
        p.join(5)
    assert not stuck, f"{len(stuck)} process(es) did not finish in {timeout}s"
    return [p.exitcode for p in procs]


def wait_until(pred, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.001)
