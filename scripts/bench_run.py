#!/usr/bin/env python3
"""Whole-run benchmark: delivered pps and CPU per packet for 1 and 2 emulated
CPUs through the supervisor, and the NIC's maximum drain rate.

    python scripts/bench_run.py [--json PATH] [--quick]

Part 1 — multi-process runs (``workers.supervisor.Supervisor``), XPS 1:1, so
no queue, lock or qdisc is shared between CPUs:

* device ``eth0``: 2 TX queues (mq with a pfifo_fast per queue), ring 256,
  tx_queue_len 1000, 10 Gb/s line rate (the defaults; the wire never limits
  at these rates); XPS tx-0 = CPU 0, tx-1 = CPU 1 (1-CPU runs: tx-0 = CPU 0);
* traffic: 4 connected UDP sockets per CPU, 1000-byte packets, flood;
* ``duration`` 3 s (``--quick``: 1 s), seed fixed; the two configurations are
  run alternately ``reps`` times and the medians reported.

Reported per configuration: delivered pps (NIC side, over the window), CPU
time of the emulated CPUs per delivered packet, context switches per packet,
the NIC process's CPU per delivered packet (target <= 300 ns) and its share
of a core, the emulated packets per second of host CPU (delivered packets
over the CPU time of the emulated CPUs and the NIC together),
``setup.shared_cores``.  The 2-over-1 scaling ratio is the ratio of the
median pps (the median of the per-pair ratios is shown beside it).  Target:
>= 1.7.  On a 2-core host the 2-CPU run
has 3 processes (2 CPUs + the NIC) on 2 cores, so one emulated CPU shares its
core with the NIC: the report says so.

Every run must end with status "ok" and all invariants holding; a run that
does not is printed (faults, broken invariants) and left out of the medians.

Part 2 — NIC drain rate, in-process: a Net with 4 TX rings of 4096
descriptors (``line_rate_bps = 0``, so the wire does not pace) is filled with
valid descriptors (each socket stays on one ring, its sk_seq increasing, so
the NIC's per-flow order check passes) with ``Ring.produce_batch``; then
``Nic.poll()`` is timed until every ring is empty (the latency histogram
flush included).  ``nic_drain_pps`` is the median over repetitions.  The
offered rate is what the CPUs of the 2-CPU runs generated per second
(``generated / window_s``, median).  Target: drain >= 10 x offered.  The cost
of one poll that finds a single descriptor, and of an empty poll, is
measured too: it is what the NIC pays per poll when the CPUs trickle packets,
which is the usual case in a run.

Exit status is 0 whether or not targets are met (this is a benchmark); 130 on
Ctrl-C.  Every IPC object is created through an :class:`shm.ipc.IpcOwner`
(the supervisor's or this script's), so nothing is left in /dev/shm.
"""

from __future__ import annotations

import contextlib
import gc
import os
import statistics
import sys
import time
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:  # scripts/ is not a package: benchlib sits beside this file
    sys.path.insert(0, _HERE)
import benchlib  # also puts the repo root on sys.path when run from a checkout
import numpy as np
from benchlib import Table, close_quietly, fmt, median, other_netq_runs

from netq.kernel.kstructs import NIC
from netq.machine.config import DeviceConfig, RunConfig, TrafficConfig
from netq.machine.net import Net
from shm.ipc import IpcOwner, Terminated
from shm.ring import DESC_WORDS
from workers.nic import Nic
from workers.supervisor import Supervisor

SEED = 1
SOCKETS_PER_CPU = 4
#: NIC drain measurement: rings x descriptors
DRAIN_RINGS, DRAIN_RING_SIZE = 4, 4096

TARGETS = {
    "scaling_2_over_1": (">= 1.7", 1.7),
    "nic_drain_ratio": (">= 10x offered", 10.0),
}
#: targets that are ceilings (issue 17: a NIC that costs almost nothing)
TARGETS_MAX = {
    "nic_cpu_ns_per_packet_1cpu": ("<= 300 ns", 300.0),
    "nic_cpu_ns_per_packet_2cpu": ("<= 300 ns", 300.0),
}


# --------------------------------------------------------------------------
# part 1: supervisor runs
# --------------------------------------------------------------------------
def run_config(cpus: int, duration: float) -> RunConfig:
    """The supervisor run of ``cpus`` emulated CPUs (XPS 1:1, UDP flood)."""
    xps = {0: "1"} if cpus == 1 else {0: "1", 1: "2"}
    return RunConfig(
        name=f"bench_run_{cpus}cpu",
        cpus=cpus,
        duration=duration,
        seed=SEED,
        devices=[DeviceConfig(name="eth0", tx_queues=2, xps=xps)],
        traffic=[
            TrafficConfig(
                sockets_per_cpu=SOCKETS_PER_CPU, proto="udp", connected=True, rate_pps=0.0
            )
        ],
    )


def summarize(outcome) -> dict:
    """What this benchmark keeps of one run's result dict."""
    r = outcome.result
    setup = r.get("setup", {})
    window = r.get("window_s") or 0.0
    dw = r.get("delivered_in_window") or 0
    nic = r.get("nic", {})
    mech = r.get("mechanism", {})
    gen = r.get("generated", 0)
    drops = {k: v for k, v in r.get("drops", {}).items() if v}
    cpus_ns = sum(c.get("cpu_ns") or 0 for c in r.get("cpus", []))
    host_ns = cpus_ns + (nic.get("cpu_ns") or 0)
    return {
        "status": outcome.status,
        "invariants_ok": bool(r.get("invariants_ok")),
        "faults": list(outcome.faults),
        "broken_invariants": [c for c in r.get("invariants", []) if not c.get("ok")],
        "window_s": window,
        "generated": gen,
        "delivered": r.get("delivered"),
        "delivered_in_window": dw,
        "pps": r.get("pps", 0.0),
        "offered_pps": gen / window if window else 0.0,
        "cpu_ns_per_packet": r.get("cpu_ns_per_packet"),
        "ctx_switches_per_packet": mech.get("ctx_switches_per_packet"),
        "nic_cpu_ns": nic.get("cpu_ns"),
        "nic_cpu_ns_per_packet": nic.get("cpu_ns", 0) / dw if dw else None,
        "nic_cpu_share": nic.get("cpu_ns", 0) / (window * 1e9) if window else None,
        # emulated packets per second of host CPU, the CPUs and the NIC together
        "pkts_per_host_cpu_s": dw / (host_ns / 1e9) if host_ns else None,
        "bypass_share": mech.get("bypass", 0) / gen if gen else None,
        "enqueued": mech.get("enqueued"),
        "drops": drops,
        "per_cpu": [
            {
                k: c.get(k)
                for k in (
                    "cpu",
                    "host_core",
                    "generated",
                    "pps",
                    "cpu_ns_per_packet",
                    "nvcsw",
                    "nivcsw",
                    "cpu_ns",
                )
            }
            for c in r.get("cpus", [])
        ],
        "shared_cores": setup.get("shared_cores"),
        "processes": setup.get("processes"),
        "host_cores": setup.get("host_cores"),
        "cpu_map": setup.get("cpu_map"),
        "nic_core": setup.get("nic_core"),
        "lock": setup.get("lock"),
        "strategy": setup.get("strategy"),
    }


def failure_details(s: dict) -> list[str]:
    """What went wrong in one summarized run: its faults, then its broken
    invariants, one line each."""
    return [f"fault: {f}" for f in s["faults"]] + [
        f"invariant {c.get('name')}: {c.get('detail')}" for c in s["broken_invariants"]
    ]


def supervisor_runs(reps: int, duration: float, log) -> dict[int, list[dict]]:
    """``reps`` rounds of a 1-CPU then a 2-CPU run, summarized, by CPU count."""
    runs: dict[int, list[dict]] = {1: [], 2: []}
    for rep in range(reps):
        for cpus in (1, 2):  # interleaved: both see the same machine conditions
            before = other_netq_runs()
            out = Supervisor(run_config(cpus, duration)).run()
            s = summarize(out)
            s["other_netq_pids"] = sorted(before | other_netq_runs())
            s["loadavg_after"] = os.getloadavg()
            runs[cpus].append(s)
            good = s["status"] == "ok" and s["invariants_ok"]
            log(
                f"  rep {rep + 1}/{reps} cpus={cpus}: {s['status']}"
                f"{'' if s['invariants_ok'] else ' (invariants broken)'}  "
                f"{s['pps']:,.0f} pps, {fmt(s['cpu_ns_per_packet'])} CPU-ns/pkt"
                + (
                    f"  [other netq pids running: {s['other_netq_pids']}]"
                    if s["other_netq_pids"]
                    else ""
                )
            )
            if not good:
                log(
                    f"    FAILED run (cpus={cpus}): status {s['status']!r}, "
                    f"invariants_ok {s['invariants_ok']}"
                )
                for d in failure_details(s):
                    log(f"      {d}")
            if out.status in ("interrupted", "terminated"):
                raise KeyboardInterrupt if out.status == "interrupted" else Terminated(15)
    return runs


def aggregate(runs: list[dict]) -> dict:
    """Medians over the good runs of one configuration, and its setup."""
    ok = [s for s in runs if s["status"] == "ok" and s["invariants_ok"]]
    a: dict[str, Any] = {"runs": len(runs), "ok_runs": len(ok)}
    for k in (
        "pps",
        "offered_pps",
        "cpu_ns_per_packet",
        "ctx_switches_per_packet",
        "nic_cpu_ns_per_packet",
        "nic_cpu_share",
        "pkts_per_host_cpu_s",
        "bypass_share",
        "window_s",
    ):
        a[k] = median([s[k] for s in ok])
    ncpu = len(ok[0]["per_cpu"]) if ok else 0
    a["per_cpu_pps"] = [median([s["per_cpu"][c]["pps"] for s in ok]) for c in range(ncpu)]
    a["per_cpu_cpu_ns_per_packet"] = [
        median([s["per_cpu"][c]["cpu_ns_per_packet"] for s in ok]) for c in range(ncpu)
    ]
    a["drops_total"] = median([sum(s["drops"].values()) for s in ok])
    a["shared_cores"] = sorted({s["shared_cores"] for s in runs if s["shared_cores"] is not None})
    ref = ok[0] if ok else (runs[0] if runs else {})
    for k in ("processes", "host_cores", "cpu_map", "nic_core", "lock", "strategy"):
        a[k] = ref.get(k)
    return a


# --------------------------------------------------------------------------
# part 2: NIC drain rate (in-process)
# --------------------------------------------------------------------------
def drain_config() -> RunConfig:
    """The Net whose TX rings the NIC drain measurement fills (directly, not
    through a driver: so no BQL, which would see completions of bytes it was
    never told were queued)."""
    return RunConfig(
        name="bench_nic_drain",
        cpus=2,
        seed=SEED,
        devices=[
            DeviceConfig(
                name="eth0",
                tx_queues=DRAIN_RINGS,
                ring_size=DRAIN_RING_SIZE,
                line_rate_bps=0.0,
                bql=False,
            )
        ],
        traffic=[TrafficConfig(sockets_per_cpu=SOCKETS_PER_CPU)],
    )


class _Filler:
    """Valid descriptors for every ring: ring k carries the sockets with
    ``sid % rings == k`` (a flow stays on its queue), per-socket sk_seq and
    per-CPU seq keep increasing from one fill to the next."""

    def __init__(self, net) -> None:
        self.net = net
        self.rings = [t.ring for t in net.txqs]
        self.nsock = len(net.socks)
        self.sk_cpu = np.array([s.cpu for s in net.socks], dtype=np.int64)
        self.sk_seq = np.zeros(self.nsock, dtype=np.int64)
        self.cpu_seq = np.zeros(net.ncpus, dtype=np.int64)
        self.per_ring = []
        for k in range(len(self.rings)):
            socks = np.array(
                [s for s in range(self.nsock) if s % len(self.rings) == k], dtype=np.int64
            )
            if not len(socks):
                raise ValueError("more rings than sockets")
            self.per_ring.append(socks)

    def fill(self) -> int:
        """Fill every ring to the brim; the number of descriptors produced."""
        total = 0
        now = time.perf_counter_ns()
        for k, ring in enumerate(self.rings):
            n = ring.free()
            socks = self.per_ring[k]
            sk = socks[np.arange(n) % len(socks)]
            d = np.zeros((n, DESC_WORDS), dtype=np.int64)
            d[:, 2] = sk
            # sk_seq: per socket, increasing
            d[:, 3] = self.sk_seq[sk] + np.arange(n) // len(socks)
            np.add.at(self.sk_seq, sk, 1)
            cpu = self.sk_cpu[sk]
            d[:, 0] = cpu
            # seq: per CPU, increasing (the skb id)
            for c in range(self.net.ncpus):
                m = cpu == c
                cnt = int(m.sum())
                d[m, 1] = self.cpu_seq[c] + np.arange(cnt)
                self.cpu_seq[c] += cnt
            d[:, 4] = 1000
            d[:, 5] = 0
            d[:, 6] = now
            d[:, 7] = k
            got = ring.produce_batch(d)
            if got != n:
                raise RuntimeError(f"ring {k}: produced {got} of {n}")
            total += n
        return total


def nic_drain(reps: int, core: int) -> dict:
    """Full-ring drain rate of Nic.poll() (and the cost of tiny/empty polls),
    in-process, pinned to ``core``."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(benchlib.pinned(core))
        owner = stack.enter_context(IpcOwner())
        net = Net(drain_config(), owner)
        stack.callback(close_quietly, net)
        net.bind_cpu(net.control_cpu)  # as the NIC worker does
        nic = Nic(net)
        filler = _Filler(net)
        rings = filler.rings
        poll = nic.poll
        pc = time.perf_counter_ns

        def one_drain() -> tuple[int, int, int]:
            n = filler.fill()
            polls = 0
            t0 = pc()
            while poll():
                polls += 1
            nic.flush_latency()
            t = pc() - t0
            if any(len(r) for r in rings):
                raise RuntimeError("NIC drain: rings not empty after poll() returned 0")
            return n, t, polls

        gc.collect()
        gc.disable()
        try:
            one_drain()  # warm-up
            pps, per_pkt, polls_l = [], [], []
            for _ in range(reps):
                n, t, polls = one_drain()
                pps.append(n / (t / 1e9))
                per_pkt.append(t / n)
                polls_l.append(polls)
            # the cost of a poll that finds one descriptor, and of an empty poll
            small, empty = [], []
            one = np.zeros((1, DESC_WORDS), dtype=np.int64)
            r0 = rings[0]
            sk0 = int(filler.per_ring[0][0])
            k = 2000 if reps > 5 else 500
            for _ in range(max(3, reps // 3)):
                t_small = 0
                for _ in range(k):
                    one[0] = (filler.sk_cpu[sk0], 0, sk0, filler.sk_seq[sk0], 1000, 0, pc(), 0)
                    filler.sk_seq[sk0] += 1
                    r0.produce_batch(one)
                    t0 = pc()
                    poll()
                    t_small += pc() - t0
                small.append(t_small / k)
                t0 = pc()
                for _ in range(k):
                    poll()
                empty.append((pc() - t0) / k)
            nic.flush_latency()
        finally:
            gc.enable()
        n_all = int(net.nic[NIC.delivered])
        sent = int(filler.sk_seq.sum())
        check = {
            "delivered": n_all,
            "produced": sent,
            "reorders": int(net.nic[NIC.reorders]),
            "flow_queue_changes": int(net.nic[NIC.flow_queue_changes]),
        }
        if n_all != sent or check["reorders"] or check["flow_queue_changes"]:
            raise RuntimeError(f"NIC drain: accounting does not match: {check}")
        del nic, filler, rings, poll, r0
    return {
        "nic_drain_pps": statistics.median(pps),
        "nic_drain_ns_per_pkt": statistics.median(per_pkt),
        "nic_drain_pps_reps": pps,
        "polls_per_drain": statistics.median(polls_l),
        "packets_per_drain": DRAIN_RINGS * DRAIN_RING_SIZE,
        "nic_poll_1pkt_ns": statistics.median(small),
        "nic_poll_empty_ns": statistics.median(empty),
        "nic_batch": drain_config().nic_batch,
        "check": check,
    }


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------
def main(argv=None) -> int:
    args = benchlib.arg_parser(__doc__, "1 s runs, fewer repetitions").parse_args(argv)

    if args.quick:
        reps, duration, drain_reps = 3, 1.0, 5
    else:
        reps, duration, drain_reps = 5, 3.0, 15
    machine = benchlib.machine_info()
    core = machine["sched_getaffinity"][0]
    t_start = time.monotonic()

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    neighbours = other_netq_runs()
    with benchlib.signal_scope():
        log(f"bench_run: NIC drain ({drain_reps} reps of {DRAIN_RINGS}x{DRAIN_RING_SIZE})")
        drain = nic_drain(drain_reps, core)
        log(f"bench_run: {reps} x (1 CPU, 2 CPUs) supervisor runs of {duration:g} s")
        runs = supervisor_runs(reps, duration, log)
    elapsed = time.monotonic() - t_start
    for c in (1, 2):
        for s in runs[c]:
            neighbours |= set(s["other_netq_pids"])
    neighbours |= other_netq_runs()
    benchlib.note_end(machine, neighbours)

    agg = {c: aggregate(runs[c]) for c in (1, 2)}
    res: dict = {}
    for c in (1, 2):
        a = agg[c]
        res[f"pps_{c}cpu"] = a["pps"]
        res[f"cpu_ns_per_packet_{c}cpu"] = a["cpu_ns_per_packet"]
        res[f"ctx_switches_per_packet_{c}cpu"] = a["ctx_switches_per_packet"]
        res[f"nic_cpu_ns_per_packet_{c}cpu"] = a["nic_cpu_ns_per_packet"]
        res[f"nic_cpu_share_{c}cpu"] = a["nic_cpu_share"]
        res[f"pkts_per_host_cpu_s_{c}cpu"] = a["pkts_per_host_cpu_s"]
        res[f"offered_pps_{c}cpu"] = a["offered_pps"]
        res[f"shared_cores_{c}cpu"] = a["shared_cores"]
        res[f"pps_by_cpu_{c}cpu"] = a["per_cpu_pps"]
    p1, p2 = agg[1]["pps"], agg[2]["pps"]
    res["scaling_2_over_1"] = p2 / p1 if p1 and p2 else None
    pairs = [
        b["pps"] / a["pps"]
        for a, b in zip(runs[1], runs[2])
        if a["pps"] and all(s["status"] == "ok" and s["invariants_ok"] for s in (a, b))
    ]
    res["scaling_2_over_1_paired_median"] = median(pairs)
    res["nic_drain_pps"] = drain["nic_drain_pps"]
    res["nic_drain_ns_per_pkt"] = drain["nic_drain_ns_per_pkt"]
    res["nic_poll_1pkt_ns"] = drain["nic_poll_1pkt_ns"]
    res["nic_poll_empty_ns"] = drain["nic_poll_empty_ns"]
    res["offered_pps"] = agg[2]["offered_pps"]
    res["nic_drain_ratio"] = (
        drain["nic_drain_pps"] / res["offered_pps"] if res["offered_pps"] else None
    )
    failed = sum(a["runs"] - a["ok_runs"] for a in agg.values())
    res["failed_runs"] = failed

    targets = benchlib.check_targets(TARGETS, res, at_least=True, suffix="")
    targets |= benchlib.check_targets(TARGETS_MAX, res, suffix="")

    # -- table ------------------------------------------------------------------
    benchlib.print_title("whole-run", args.quick, elapsed)
    print(benchlib.machine_line(machine))
    benchlib.warn_neighbours(neighbours, "pps and scaling are disturbed")
    a2 = agg[2]
    lk = a2["lock"] or {}
    print(
        f"params: {reps} interleaved reps x (1 CPU, 2 CPUs), {duration:g} s each, seed {SEED}; "
        f"eth0 2 TX queues (mq/pfifo_fast), XPS 1:1, ring 256, {SOCKETS_PER_CPU} connected UDP "
        f"sockets per CPU, flood; strategy {a2['strategy']}, locks {lk.get('fairness')}/"
        f"{lk.get('waiting')} (2 CPUs: {lk.get('why')}); lock backend {machine['lock_backend']}"
    )
    print(
        f"NIC drain: {drain_reps} reps of {DRAIN_RINGS} rings x {DRAIN_RING_SIZE} descriptors, "
        f"nic_batch {drain['nic_batch']}, line_rate 0, in-process pinned to core {core}"
    )
    for c in (1, 2):
        a = agg[c]
        print(
            f"{c} CPU{'s' if c > 1 else ''}: {a['processes']} processes on host cores "
            f"{a['host_cores']}: emulated CPUs on {a['cpu_map']}, NIC on core {a['nic_core']}; "
            f"setup.shared_cores = {a['shared_cores']}"
            + (
                "  <- OVERSUBSCRIBED: CPU and NIC processes share cores"
                if True in a["shared_cores"]
                else ""
            )
        )
    print()
    table = Table(34, 14, 16, rule=74)
    table.header()

    def line(name, value, spec=",.1f", target="", status=""):
        table.row(name, value, spec=spec, target=target, status=status)

    def tline(name, spec):
        table.target_row(name, res[name], targets[name], spec=spec)

    for c in (1, 2):
        line(f"pps_{c}cpu", res[f"pps_{c}cpu"], ",.0f")
    tline("scaling_2_over_1", ".2f")
    line("scaling_2_over_1_paired_median", res["scaling_2_over_1_paired_median"], ".2f")
    for c in (1, 2):
        per = " / ".join(fmt(x, ",.0f") for x in res[f"pps_by_cpu_{c}cpu"]) or "-"
        table.row(f"pps_by_cpu_{c}cpu", per, target="(cpu0 / cpu1)" if c == 2 else "", status=None)
    for c in (1, 2):
        line(f"cpu_ns_per_packet_{c}cpu", res[f"cpu_ns_per_packet_{c}cpu"], ",.0f")
    for c in (1, 2):
        line(f"ctx_switches_per_packet_{c}cpu", res[f"ctx_switches_per_packet_{c}cpu"], ".4f")
    for c in (1, 2):
        tline(f"nic_cpu_ns_per_packet_{c}cpu", ",.0f")
    for c in (1, 2):
        line(f"nic_cpu_share_{c}cpu", res[f"nic_cpu_share_{c}cpu"], ".0%")
    for c in (1, 2):
        line(f"pkts_per_host_cpu_s_{c}cpu", res[f"pkts_per_host_cpu_s_{c}cpu"], ",.0f")
    for c in (1, 2):
        table.row(f"shared_cores_{c}cpu", str(res[f"shared_cores_{c}cpu"]), target=None)
    line("nic_drain_pps", res["nic_drain_pps"], ",.0f")
    line("nic_drain_ns_per_pkt", res["nic_drain_ns_per_pkt"], ",.1f")
    line("offered_pps (2 CPUs generated/s)", res["offered_pps"], ",.0f")
    tline("nic_drain_ratio", ",.1f")
    line("nic_poll_1pkt_ns", res["nic_poll_1pkt_ns"], ",.0f")
    line("nic_poll_empty_ns", res["nic_poll_empty_ns"], ",.0f")
    line("failed_runs", failed, "d", "0", "ok" if not failed else "FAILED")
    print()
    benchlib.print_target_summary(targets)
    if True in a2["shared_cores"]:
        print(
            f"note: the 2-CPU runs oversubscribe the host: {a2['processes']} processes "
            f"(2 emulated CPUs + NIC) on {len(a2['host_cores'] or [])} cores; the NIC (core "
            f"{a2['nic_core']}) shares a core with an emulated CPU, and used "
            f"{fmt(res['nic_cpu_share_2cpu'], '.0%')} of a core for its polls"
        )
    if not targets["scaling_2_over_1"]["met"] and agg[1]["ok_runs"] and agg[2]["ok_runs"]:
        a1 = agg[1]
        share = a2["nic_cpu_share"] or 0.0
        c1, c2 = a1["cpu_ns_per_packet"], a2["cpu_ns_per_packet"]
        print()
        print("scaling_2_over_1 is under its target; what the runs show:")
        per_cpu = " / ".join(fmt(x, ",.0f") for x in a2["per_cpu_pps"])
        print(
            f"  pps by emulated CPU, 2 CPUs: {per_cpu}"
            f" (CPU{a2['cpu_map'].index(a2['nic_core']) if a2['nic_core'] in (a2['cpu_map'] or []) else '?'}"
            f" shares core {a2['nic_core']} with the NIC); 1 CPU alone: {fmt(a1['pps'], ',.0f')}"
        )
        print(
            f"  NIC process CPU: {share:.0%} of a core with 2 CPUs, {a1['nic_cpu_share'] or 0:.0%} with 1"
            f" (a round finding 1 descriptor costs "
            f"{fmt(drain['nic_poll_1pkt_ns'] / 1e3, ',.0f')} us, an empty poll "
            f"{fmt(drain['nic_poll_empty_ns'] / 1e3, ',.1f')} us; a full drain "
            f"{fmt(drain['nic_drain_ns_per_pkt'], ',.0f')} ns/pkt)"
        )
        if c1 and c2:
            print(
                f"  CPU-ns per delivered packet: 1 CPU {fmt(c1, ',.0f')}, "
                f"2 CPUs {fmt(c2, ',.0f')} ({c2 / c1 - 1:+.0%})"
            )
        print(
            f"  bypass share: 1 CPU {fmt(a1['bypass_share'], '.1%')}, 2 CPUs "
            f"{fmt(a2['bypass_share'], '.1%')}; drops per run (median, all reasons): 1 CPU "
            f"{fmt(a1['drops_total'], ',.0f')}, 2 CPUs {fmt(a2['drops_total'], ',.0f')}"
            " (rings full while the NIC is off-core: the costlier enqueue/dequeue path)"
        )
        print(
            f"  bound if nothing but the NIC's core share were lost: 2 - {share:.2f} = "
            f"{2 - share:.2f}; if, in addition, the per-packet cost grows as measured: "
            f"{(2 - share) * (c1 / c2):.2f}"
            if c1 and c2
            else ""
        )
    if failed:
        print(
            f"WARNING: {failed} run(s) failed (status not ok or invariants broken); "
            "they are left out of the medians:"
        )
        for c in (1, 2):
            for i, s in enumerate(runs[c]):
                if s["status"] == "ok" and s["invariants_ok"]:
                    continue
                print(
                    f"  {c} CPU(s), rep {i + 1}: status {s['status']!r}, "
                    f"invariants_ok {s['invariants_ok']}"
                )
                for d in failure_details(s):
                    print(f"    {d}")

    if args.json:
        params = {
            "quick": args.quick,
            "reps": reps,
            "duration_s": duration,
            "seed": SEED,
            "sockets_per_cpu": SOCKETS_PER_CPU,
            "drain_reps": drain_reps,
            "drain_rings": DRAIN_RINGS,
            "drain_ring_size": DRAIN_RING_SIZE,
            "elapsed_s": round(elapsed, 2),
        }
        benchlib.write_json(
            args.json,
            "run",
            machine,
            params,
            default=str,
            results=res,
            targets=targets,
            details={
                "runs": {f"{c}cpu": runs[c] for c in (1, 2)},
                "aggregate": {f"{c}cpu": agg[c] for c in (1, 2)},
                "nic_drain": drain,
            },
        )

    benchlib.warn_leftovers()
    return 0


if __name__ == "__main__":
    benchlib.run_main(main, "bench_run")
