#!/usr/bin/env python3
"""The virtual-time substrate alone (shm.vtime): N processes contend for one
lock, each cycle local work C then a critical section H, in virtual time.

    python scripts/bench_vtime.py [--packets N] [--slack NS,...] [--procs N,...]

For each placement (every process on host core 0, or spread over the cores),
process count and slack it prints the virtual throughput beside the
analytical value min(N / (C + H + bounce), 1 / (H + handoff + bounce)), the
order violations, the largest skew at the window, and the slowdown (wall
seconds per virtual second) with emulated packets per host-CPU-second. A
slack above the critical section (800 ns here) lets later requests overtake
earlier ones: the violations show it.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

from shm.ipc import IpcOwner
from shm.layout import Layout
from shm.lock import LockPolicy, LockSpace, lock_layout
from shm.region import Region
from shm.vtime import VCLOCK, VLOCK, VirtualCpu, init_vtime, vtime_layout

C, H, BOUNCE, HANDOFF = 3000, 800, 200, 50


def contender(
    region: Region, space: LockSpace, me: int, packets: int, slack: int, core: int | None
) -> None:
    if core is not None:
        os.sched_setaffinity(0, {core})
    cpu = VirtualCpu(region, me, slack_ns=slack, handoff_ns=HANDOFF, bounce_ns=BOUNCE)
    (lk,) = space.bind(me)
    for _ in range(packets):
        cpu.charge(C)
        cpu.acquire(lk, 0)
        cpu.charge(H)
        cpu.release(lk, 0)
    cpu.done()


def one(n: int, packets: int, slack: int, one_core: bool) -> dict[str, float]:
    with IpcOwner() as owner:
        layout = Layout()
        lock_layout(layout, 1, n)
        vtime_layout(layout, n, 1)
        region = Region(owner, "bench", layout)
        space = LockSpace(owner, region, ["l"], n, LockPolicy(fairness="fifo", waiting="block"))
        init_vtime(region)
        t0 = time.perf_counter()
        cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        pids = []
        for i in range(n):
            pid = os.fork()
            if pid == 0:  # pragma: no cover - child
                try:
                    contender(region, space, i, packets, slack, 0 if one_core else None)
                finally:
                    os._exit(0)
            pids.append(pid)
        for pid in pids:
            os.waitpid(pid, 0)
        wall = time.perf_counter() - t0
        cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        host_cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
        vend = max(region.section_words("vclocks", i)[VCLOCK.now] for i in range(n)) / 1e9
        v = region.section_words("vlocks", 0)
        out = {
            "pps": n * packets / vend,
            "analytic": 1e9 / (C + H)
            if n == 1
            else min(n * 1e9 / (C + H + BOUNCE), 1e9 / (H + HANDOFF + BOUNCE)),
            "violations": v[VLOCK.violations] / max(1, v[VLOCK.grants]),
            "max_skew": max(region.section_words("vclocks", i)[VCLOCK.max_skew] for i in range(n)),
            "slowdown": wall / vend,
            "pkts_per_cpu_s": n * packets / host_cpu if host_cpu else float("nan"),
        }
        del v
        region.close()
        return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--packets", type=int, default=2000)
    p.add_argument("--slack", default="0,500,2000")
    p.add_argument("--procs", default="2,4,8,16")
    a = p.parse_args(argv)
    print(
        f"C {C} ns, H {H} ns, bounce {BOUNCE} ns, handoff {HANDOFF} ns; {a.packets} packets per process; "
        f"host cores {len(os.sched_getaffinity(0))}"
    )
    print(
        f"{'placement':>9} {'N':>3} {'slack':>6} {'kpps':>8} {'analytic':>9} {'error':>7} "
        f"{'violations':>10} {'max skew':>9} {'slowdown':>9} {'pkts/cpu-s':>10}"
    )
    for one_core in (True, False):
        for n in (int(x) for x in a.procs.split(",")):
            for slack in (int(x) for x in a.slack.split(",")):
                r = one(n, a.packets, slack, one_core)
                print(
                    f"{'1 core' if one_core else 'spread':>9} {n:3d} {slack:6d} {r['pps'] / 1e3:8.1f} "
                    f"{r['analytic'] / 1e3:9.1f} {r['pps'] / r['analytic'] - 1:+7.1%} "
                    f"{r['violations']:10.1%} {r['max_skew']:7d}ns {r['slowdown']:8.0f}x "
                    f"{r['pkts_per_cpu_s']:10.0f}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
