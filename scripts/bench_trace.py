#!/usr/bin/env python3
"""What tracing costs: a tracepoint with tracing off, an event with it on,
and whole runs with and without a trace, side by side.

    python scripts/bench_trace.py [--seconds S] [--reps N]

* ``check_off_ns``: one disabled tracepoint (``tr = this.trace; if tr is not
  None``), the per-call cost a run without --trace pays at each of the ~4
  tracepoints an skb passes; ``off_share``: 4 of them against the CPU time
  per delivered packet of the untraced run;
* ``emit_ns``: one recorded event (timestamp and four word stores);
* ``cpu_ns_per_packet`` of one CPU flooding one queue, untraced and traced,
  medians of ``--reps`` runs interleaved, and their ratio; events per packet.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import benchlib  # also puts the repo root on sys.path when run from a checkout

from netq.kernel.core.percpu import this
from netq.machine.config import DeviceConfig, RunConfig, TrafficConfig
from shm.ipc import IpcOwner
from shm.layout import Layout
from shm.region import Region
from shm.trace import Tracer, trace_layout
from workers.supervisor import Supervisor

#: tracepoints an skb passes on the bypass path (net_dev_queue, qdisc
#: bypass, net_dev_start_xmit, and a softirq or qdisc run now and then)
POINTS_PER_PACKET = 4


def per_call_ns(fn: Callable[[int], None], n: int) -> float:
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter_ns()
        fn(n)
        best = min(best, (time.perf_counter_ns() - t0) / n)
    return best


def check_off(n: int) -> None:
    for _ in range(n):
        tr = this.trace
        if tr is not None:
            tr.emit(0)


def emit_cost(n: int) -> float:
    with IpcOwner() as owner:
        lay = Layout()
        trace_layout(lay, 1, n)
        region = Region(owner, "bench", lay)
        tr = Tracer(region, 0)
        emit = tr.emit
        t0 = time.perf_counter_ns()
        for i in range(n):
            emit(16, i, i)
        ns = (time.perf_counter_ns() - t0) / n
        tr.release()
        del tr, emit
        region.close()
        return ns


def one_run(seconds: float, traced: bool, path: str) -> tuple[float, float]:
    cfg = RunConfig(
        cpus=1,
        duration=seconds,
        seed=1,
        devices=[DeviceConfig(tx_queues=1)],
        traffic=[TrafficConfig(sockets_per_cpu=4)],
        trace=path if traced else None,
        trace_events=1 << 21,  # room for every event of the run: none dropped
    )
    cfg.validate()
    out = Supervisor(cfg).run()
    if out.status != "ok":
        raise RuntimeError(f"run ended {out.status}: {out.faults}")
    res = out.result
    events = sum(len(e) for e in out.trace.events) if out.trace is not None else 0
    ns = res["cpu_ns_per_packet"]
    if ns is None:
        raise RuntimeError("no packet was delivered")
    dropped = out.trace.total_dropped if out.trace is not None else 0
    if dropped:
        raise RuntimeError(f"the trace logs dropped {dropped} events: raise trace_events")
    return ns, events / max(1, res["generated"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=0.5)
    p.add_argument("--reps", type=int, default=3)
    a = p.parse_args(argv)
    print(benchlib.machine_line(benchlib.machine_info()), flush=True)
    off_ns = per_call_ns(check_off, 1_000_000)
    emit_ns = emit_cost(200_000)
    plain, traced, epp = [], [], []
    for _ in range(a.reps):  # interleaved: a drift touches both alike
        plain.append(one_run(a.seconds, False, "")[0])
        ns, k = one_run(a.seconds, True, "/dev/null")
        traced.append(ns)
        epp.append(k)
    off = statistics.median(plain)
    on = statistics.median(traced)
    print(f"check_off_ns           {off_ns:8.1f}  (a tracepoint, tracing off)")
    print(
        f"off_share              {POINTS_PER_PACKET * off_ns / off:8.2%}  "
        f"({POINTS_PER_PACKET} tracepoints against {off:,.0f} ns of CPU per packet)"
    )
    print(f"emit_ns                {emit_ns:8.1f}  (an event, tracing on)")
    print(f"cpu_ns_per_packet off  {off:8.0f}  (runs: {', '.join(f'{x:.0f}' for x in plain)})")
    print(f"cpu_ns_per_packet on   {on:8.0f}  (runs: {', '.join(f'{x:.0f}' for x in traced)})")
    print(
        f"traced / untraced      {on / off:8.2f}x  ({statistics.median(epp):.1f} events per packet)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
