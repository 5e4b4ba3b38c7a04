#!/usr/bin/env python3
"""What the virtual clock costs the host: one workload on both clocks, side by side.

    python scripts/bench_clocks.py [--cpus 1,2,4] [--reps N] [--json PATH] [--quick]

The workload is the busylock preset's (3.13, busylock, fifo locks, one TX
queue, one UDP socket per CPU flooding 1000-byte packets), with 1, 2 and 4
emulated CPUs.  Each CPU count runs on the wall clock (``--wall-s`` seconds)
and on the virtual clock (``--virtual-s`` virtual seconds, the era's cost
table instead of the emulated busy-waits, default slack), alternately, ``reps``
times; medians are reported.

Per clock: the wall seconds the run took, the host CPU seconds its processes
used (the emulated CPUs and the NIC: this process's reaped children), the
packets delivered, **emulated packets per host-CPU-second** (delivered over
host CPU), and the delivered pps the run reports (the host's time on the
wall clock, the emulated machine's on the virtual one).  For the virtual
clock also the **slowdown** (wall seconds per virtual second, the result's
``vt.slowdown``) and the share of lock grants out of virtual order.  The last column is
the ratio of packets per host-CPU-second, virtual over wall: what keeping
virtual time costs per emulated packet, measured in one run.

A benchmark, not a test: exit 0 whether the figures are good or bad (1 if a
run did not end ``ok``), 130 on Ctrl-C.  Every IPC object is the
supervisor's, so nothing is left in /dev/shm.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from dataclasses import replace
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchlib import machine_info, machine_line

from netq.app.presets import presets
from netq.machine.config import CostConfig, RunConfig
from workers.supervisor import Supervisor


def workload(cpus: int, clock: str, duration: float) -> RunConfig:
    label, cfg = next(
        (lab, c) for lab, c in presets(duration)["busylock"].configs() if lab == "busylock fifo"
    )
    cfg = replace(cfg, cpus=cpus, duration=duration, name=f"{label} {cpus} cpu {clock}")
    if clock == "virtual":  # the era's prices; the busy-waits are a wall-clock device
        cfg = replace(cfg, clock="virtual", costs=CostConfig())
    return cfg


def host_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def one_run(cfg: RunConfig) -> dict:
    cpu0, t0 = host_cpu_s(), time.monotonic()
    out = Supervisor(cfg).run()
    wall, cpu = time.monotonic() - t0, host_cpu_s() - cpu0
    r = out.result
    if out.status in ("interrupted", "terminated"):
        raise KeyboardInterrupt
    delivered = r.get("delivered") or 0
    vt: dict[str, Any] = dict(r.get("vt") or {})
    return {
        "status": out.status,
        "ok": out.status == "ok" and bool(r.get("invariants_ok")),
        "faults": list(out.faults),
        "wall_s": wall,
        "host_cpu_s": cpu,
        "delivered": delivered,
        "pkts_per_host_cpu_s": delivered / cpu if cpu else None,
        "pps": r.get("pps"),
        "slowdown": vt.get("slowdown"),
        "order_violations": vt.get("order_violations"),
        # the share of lock grants out of virtual order
        "violation_share": vt["order_violations"] / vt["grants"] if vt.get("grants") else None,
        "max_skew_ns": vt.get("max_skew_ns"),
    }


def med(runs: list[dict], k: str) -> float | None:
    vals = [r[k] for r in runs if r["ok"] and r.get(k) is not None]
    return statistics.median(vals) if vals else None


def fmt(v: Any, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cpus", default="1,2,4", help="emulated CPU counts (default 1,2,4)")
    ap.add_argument("--reps", type=int, default=3, help="runs per clock and CPU count")
    ap.add_argument("--wall-s", type=float, default=1.0, help="wall-clock run length (s)")
    ap.add_argument("--virtual-s", type=float, default=0.005, help="virtual run length (s)")
    ap.add_argument("--quick", action="store_true", help="1 and 2 CPUs, 1 rep, 0.5 s / 2 ms")
    ap.add_argument("--json", help="write the runs and medians here")
    a = ap.parse_args(argv)
    try:
        counts = [int(x) for x in a.cpus.split(",")]
    except ValueError:
        ap.error(f"--cpus: comma-separated integers, got {a.cpus!r}")
    if a.quick:
        counts, a.reps, a.wall_s, a.virtual_s = [1, 2], 1, 0.5, 0.002
    if a.reps < 1 or any(not 1 <= n <= 64 for n in counts):
        ap.error("--reps >= 1 and CPU counts from 1 to 64")
    machine = machine_info()
    print(machine_line(machine))
    runs: dict[tuple[int, str], list[dict]] = {}
    try:
        for rep in range(a.reps):
            for n in counts:
                for clock, dur in (("wall", a.wall_s), ("virtual", a.virtual_s)):
                    r = one_run(workload(n, clock, dur))
                    runs.setdefault((n, clock), []).append(r)
                    if not r["ok"]:
                        print(f"  {n} cpu {clock} rep {rep}: {r['status']} {r['faults'][:2]}")
    except KeyboardInterrupt:
        print("bench_clocks: interrupted", file=sys.stderr)
        return 130
    head = (
        f"{'cpus':>4} {'clock':>7} {'wall s':>7} {'host CPU s':>10} {'delivered':>10} "
        f"{'pkts/host-CPU-s':>15} {'pps (own clock)':>15} {'slowdown':>9} {'viol %':>6} "
        f"{'virt/wall':>9}"
    )
    print(head)
    summary = []
    for n in counts:
        wall_rate = med(runs[(n, "wall")], "pkts_per_host_cpu_s")
        for clock in ("wall", "virtual"):
            rs = runs[(n, clock)]
            rate = med(rs, "pkts_per_host_cpu_s")
            ratio = rate / wall_rate if clock == "virtual" and rate and wall_rate else None
            row = {
                "cpus": n,
                "clock": clock,
                **{
                    k: med(rs, k)
                    for k in (
                        "wall_s",
                        "host_cpu_s",
                        "delivered",
                        "pkts_per_host_cpu_s",
                        "pps",
                        "slowdown",
                        "order_violations",
                        "violation_share",
                    )
                },
                "virtual_over_wall": ratio,
                "ok": f"{sum(r['ok'] for r in rs)}/{len(rs)}",
            }
            summary.append(row)
            print(
                f"{n:>4} {clock:>7} {fmt(row['wall_s'], '.2f'):>7} "
                f"{fmt(row['host_cpu_s'], '.2f'):>10} {fmt(row['delivered'], ',.0f'):>10} "
                f"{fmt(row['pkts_per_host_cpu_s'], ',.0f'):>15} {fmt(row['pps'], ',.0f'):>15} "
                f"{fmt(row['slowdown'], ',.0f'):>9} {fmt(row['violation_share'] and 100 * row['violation_share'], '.1f'):>6} "
                f"{fmt(ratio, '.3f'):>9}"
            )
    shared = max(counts) + 1 > len(os.sched_getaffinity(0))
    if shared:
        print(
            f"note: {max(counts)} emulated CPUs + the NIC share {len(os.sched_getaffinity(0))} "
            "host cores: the wall clock's pps is the host's, the virtual clock's is not"
        )
    if a.json:
        with open(a.json, "w") as f:
            json.dump(
                {
                    "machine": machine,
                    "params": vars(a),
                    "summary": summary,
                    "runs": {f"{n} {c}": rs for (n, c), rs in runs.items()},
                },
                f,
                indent=1,
            )
    return 0 if all(r["ok"] for rs in runs.values() for r in rs) else 1


if __name__ == "__main__":
    sys.exit(main())
