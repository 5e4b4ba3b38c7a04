#!/usr/bin/env python3
"""Micro-benchmarks of netq's shared-memory primitives, side by side.

    python scripts/bench_shm.py [--json PATH] [--quick]

Measured in one run (all values in ns, medians):

raw_sem_pair_ns
    ``posix_ipc.Semaphore.acquire()`` + ``release()``, uncontended: the floor
    every netq lock is built on.
spin_lock_pair_ns, spin_lock_pair_ns_unfair
    ``SpinLock.lock()`` + ``unlock()`` uncontended (statistics are always on
    in shm/lock.py), fifo (the default) and unfair; with the ratio of each to
    raw_sem_pair_ns.  Target (fifo): <= 2.5x.
ring_single_ns
    ``Ring.produce`` + ``Ring.consume`` of one descriptor (the compiled ring
    type's methods when shm.native builds it).  Target: <= 200.
ring_batch64_ns
    ``Ring.produce_batch`` + ``Ring.consume_batch`` of 64, per descriptor.
    Target: <= 20.
handoff_ns_<waiting>[_unfair]
    Two processes pinned to different cores pass one lock back and forth.  In
    each round the holder waits until the other process is *waiting* for the
    lock (its ``lock_waiters.waiting_for`` word names the lock), keeps holding
    for a short while (so a blocking waiter really is asleep), writes
    ``perf_counter_ns()`` to shared memory and calls ``unlock()``; the waiter
    writes ``perf_counter_ns()`` as soon as ``lock()`` returns.  The handoff is
    the difference: what a waiter experiences from the holder's release to
    owning the lock (unlock's own cost included).  CLOCK_MONOTONIC is one
    clock for the whole machine, so stamps of two processes compare directly;
    this is measured one-way, which is what round-trip/2 estimates.
    ``handoff_ns_adaptive_slept`` holds longer than the adaptive spin window,
    so the adaptive waiter has gone to sleep when the lock is released.

Micro-benchmarks run the loop inside a function with locals bound, subtract
the cost of an empty loop of the same length, and report the median of
several repetitions; the repetitions of all micro-benchmarks are interleaved
(and the process pinned to one core) so that a VM's drifting speed hits them
alike: their ratios are reliable even when the absolute values wander.  Targets are checked and printed but never change the
exit status: this is a benchmark, not a test.

Every segment and semaphore is created through an :class:`shm.ipc.IpcOwner`
used as a context manager, and child processes are killed and joined in
``finally``, so nothing is left in /dev/shm after Ctrl-C, SIGTERM or an error.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import statistics
import sys
import time
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:  # scripts/ is not a package: benchlib sits beside this file
    sys.path.insert(0, _HERE)
import benchlib  # also puts the repo root on sys.path when run from a checkout
import numpy as np
from benchlib import (
    Empty,
    Table,
    check_targets,
    close_quietly,
    fmt,
    loop_of,
    loop_pair,
    measure_interleaved,
    medians,
    ratio_median,
)

from shm import native
from shm.ipc import IpcOwner
from shm.layout import Layout
from shm.lock import WAITER, LockPolicy, LockSpace, lock_layout
from shm.region import Region
from shm.ring import DESC_WORDS, Ring, ring_sections

try:
    import multiprocess as mp
except ImportError:  # pragma: no cover - multiprocess is an install requirement
    import multiprocessing as mp

CTX = mp.get_context("fork")

#: Targets: name -> (description, function(results) -> limit in ns)
TARGETS = {
    # judged on spin_lock_ratio_fifo (median of per-repetition ratios)
    "spin_lock_pair_ns": ("<= 2.5 x raw_sem_pair_ns", lambda r: 2.5 * r["raw_sem_pair_ns"]),
    "ring_single_ns": ("<= 200", lambda r: 200.0),
    "ring_batch64_ns": ("<= 20", lambda r: 20.0),
}

#: Adaptive spin window used in the handoff runs (LockPolicy's default).
SPIN_NS = 20_000
#: How long a holder keeps the lock after it sees the other process waiting.
HOLD_NS = 5_000
#: Hold for the "adaptive, waiter already asleep" case: past the spin window.
HOLD_SLEPT_NS = SPIN_NS + 30_000


# --------------------------------------------------------------------------
# loops (bodies kept minimal; everything bound to locals; the generic ones,
# loop_pair and loop_of, are in benchlib)
# --------------------------------------------------------------------------
def loop_sem_pair(sem, timeout=None):
    """acquire()+release(); with a timeout, acquire(timeout)+release(): 0 is
    sem_trywait, > 0 is sem_timedwait."""
    if timeout is None:
        return loop_pair(sem.acquire, sem.release)
    return loop_pair(sem.acquire, sem.release, timeout)


def loop_lock_pair(lk):
    """lock()+unlock() of one SpinLock."""
    return loop_pair(lk.lock, lk.unlock)


def loop_ring_single(ring):
    """produce()+consume() of one descriptor."""
    return loop_pair(ring.produce, ring.consume, (0, 1, 2, 3, 1500, 0, 123456789, 0))


def loop_ring_batch(ring, batch: int):
    """produce_batch()+consume_batch() of ``batch`` descriptors."""
    block = np.arange(batch * DESC_WORDS, dtype=np.int64).reshape(batch, DESC_WORDS)

    def run(n: int) -> int:
        produce, consume = ring.produce_batch, ring.consume_batch
        b = block
        k = batch
        r = range(n)
        pc = time.perf_counter_ns
        t0 = pc()
        for _ in r:
            produce(b)
            consume(k)
        return pc() - t0

    return run


# --------------------------------------------------------------------------
# breakdown of the uncontended lock path (printed when the target is missed)
# --------------------------------------------------------------------------
def lock_breakdown(sem, lk, n: int, reps: int) -> dict[str, float]:
    """Per-operation costs of the pieces SpinLock's uncontended path is made of."""
    rec = lk.rec
    st = list(lk.st)

    def mv_read(n):
        w = rec
        r = range(n)
        pc = time.perf_counter_ns
        t0 = pc()
        for _ in r:
            w[3]
        return pc() - t0

    def mv_write(n):
        w = rec
        r = range(n)
        pc = time.perf_counter_ns
        t0 = pc()
        for _ in r:
            w[2] = 7
        return pc() - t0

    def list_rmw(n):
        s = st
        r = range(n)
        pc = time.perf_counter_ns
        t0 = pc()
        for _ in r:
            s[0] += 1
        return pc() - t0

    benches = [
        ("sem.acquire()+release()       [sem_wait: raw]", loop_sem_pair(sem), n, 1),
        ("sem.acquire(0)+release()      [sem_trywait: unfair lock]", loop_sem_pair(sem, 0), n, 1),
        (
            "sem.acquire(0.05)+release()   [sem_timedwait: fifo _guard]",
            loop_sem_pair(sem, 0.05),
            n,
            1,
        ),
        ("time.perf_counter_ns()", loop_of(time.perf_counter_ns), n, 1),
        ("Python method call (empty body)", loop_of(Empty().method), n, 1),
        # the record view's type: the compiled Words, or memoryview (NETQ_NATIVE=0)
        (f"shared word read  ({type(rec).__name__}[i])", mv_read, n, 1),
        (f"shared word write ({type(rec).__name__}[i] = x)", mv_write, n, 1),
        ("private stat update (list[i] += 1)", list_rmw, n, 1),
    ]
    out = medians(measure_interleaved(benches, reps))

    # lock() and unlock() on their own: perf_counter_ns around each call, the
    # cost of an empty stamp pair subtracted.
    def split(n):
        lock, unlock = lk.lock, lk.unlock
        pc = time.perf_counter_ns
        tl = tu = te = 0
        for _ in range(n):
            a = pc()
            b = pc()
            lock()
            c = pc()
            unlock()
            d = pc()
            te += b - a
            tl += c - b
            tu += d - c
        return tl, tu, te

    split(2000)
    ls, us = [], []
    gc.disable()
    try:
        for _ in range(reps):
            tl, tu, te = split(n)
            ls.append((tl - te) / n)
            us.append((tu - te) / n)
    finally:
        gc.enable()
    out["SpinLock.lock() alone   (fifo)"] = statistics.median(ls)
    out["SpinLock.unlock() alone (fifo)"] = statistics.median(us)
    return out


# --------------------------------------------------------------------------
# single-process benchmarks
# --------------------------------------------------------------------------
def micro_benchmarks(n_lock: int, n_ring: int, reps: int, core: int):
    """raw semaphore, both lock fairnesses, ring single/batch: interleaved.

    Returns (medians, per-rep values, lock stats rows, fifo lock breakdown).
    """
    with contextlib.ExitStack() as stack:
        stack.enter_context(benchlib.pinned(core))
        # One owner per lock space: LockSpace names its semaphores lock0, ...
        o_raw = stack.enter_context(IpcOwner())
        sem = o_raw.semaphore("bench_sem", 1)
        locks = {}
        for fairness in ("fifo", "unfair"):
            o = stack.enter_context(IpcOwner())
            layout = Layout()
            lock_layout(layout, 1, 1)
            region = Region(o, f"bench_lock_{fairness}", layout)
            stack.callback(close_quietly, region)
            space = LockSpace(o, region, ["bench"], 1, LockPolicy(fairness))
            (lk,) = space.bind(0)
            locks[fairness] = (space, lk)
        layout = Layout()
        ring_sections(layout, "r", 1, 1024)
        rregion = Region(o_raw, "bench_ring", layout)
        stack.callback(close_quietly, rregion)
        ring = Ring(rregion, "r", 0)
        benches = [
            ("raw_sem_pair_ns", loop_sem_pair(sem), n_lock, 1),
            ("spin_lock_pair_ns", loop_lock_pair(locks["fifo"][1]), n_lock, 1),
            ("spin_lock_pair_ns_unfair", loop_lock_pair(locks["unfair"][1]), n_lock, 1),
            ("ring_single_ns", loop_ring_single(ring), n_ring, 1),
            ("ring_batch64_ns", loop_ring_batch(ring, 64), max(1, n_ring // 64), 64),
            # a yardstick of this machine's Python speed (VMs drift a lot)
            ("ref_method_call_ns", loop_of(Empty().method), n_lock, 1),
        ]
        vals = measure_interleaved(benches, reps)
        assert len(ring) == 0
        rows = {}
        for fairness, (space, _) in locks.items():
            # statistics are written in place
            (rows[fairness],) = space.stats()
        breakdown = lock_breakdown(sem, locks["fifo"][1], n_lock, reps)
        del ring, locks, space, lk, benches  # drop views before the regions close
    return medians(vals), vals, rows, breakdown


# --------------------------------------------------------------------------
# handoff between two pinned processes
# --------------------------------------------------------------------------
# flag words
_HELD, _DONE, _ABORT = 0, 1, 2
#: the handoff space has one lock
_LOCK_ID = 0


class _Timeout(Exception):
    pass


def _player(me, space, region, cores, rounds, hold_ns, yield_poll, limit_s):
    """One of the two processes passing the lock (``me`` is 0 or 1)."""
    os.sched_setaffinity(0, {cores[me]})
    w = region.words
    lay = region.layout
    f = lay["flags"].offset
    rel = lay["stamps"].offset  # row 0: release stamps
    acq = rel + rounds  # row 1: acquire stamps
    other_waiting = lay["lock_waiters"].base(1 - me) + WAITER.waiting_for
    pc = time.perf_counter_ns
    sched_yield = os.sched_yield
    deadline = pc() + int(limit_s * 1e9)

    def stuck(what):
        if w[f + _ABORT]:
            raise _Timeout(f"cpu {me}: aborted while waiting for {what}")
        if pc() > deadline:
            raise _Timeout(f"cpu {me}: timed out waiting for {what}")
        if yield_poll:
            sched_yield()

    try:
        (lk,) = space.bind(me)
        lock, unlock = lk.lock, lk.unlock
        if me == 0:
            lock()  # uncontended: the first holder
            w[f + _HELD] = 1
        else:
            while not w[f + _HELD]:
                stuck("the first holder")
        for k in range(rounds):
            if k & 1 == me:
                # Releaser: wait until the other process waits for the lock.
                while w[other_waiting] != _LOCK_ID:
                    stuck("the other process to wait")
                if hold_ns:
                    t = pc() + hold_ns
                    while pc() < t:
                        pass
                w[rel + k] = pc()
                unlock()
                # Do not try to take it back before the other has it (unfair).
                while w[f + _DONE] != k + 1:
                    stuck("the acquirer's stamp")
            else:
                lock()
                w[acq + k] = pc()
                w[f + _DONE] = k + 1
        if (rounds - 1) & 1 != me:
            unlock()  # the last acquirer still holds it
        # statistics are written in place
    except _Timeout as e:
        print(f"bench_shm: {e}", file=sys.stderr)
        os._exit(2)


def bench_handoff(fairness, waiting, rounds, hold_ns, cores, limit_s):
    """Median handoff latency (ns) and details for one lock policy."""
    policy = LockPolicy(fairness, waiting, spin_ns=SPIN_NS, yield_spin=len(set(cores)) < 2)
    with IpcOwner() as owner:
        layout = Layout()
        lock_layout(layout, 1, 2)
        layout.add_raw("stamps", (2, rounds))
        layout.add_raw("flags", (8,))
        region = Region(owner, "bench_handoff", layout)
        f = layout["flags"].offset
        words = region.words
        space = LockSpace(
            owner, region, ["handoff"], 2, policy, abort=lambda: words[f + _ABORT] != 0
        )
        procs = []
        try:
            for me in (0, 1):
                p = CTX.Process(
                    target=_player,
                    args=(me, space, region, cores, rounds, hold_ns, len(set(cores)) < 2, limit_s),
                    daemon=True,
                )
                p.start()
                procs.append(p)
            end = time.monotonic() + limit_s + 5
            for p in procs:
                p.join(max(0.0, end - time.monotonic()))
        finally:
            words[f + _ABORT] = 1  # unwedge anything still waiting
            for p in procs:
                if p.is_alive():
                    p.join(0.5)
                if p.is_alive():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(p.pid, signal.SIGKILL)
                    p.join(5)
        codes = [p.exitcode for p in procs]
        if codes != [0, 0]:
            close_quietly(region)
            raise RuntimeError(f"handoff {fairness}/{waiting}: players exited {codes}")
        st = region.array("stamps")
        lat = (st[1] - st[0]).copy()
        del st
        (row,) = space.stats()
        del words, space
        close_quietly(region)
    warm = min(20, rounds // 10)
    lat = lat[warm:]
    return {
        "median_ns": float(np.median(lat)),
        "p10_ns": float(np.percentile(lat, 10)),
        "p90_ns": float(np.percentile(lat, 90)),
        "p99_ns": float(np.percentile(lat, 99)),
        "min_ns": int(lat.min()),
        "rounds": len(lat),
        "hold_ns": hold_ns,
        "contentions": row["contentions"],
        "sleeps": row["sleeps"],
        "sleep_fraction": row["sleeps"] / row["contentions"] if row["contentions"] else 0.0,
    }


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------
def pick_cores() -> tuple[list[int], str]:
    """The two cores the handoff players are pinned to, and a note saying so."""
    aff = sorted(os.sched_getaffinity(0))
    if len(aff) >= 2:
        return [aff[0], aff[1]], f"players pinned to cores {aff[0]} and {aff[1]}"
    return [aff[0], aff[0]], (
        f"only 1 core available: both players pinned to core {aff[0]} "
        "(handoffs include a context switch; spinning yields)"
    )


def main(argv=None) -> int:
    args = benchlib.arg_parser(__doc__).parse_args(argv)

    if args.quick:
        n_lock, n_ring, reps, rounds, limit = 2_000, 2_048, 5, 200, 20.0
    else:
        n_lock, n_ring, reps, rounds, limit = 10_000, 12_800, 41, 4_000, 120.0
    cores, core_note = pick_cores()
    machine = benchlib.machine_info({"handoff_cores": cores}, lock_backend=False, loadavg=False)
    machine["handoff_pinning"] = core_note
    t_start = time.monotonic()

    res: dict[str, float] = {}
    details: dict[str, dict[str, Any]] = {}

    # A scope that turns SIGTERM/SIGHUP into an exception so that every
    # IpcOwner below unlinks what it made (Ctrl-C is a KeyboardInterrupt).
    with benchlib.signal_scope():
        meds, vals, rows, breakdown = micro_benchmarks(n_lock, n_ring, reps, cores[0])
        res["raw_sem_pair_ns"] = meds["raw_sem_pair_ns"]
        for fairness, key in (
            ("fifo", "spin_lock_pair_ns"),
            ("unfair", "spin_lock_pair_ns_unfair"),
        ):
            res[key] = meds[key]
            # Median of per-repetition ratios: each lock repetition ran right
            # after a raw one, under the same machine conditions.
            res[f"spin_lock_ratio_{fairness}"] = ratio_median(vals[key], vals["raw_sem_pair_ns"])
        res["ring_single_ns"] = meds["ring_single_ns"]
        res["ring_batch64_ns"] = meds["ring_batch64_ns"]
        res["ref_method_call_ns"] = meds["ref_method_call_ns"]
        details["reps_ns"] = vals
        details["spin_lock_acquisitions"] = {f: r["acquisitions"] for f, r in rows.items()}

        handoff_runs = [
            ("fifo", "spin", HOLD_NS, "handoff_ns_spin"),
            ("fifo", "block", HOLD_NS, "handoff_ns_block"),
            ("fifo", "adaptive", HOLD_NS, "handoff_ns_adaptive"),
            ("unfair", "spin", HOLD_NS, "handoff_ns_spin_unfair"),
            ("unfair", "block", HOLD_NS, "handoff_ns_block_unfair"),
            ("unfair", "adaptive", HOLD_NS, "handoff_ns_adaptive_unfair"),
            ("fifo", "adaptive", HOLD_SLEPT_NS, "handoff_ns_adaptive_slept"),
        ]
        for fairness, waiting, hold, key in handoff_runs:
            r = bench_handoff(fairness, waiting, rounds, hold, cores, limit)
            res[key] = r["median_ns"]
            details[key] = r

    elapsed = time.monotonic() - t_start

    targets = check_targets(TARGETS, res)
    # The lock target is a ratio: judge it on the per-repetition ratio, which
    # machine drift does not skew (the two medians may come from different reps).
    t = targets["spin_lock_pair_ns"]
    t["ratio"] = res["spin_lock_ratio_fifo"]
    t["met"] = t["ratio"] <= 2.5

    # -- table ------------------------------------------------------------------
    benchlib.print_title("shm", args.quick, elapsed)
    print(benchlib.machine_line(machine))
    print(
        f"params: median of {reps} interleaved reps x ({n_lock} lock pairs, {n_ring} ring ops), "
        f"micro-benchmarks pinned to core {cores[0]}; handoff: median of {rounds} handoffs, "
        f"{core_note}; hold {HOLD_NS} ns after the waiter is seen (slept: {HOLD_SLEPT_NS} ns), "
        f"adaptive spin {SPIN_NS} ns"
    )
    print(
        f"backend: {native.backend()}; ring produce/consume/batches: "
        f"{'compiled ring type' if native.RingOps is not None else 'Python'}; lock calls: "
        f"{'compiled lock type' if native.LockOps is not None else 'Python methods'}"
    )
    print()
    table = Table(30, 12, 32, rule=86)
    table.header()
    line = table.row

    def tline(name):
        t = targets[name]
        limit = f"{t['target']} (= {fmt(t['limit_ns'])})" if "x" in t["target"] else None
        table.target_row(name, res[name], t, target=limit)

    line("raw_sem_pair_ns", res["raw_sem_pair_ns"])
    tline("spin_lock_pair_ns")
    table.target_row(
        "spin_lock_ratio_fifo",
        res["spin_lock_ratio_fifo"],
        targets["spin_lock_pair_ns"],
        unit="x",
        target="<= 2.5x (median of per-rep ratios)",
    )
    line("spin_lock_pair_ns_unfair", res["spin_lock_pair_ns_unfair"], target="(no target)")
    line("spin_lock_ratio_unfair", res["spin_lock_ratio_unfair"], unit="x")
    tline("ring_single_ns")
    tline("ring_batch64_ns")
    line("ref_method_call_ns", res["ref_method_call_ns"], target="(yardstick: empty Python call)")
    for _, _, _, key in handoff_runs:
        d = details[key]
        line(key, res[key], target=f"p90 {fmt(d['p90_ns'])}, slept {d['sleep_fraction']:.0%}")
    print()
    benchlib.print_target_summary(targets)

    if breakdown and not targets["spin_lock_pair_ns"]["met"]:
        print()
        print("spin_lock_pair_ns is over its target; cost of the pieces of the uncontended path:")
        for k, v in breakdown.items():
            print(f"  {k:<58} {fmt(v):>10} ns")

    if args.json:
        params = {
            "quick": args.quick,
            "reps": reps,
            "lock_pairs": n_lock,
            "ring_ops": n_ring,
            "handoff_rounds": rounds,
            "handoff_hold_ns": HOLD_NS,
            "handoff_hold_slept_ns": HOLD_SLEPT_NS,
            "adaptive_spin_ns": SPIN_NS,
            "handoff_pinning": core_note,
            "elapsed_s": round(elapsed, 2),
        }
        benchlib.write_json(
            args.json,
            "shm",
            machine,
            params,
            results=res,
            targets=targets,
            details=details,
            lock_breakdown_ns=breakdown,
        )

    benchlib.warn_leftovers()
    return 0


if __name__ == "__main__":
    benchlib.run_main(main, "bench_shm")
