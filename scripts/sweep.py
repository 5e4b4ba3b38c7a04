#!/usr/bin/env python3
"""Load studies: one workload swept over senders, locking strategies, lock
fairness, TX queues, XPS maps, kernel generations, qdiscs and lock waiting,
one supervised multi-process run per point.

    python scripts/sweep.py STUDY [--out DIR] [--duration S] [--repeat N]
                                  [--bounce NS[,NS...]] [--quick] [--resume]

Studies (``--list`` prints them):

``contention``  one TX queue (tg3-like: pfifo_fast, ring 256), 1 UDP socket
                per sender flooding 1000-byte packets; senders = emulated CPUs
                in {1, 2, 4, 8}; strategy {rootlock, busylock, nolock, defer}
                (under profiles 3.13, 3.13, 6.18 and 6.19: each with the
                kernel it came with, rootlock and busylock on the same one)
                x lock fairness {fifo, unfair}; emulated costs of the busylock
                preset (enqueue 1000 ns, dequeue 1000 ns, driver xmit 2000 ns)
                and ``bounce_ns`` in {0, 2000} (the cost of taking a lock, or
                pushing on a defer_list, that another CPU touched last).
                8 senders on a 2-core host is intentional: oversubscription
                is part of what is measured, and every row says
                ``shared_cores``.
``xps``         CPUs {1, 2, 4} x TX queues {2, 4} x XPS {1:1 (CPU i -> queue
                i mod n), none (flows hashed), shared (every CPU in every
                queue's mask)}; 4 connected UDP sockets per CPU flooding
                1000-byte packets (the ``xps`` preset's traffic), busylock,
                fifo locks, bounce_ns {0, 2000}.
``queues``      2 CPUs, TX queues {1, 2, 4, 8}, XPS 1:1 vs none, the same
                traffic as ``xps``, bounce_ns {0, 2000}.
``generations`` the kernel's busylock (profile 6.18) against the 6.19
                defer_list (commit 100dfa74cad9) on one TX queue: senders in
                {1, 2, 4, 8} x (busylock, 6.18) / (defer, 6.19) x qdisc
                {pfifo_fast (bypasses an empty qdisc), fq (never bypasses:
                the qdisc of the kernel's own defer_list measurement)} x lock
                waiting {adaptive (spin briefly, then sleep: netq's default),
                spin (waiters spin as kernel spinlocks do, yielding the core
                when it is shared)}; fifo locks; the ``contention`` workload
                and costs with ``bounce_ns`` 1000 (the ``generations``
                preset's) and an SO_SNDBUF of 131072 bytes: a 1000-byte
                packet charges 1576 bytes (truesize), so a socket has at most
                83 skbs in flight, under fq's per-flow limit of 100 (a
                flooding socket is throttled by its send buffer, not dropped
                by fq).  The table and the JSON (``ratios``) give, per qdisc,
                lock waiting and senders, defer / busylock for pps and CPU
                per packet, beside the kernel's figures (1.8x pps: 16 -> 29
                Mpps; system CPU 52% -> 24%).

``--quick`` runs fewer points (contention: 1 and 4 senders, bounce 0; xps: 1
and 2 CPUs on 2 queues, bounce 0; queues: 1 and 4 queues, bounce 0;
generations: 1 and 4 senders, adaptive lock waiting only, bounce 1000) for
0.3 s each, once: a whole study takes well under a minute.  ``--duration`` and
``--repeat`` override the study's defaults (also with ``--quick``), as does
``--bounce``.  Repetitions are run round-robin (all points once, then all
again), so a drift of the host's speed touches every point alike; repetition
``r`` uses seed ``r + 1`` (the hash secret, so hashed flows land differently).

Output, in ``--out`` (default ``./netq-studies``):

``STUDY.csv``   one row per point and repetition, appended and flushed as
                soon as the point finishes (the columns: :data:`COLUMNS`);
``STUDY.json``  ``rows`` (the CSV rows of this plan, typed), ``medians`` (per
                point, over the repetitions whose status is ok), ``machine``,
                ``command`` (the exact argv), ``commands`` (with --resume,
                also the earlier ones whose rows were kept), ``parameters``;
                generations also ``ratios`` (:func:`ratios`) and ``kernel``
                (:data:`KERNEL_DEFER`); written at the end, and marked
                ``complete: false`` after an interruption;
``STUDY.png``   the plots (:mod:`plot` beside this file draws them; it can
                redraw them from the JSON).

``--resume`` keeps the rows already in ``STUDY.csv`` and skips every point
and repetition found there with the same parameters (duration included),
whatever its status: a failed point is a result too.  Without ``--resume`` the
CSV is started afresh.

A point whose run does not end ``ok`` (a stall, a worker fault, a broken
invariant) is recorded with its status and the first fault, and the sweep
goes on; the exit code is then 1.  Ctrl-C ends the running point (the
supervisor stops its workers and unlinks its IPC objects), keeps every row
already written, writes the JSON as incomplete and exits 130; SIGTERM: 143.
Bad arguments: one line on stderr, exit 2, nothing created.

Needs the ``plot`` extra (matplotlib, tqdm): ``pip install '.[plot]'``.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import importlib.util
import json
import os
import platform
import shlex
import signal
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterable

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:  # running from a checkout
    sys.path.insert(0, ROOT)

# SIGTERM/SIGHUP: the supervisor's scope raises it inside a run, ours between runs
from shm.ipc import Terminated  # noqa: E402

from netq.kernel.profiles import DEFAULT_PROFILE  # noqa: E402

PROG = "sweep"
JSON_VERSION = 1
STRATEGIES = ("rootlock", "busylock", "nolock", "defer")
FAIRNESS = ("fifo", "unfair")
XPS_MODES = ("1:1", "none", "shared")
#: generations: (strategy, profile) of the kernel before and after 100dfa74cad9
GENERATIONS = (("busylock", "6.18"), ("defer", "6.19"))
GEN_QDISCS = ("pfifo_fast", "fq")
GEN_LOCK_WAIT = ("adaptive", "spin")
#: generations: SO_SNDBUF; 1000-byte packets charge 1576 bytes (truesize) each, so a
#: socket keeps at most 83 in flight: under fq's flow_plimit (100), no FQ_FLOW_LIMIT drops
GEN_SNDBUF = 131072
#: the kernel's figures for the defer_list against busylock (commit 100dfa74cad9)
KERNEL_DEFER = {
    "commit": "100dfa74cad9", "qdisc": "fq",
    "pps_busylock": 16e6, "pps_defer": 29e6, "pps_ratio": 1.8,
    "system_cpu_busylock": 0.52, "system_cpu_defer": 0.24, "system_cpu_ratio": 0.46,
    #: system CPU per packet: (24% / 29 Mpps) / (52% / 16 Mpps)
    "cpu_per_packet_ratio": 0.25,
    "text": ("1.8x pps: 16 -> 29 Mpps; system CPU 52% -> 24%, i.e. 0.25x CPU per packet; "
             "commit 100dfa74cad9"),
}
QUICK_DURATION = 0.3

#: what identifies a point and repetition (``--resume`` matches on these)
KEY = ("study", "cpus", "tx_queues", "xps", "profile", "strategy", "qdisc", "lock_fairness",
       "lock_wait", "bounce_ns", "duration_s", "rep")
#: columns kept as text in the JSON (a profile "6.18" is not a number)
TEXT = ("xps", "profile", "qdisc", "lock_wait", "fault", "drops")
#: how the run went, and its setup
RUN = ("seed", "status", "invariants_ok", "exit_code", "fault", "elapsed_s", "loadavg_1m",
       "shared_cores", "processes", "host_cores", "lock_waiting", "lock_spin_ns",
       "window_s", "generated", "delivered", "delivered_in_window", "drops_total", "drops")
#: the figures of :func:`netq.app.report.derived` and a few mechanism counters
FIGURES = ("pps", "cpu_ns_per_packet", "acq_bounces_per_packet", "contentions_per_packet",
           "completion_locality", "owner_ahead_per_relock", "owner_wait_ns_per_relock",
           "packets_per_qdisc_run", "busylock_taken", "ctx_switches_per_packet",
           "bypass", "requeues", "latency_p50_ns", "latency_p99_ns")
COLUMNS = KEY + RUN + FIGURES


class Usage(Exception):
    """Bad command line: one line, exit 2."""


# -- the studies --------------------------------------------------------------------------
@dataclass(frozen=True)
class Point:
    """One configuration of a study (repetitions are separate rows)."""

    study: str
    cpus: int
    tx_queues: int
    xps: str            # "1:1", "none", "shared", or "-" (one queue: no XPS)
    strategy: str
    lock_fairness: str
    bounce_ns: int
    duration_s: float
    #: the kernel profile (netq's default unless the study asks for one)
    profile: str = DEFAULT_PROFILE
    #: the device's qdisc ("default": pfifo_fast on one TX queue, mq of pfifo_fast on more)
    qdisc: str = "default"
    #: lock waiting asked for: "spin", "block", "adaptive", or "auto" (netq
    #: chooses from processes vs host cores; the row's lock_waiting says what)
    lock_wait: str = "auto"

    def key(self, rep: int) -> tuple[str, ...]:
        d = asdict(self)
        d["rep"] = rep
        return tuple(_cell(d[k]) for k in KEY)

    def label(self) -> str:
        parts = [f"{self.cpus} cpu", f"{self.tx_queues} txq"]
        if self.xps != "-":
            parts.append(f"xps {self.xps}")
        if self.study == "generations":
            parts += [f"{self.strategy} ({self.profile})", self.qdisc, self.lock_fairness,
                      f"{self.lock_wait} waiting"]
        else:
            parts += [self.strategy, self.lock_fairness]
        if self.bounce_ns:
            parts.append(f"bounce {self.bounce_ns}")
        return ", ".join(parts)

    def config(self, rep: int):
        """The RunConfig of this point's repetition ``rep``."""
        from netq.machine.config import CostConfig, DeviceConfig, RunConfig, TrafficConfig

        if self.study == "contention":
            costs = CostConfig(enqueue_ns=1000, dequeue_ns=1000, xmit_ns=2000,
                               bounce_ns=self.bounce_ns)
            traffic = TrafficConfig(sockets_per_cpu=1, proto="udp", length=1000)
        elif self.study == "generations":
            costs = CostConfig(enqueue_ns=1000, dequeue_ns=1000, xmit_ns=2000,
                               bounce_ns=self.bounce_ns)
            traffic = TrafficConfig(sockets_per_cpu=1, proto="udp", length=1000,
                                    sndbuf=GEN_SNDBUF)
        else:
            costs = CostConfig(bounce_ns=self.bounce_ns)
            traffic = TrafficConfig(sockets_per_cpu=4, proto="udp", connected=True, length=1000)
        return RunConfig(
            name=f"{self.study}: {self.label()}", cpus=self.cpus, duration=self.duration_s,
            seed=rep + 1, profile=self.profile, strategy=self.strategy,
            lock_fairness=self.lock_fairness,
            lock_wait=None if self.lock_wait == "auto" else self.lock_wait, costs=costs,
            devices=[DeviceConfig(name="eth0", tx_queues=self.tx_queues, ring_size=256,
                                  qdisc=self.qdisc,
                                  xps=xps_map(self.xps, self.cpus, self.tx_queues))],
            traffic=[traffic])


def xps_map(mode: str, cpus: int, queues: int) -> dict[int, str]:
    """xps_cpus masks (hex, as sysfs takes them) per queue.

    ``1:1``: CPU i -> queue i mod n (a queue no CPU maps to gets no mask);
    ``shared``: every CPU in every queue's mask; ``none``/``-``: no XPS."""
    if mode == "1:1":
        masks = [0] * queues
        for c in range(cpus):
            masks[c % queues] |= 1 << c
        return {q: format(m, "x") for q, m in enumerate(masks) if m}
    if mode == "shared":
        return {q: format((1 << cpus) - 1, "x") for q in range(queues)}
    return {}


@dataclass(frozen=True)
class Study:
    name: str
    summary: str
    #: seconds of traffic per point, and repetitions, unless overridden
    duration: float
    repeat: int
    bounce: tuple[int, ...]
    #: (quick, duration, bounce values) -> points, in run order
    points: Callable[[bool, float, tuple[int, ...]], list[Point]]
    #: bounce values with --quick (and no --bounce)
    quick_bounce: tuple[int, ...] = (0,)


#: contention: the kernel each strategy runs under; rootlock and busylock
#: share 3.13 (the reference) so that only the heuristic differs
CONTENTION_PROFILE = {"rootlock": "3.13", "busylock": "3.13", "nolock": "6.18", "defer": "6.19"}


def _contention(quick: bool, dur: float, bounce: tuple[int, ...]) -> list[Point]:
    senders = (1, 4) if quick else (1, 2, 4, 8)
    return [Point("contention", n, 1, "-", s, f, b, dur, profile=CONTENTION_PROFILE[s])
            for b in bounce for n in senders for s in STRATEGIES for f in FAIRNESS]


def _xps(quick: bool, dur: float, bounce: tuple[int, ...]) -> list[Point]:
    cpus, queues = ((1, 2), (2,)) if quick else ((1, 2, 4), (2, 4))
    return [Point("xps", c, n, m, "busylock", "fifo", b, dur)
            for b in bounce for n in queues for c in cpus for m in XPS_MODES]


def _queues(quick: bool, dur: float, bounce: tuple[int, ...]) -> list[Point]:
    queues = (1, 4) if quick else (1, 2, 4, 8)
    return [Point("queues", 2, n, m, "busylock", "fifo", b, dur)
            for b in bounce for n in queues for m in ("1:1", "none")]


def _generations(quick: bool, dur: float, bounce: tuple[int, ...]) -> list[Point]:
    """busylock (6.18) and defer (6.19) side by side: for every qdisc, lock
    waiting and sender count the two strategies run one after the other."""
    senders = (1, 4) if quick else (1, 2, 4, 8)
    waits = ("adaptive",) if quick else GEN_LOCK_WAIT
    return [Point("generations", n, 1, "-", s, "fifo", b, dur, profile=prof, qdisc=qd,
                  lock_wait=w)
            for b in bounce for qd in GEN_QDISCS for w in waits for n in senders
            for s, prof in GENERATIONS]


STUDIES: dict[str, Study] = {s.name: s for s in (
    Study("contention", "1 TX queue, 1/2/4/8 senders: rootlock/busylock/nolock/defer x fifo/unfair",
          1.5, 3, (0, 2000), _contention),
    Study("xps", "1/2/4 CPUs x 2/4 TX queues x XPS 1:1 / none (hash) / shared map",
          2.0, 3, (0, 2000), _xps),
    Study("queues", "2 CPUs, 1/2/4/8 TX queues, XPS 1:1 vs none",
          3.0, 3, (0, 2000), _queues),
    Study("generations", "1 TX queue, 1/2/4/8 senders: busylock (6.18) vs defer (6.19) "
          "x pfifo_fast/fq x adaptive/spin lock waiting",
          1.5, 3, (1000,), _generations, quick_bounce=(1000,)),
)}


@dataclass(frozen=True)
class Options:
    study: Study
    out: str
    duration: float
    repeat: int
    bounce: tuple[int, ...]
    quick: bool
    resume: bool

    def plan(self) -> list[tuple[Point, int]]:
        """(point, repetition) in run order: every point once, then again."""
        points = self.study.points(self.quick, self.duration, self.bounce)
        return [(p, r) for r in range(self.repeat) for p in points]

    @property
    def csv_path(self) -> str:
        return os.path.join(self.out, f"{self.study.name}.csv")


# -- command line --------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not the usage block
        raise Usage(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="sweep.py", description="netq load studies: " + ", ".join(
        f"{s.name} ({s.summary})" for s in STUDIES.values()))
    p.add_argument("study", nargs="?", help="one of " + ", ".join(STUDIES))
    p.add_argument("--out", default="netq-studies", help="output directory (default ./netq-studies)")
    p.add_argument("--duration", type=float, help="seconds of traffic per point")
    p.add_argument("--repeat", type=int, help="repetitions of every point")
    p.add_argument("--bounce", help="bounce_ns values, comma-separated (e.g. 0,2000)")
    p.add_argument("--quick", action="store_true", help="fewer points, 0.3 s each, once")
    p.add_argument("--resume", action="store_true", help="skip points already in STUDY.csv")
    p.add_argument("--list", action="store_true", help="list the studies and exit")
    return p


def parse_args(argv: list[str]) -> Options | None:
    a = _parser().parse_args(argv)
    if a.list:
        return None
    if a.study is None:
        raise Usage(f"a study is required: one of {', '.join(STUDIES)}")
    if a.study not in STUDIES:
        raise Usage(f"unknown study {a.study!r}; one of {', '.join(STUDIES)}")
    st = STUDIES[a.study]
    dur = a.duration if a.duration is not None else (QUICK_DURATION if a.quick else st.duration)
    if not 0 < dur <= 3600:
        raise Usage(f"--duration: seconds, > 0 and <= 3600, got {dur:g}")
    rep = a.repeat if a.repeat is not None else (1 if a.quick else st.repeat)
    if not 1 <= rep <= 1000:
        raise Usage(f"--repeat: an integer from 1 to 1000, got {rep}")
    if a.bounce is not None:
        try:
            bounce = tuple(int(x) for x in a.bounce.split(","))
        except ValueError:
            raise Usage(f"--bounce: comma-separated integers (ns), got {a.bounce!r}") from None
        if not bounce or any(not 0 <= b <= 10**8 for b in bounce) or len(set(bounce)) != len(bounce):
            raise Usage(f"--bounce: distinct integers from 0 to 100000000 ns, got {a.bounce!r}")
    else:
        bounce = st.quick_bounce if a.quick else st.bounce
    return Options(st, a.out, float(dur), rep, bounce, a.quick, a.resume)


def _need_extras() -> None:
    for mod in ("tqdm", "matplotlib"):
        if importlib.util.find_spec(mod) is None:
            raise Usage(f"{mod} is not installed; install the plot extra: pip install '.[plot]'")


# -- CSV ----------------------------------------------------------------------------------
def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return format(v, ".6g")
    return str(v)


def _typed(s: str) -> Any:
    if s == "":
        return None
    if s in ("true", "false"):
        return s == "true"
    for conv in (int, float):
        try:
            return conv(s)
        except ValueError:
            pass
    return s


def read_rows(path: str) -> list[dict[str, str]]:
    """Complete rows of an existing CSV (a torn last line is dropped).
    Raises Usage if its columns are not this script's."""
    with open(path, newline="") as f:
        r = csv.reader(f)
        head = next(r, None)
        if head is None:
            return []
        if tuple(head) != COLUMNS:
            raise Usage(f"{path} has other columns than this version writes; "
                        "move it away or run without --resume")
        return [dict(zip(COLUMNS, row)) for row in r if len(row) == len(COLUMNS)]


def write_rows(path: str, rows: Iterable[dict[str, str]]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(COLUMNS)
        for row in rows:
            w.writerow([row[c] for c in COLUMNS])
    os.replace(tmp, path)


class RowWriter:
    """Appends a row and flushes it at once, with SIGINT/SIGTERM held off
    while it is written, so an interruption never leaves half a row."""

    def __init__(self, path: str) -> None:
        self.f = open(path, "a", newline="")
        self.w = csv.writer(self.f, lineterminator="\n")

    def write(self, row: dict[str, str]) -> None:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            self.w.writerow([row[c] for c in COLUMNS])
            self.f.flush()
            os.fsync(self.f.fileno())
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def close(self) -> None:
        self.f.close()


# -- one point ----------------------------------------------------------------------------
def run_point(point: Point, rep: int) -> dict[str, Any]:
    """Run one point; its row.  An interrupted run raises KeyboardInterrupt
    (Ctrl-C) or Terminated, and leaves no row: it is run again on --resume."""
    from workers.supervisor import Supervisor

    row: dict[str, Any] = dict(asdict(point), rep=rep, seed=rep + 1,
                               loadavg_1m=os.getloadavg()[0])
    t0 = time.monotonic()
    try:
        outcome = Supervisor(point.config(rep)).run()
    except (KeyboardInterrupt, Terminated):
        raise
    except Exception as e:  # a bug or a refused config: record it, go on
        row.update(status="error", fault=f"{type(e).__name__}: {e}"[:300],
                   elapsed_s=time.monotonic() - t0)
        return row
    if outcome.status == "interrupted":
        raise KeyboardInterrupt
    if outcome.status == "terminated":
        raise Terminated(signal.SIGTERM)
    res = outcome.result
    row["elapsed_s"] = time.monotonic() - t0
    row.update(_from_result(res))
    return row


def _from_result(res: dict) -> dict[str, Any]:
    from netq.app.report import derived

    s = res["setup"]
    d = derived(res)
    m = res.get("mechanism", {})
    lat = res.get("latency", {})
    drops = {k: v for k, v in res.get("drops", {}).items() if v}
    bad = [c["name"] for c in res.get("invariants", []) if not c["ok"]]
    fault = "; ".join(list(res.get("faults") or []) + [f"invariant {n}" for n in bad])
    out = {
        "status": res["status"], "invariants_ok": res.get("invariants_ok"),
        "exit_code": res.get("exit_code"), "fault": fault[:300] or None,
        "shared_cores": s["shared_cores"], "processes": s["processes"],
        "host_cores": len(s["host_cores"]), "lock_waiting": s["lock"]["waiting"],
        "lock_spin_ns": s["lock"]["spin_ns"], "window_s": res.get("window_s"),
        "generated": res.get("generated"), "delivered": res.get("delivered"),
        "delivered_in_window": res.get("delivered_in_window"),
        "drops_total": sum(drops.values()),
        "drops": " ".join(f"{k}={v}" for k, v in sorted(drops.items())) or None,
        "bypass": m.get("bypass"), "requeues": m.get("requeues"),
        "latency_p50_ns": lat.get("p50"), "latency_p99_ns": lat.get("p99"),
    }
    for k in FIGURES:
        if k in d:
            out[k] = d[k]
    return out


# -- the summary ----------------------------------------------------------------------------
def medians(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per point (the key without ``rep``): repetitions, how many ended ok,
    their statuses, and the median of every figure over the ok ones."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in KEY if k != "rep"), []).append(r)
    out = []
    for key, rs in groups.items():
        ok = [r for r in rs if r["status"] == "ok"]
        m: dict[str, Any] = dict(zip([k for k in KEY if k != "rep"], key))
        m.update(reps=len(rs), ok=len(ok), statuses=sorted({r["status"] for r in rs}),
                 shared_cores=any(r["shared_cores"] for r in rs if r["shared_cores"] is not None))
        for k in FIGURES + ("generated", "delivered", "drops_total"):
            vals = [r[k] for r in ok if r[k] is not None]
            m[k] = statistics.median(vals) if vals else None
        out.append(m)
    return out


def ratios(ms: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """generations: defer (6.19) over busylock (6.18), per bounce_ns, qdisc,
    lock waiting and senders where both have a median pps: the pps ratio and
    the CPU-per-packet ratio (None if either CPU median is missing), with the
    medians they come from.  Sorted by bounce_ns, qdisc, lock_wait, cpus."""
    by: dict[tuple, dict[str, dict]] = {}
    for m in ms:
        if m["study"] != "generations":
            continue
        by.setdefault((m["bounce_ns"], m["qdisc"], m["lock_wait"], m["cpus"]), {})[m["strategy"]] = m
    out = []
    order = {q: i for i, q in enumerate(GEN_QDISCS)}
    worder = {w: i for i, w in enumerate(GEN_LOCK_WAIT)}
    for (b, qd, w, n), st in sorted(by.items(), key=lambda kv: (
            kv[0][0], order.get(kv[0][1], 9), str(kv[0][1]), worder.get(kv[0][2], 9),
            str(kv[0][2]), kv[0][3])):
        old, new = st.get("busylock"), st.get("defer")
        if not old or not new or not old["pps"] or new["pps"] is None:
            continue
        oc, nc = old["cpu_ns_per_packet"], new["cpu_ns_per_packet"]
        out.append({"bounce_ns": b, "qdisc": qd, "lock_wait": w, "cpus": n,
                    "pps_ratio": new["pps"] / old["pps"],
                    "cpu_ns_per_packet_ratio": nc / oc if oc and nc is not None else None,
                    "busylock_pps": old["pps"], "defer_pps": new["pps"],
                    "busylock_cpu_ns_per_packet": oc, "defer_cpu_ns_per_packet": nc})
    return out


def machine_info() -> dict[str, Any]:
    model = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_kb = None
    try:
        with open("/proc/meminfo") as f:
            mem_kb = int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        pass
    try:
        from shm import native

        backend = native.backend()
    except Exception as e:  # noqa: BLE001 - informational only
        backend = f"unknown ({e})"
    return {"hostname": platform.node(), "platform": platform.platform(),
            "python": platform.python_version(), "cpu_model": model,
            "host_cores": sorted(os.sched_getaffinity(0)), "cpu_count": os.cpu_count(),
            "mem_total_kb": mem_kb, "atomics_backend": backend}


def _table(study: str, ms: list[dict[str, Any]]) -> str:
    """The medians as a text table; generations adds the defer / busylock
    ratios beside the kernel's figures."""
    cols = [("cpus", "cpus"), ("tx_queues", "txq"), ("xps", "xps"), ("strategy", "strategy"),
            ("lock_fairness", "fair"), ("bounce_ns", "bounce"), ("pps", "pps"),
            ("cpu_ns_per_packet", "cpu us/pkt"), ("acq_bounces_per_packet", "acq-b/pkt"),
            ("contentions_per_packet", "cont/pkt"), ("owner_ahead_per_relock", "ahead"),
            ("packets_per_qdisc_run", "pkt/run"), ("ctx_switches_per_packet", "csw/pkt"),
            ("ok", "ok")]
    if study == "contention":
        cols = [c for c in cols if c[0] not in ("tx_queues", "xps")]
    elif study == "generations":
        keep = ["strategy", "qdisc", "lock_wait", "cpus", "pps", "cpu_ns_per_packet",
                "owner_ahead_per_relock", "packets_per_qdisc_run", "ctx_switches_per_packet", "ok"]
        if len({m["bounce_ns"] for m in ms}) > 1:
            keep.insert(4, "bounce_ns")
        names = dict(cols, qdisc="qdisc", lock_wait="lock wait")
        cols = [(k, names[k]) for k in keep]
        order = {q: i for i, q in enumerate(GEN_QDISCS)}
        worder = {w: i for i, w in enumerate(GEN_LOCK_WAIT)}
        sorder = {s: i for i, (s, _) in enumerate(GENERATIONS)}
        ms = sorted(ms, key=lambda m: (m["bounce_ns"], order.get(m["qdisc"], 9), worder.get(
            m["lock_wait"], 9), m["cpus"], sorder.get(m["strategy"], 9)))
    else:
        cols = [c for c in cols if c[0] not in ("strategy", "lock_fairness", "owner_ahead_per_relock")]

    def fmt(k: str, v: Any) -> str:
        if v is None:
            return "-"
        if k == "pps":
            return f"{v / 1e3:.1f}k"
        if k == "cpu_ns_per_packet":
            return f"{v / 1e3:.1f}"
        if k == "ok":
            return str(v)
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    body = [[fmt(k, m[k]) if k != "ok" else f"{m['ok']}/{m['reps']}" for k, _ in cols] for m in ms]
    head = [h for _, h in cols]
    w = [max(len(x) for x in col) for col in zip(head, *body)]
    lines = ["  ".join(c.rjust(n) for c, n in zip(r, w)) for r in [head] + body]
    if study == "generations":
        lines += ["", "defer (6.19) / busylock (6.18), ratios of medians; the kernel: "
                  + KERNEL_DEFER["text"]]
        rs = ratios(ms)
        many = len({r["bounce_ns"] for r in rs}) > 1
        for r in rs:
            where = f"{r['qdisc']}, {r['lock_wait']}, {r['cpus']} sender{'s' if r['cpus'] > 1 else ''}"
            if many:
                where += f", bounce {r['bounce_ns']}"
            cpu = r["cpu_ns_per_packet_ratio"]
            lines.append(f"  {where + ':':<32} defer / busylock: pps {r['pps_ratio']:.2f}x, "
                         f"CPU ns/pkt {'-' if cpu is None else format(cpu, '.2f') + 'x'}"
                         f"   (kernel: pps {KERNEL_DEFER['pps_ratio']}x, CPU ns/pkt "
                         f"{KERNEL_DEFER['cpu_per_packet_ratio']}x)")
        if not rs:
            lines.append("  (no qdisc, lock waiting and sender count with a median for both)")
    return "\n".join(lines)


# -- the sweep --------------------------------------------------------------------------------
def _load_plot_module():
    spec = importlib.util.spec_from_file_location("netq_sweep_plot", os.path.join(HERE, "plot.py"))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def sweep(opts: Options, argv: list[str]) -> int:
    from tqdm import tqdm

    started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    plan = opts.plan()
    path = opts.csv_path
    kept: list[dict[str, str]] = []
    if opts.resume and os.path.exists(path):
        kept = read_rows(path)
    write_rows(path, kept)  # fresh, or the kept rows without a torn last line
    done = {tuple(r[k] for k in KEY) for r in kept}
    todo = [(p, r) for p, r in plan if p.key(r) not in done]
    if opts.resume:
        print(f"{PROG}: {len(plan) - len(todo)} of {len(plan)} runs already in {path}; "
              f"{len(todo)} to go", file=sys.stderr)
    command = shlex.join([sys.executable] + argv)
    meta = {"started": started, "command": command,
            "commands": _earlier_commands(opts) + [command] if opts.resume else [command]}
    writer = RowWriter(path)
    failed = 0
    bar = tqdm(total=len(todo), unit="run", desc=opts.study.name, dynamic_ncols=True)
    try:
        for point, rep in todo:
            bar.set_postfix_str(f"{point.label()} #{rep}")
            row = run_point(point, rep)
            writer.write({k: _cell(row.get(k)) for k in COLUMNS})
            if row["status"] != "ok":
                failed += 1
                bar.write(f"{PROG}: {point.label()} rep {rep}: {row['status']}"
                          f" - {row.get('fault') or ''}")
            bar.update(1)
    except KeyboardInterrupt:
        bar.close()
        writer.close()
        _finish(opts, plan, meta, complete=False)
        print(f"{PROG}: interrupted; rows so far are in {path}: rerun with --resume to go on",
              file=sys.stderr)
        return 130
    except Terminated as e:
        bar.close()
        writer.close()
        _finish(opts, plan, meta, complete=False)
        print(f"{PROG}: terminated; rerun with --resume to go on", file=sys.stderr)
        return 128 + e.signum
    bar.close()
    writer.close()
    doc = _finish(opts, plan, meta, complete=True)
    png = _load_plot_module().plot_study(doc, os.path.join(opts.out, f"{opts.study.name}.png"))
    print(_table(opts.study.name, doc["medians"]))
    bad = [r for r in doc["rows"] if r["status"] != "ok"]
    print(f"{PROG}: {len(doc['rows'])} runs ({len(bad)} not ok); wrote {path}, "
          f"{os.path.join(opts.out, opts.study.name + '.json')}, {png}")
    return 1 if bad else 0


def _earlier_commands(opts: Options) -> list[str]:
    """The commands that wrote the rows a --resume keeps (from STUDY.json)."""
    try:
        with open(os.path.join(opts.out, f"{opts.study.name}.json")) as f:
            doc = json.load(f)
    except (OSError, ValueError):
        return []
    if not isinstance(doc, dict) or doc.get("study") != opts.study.name:
        return []
    return [c for c in doc.get("commands", [doc.get("command")]) if isinstance(c, str)]


def _finish(opts: Options, plan: list[tuple[Point, int]], meta: dict, complete: bool) -> dict:
    """Write STUDY.json from the CSV rows that belong to this plan."""
    keys = {p.key(r) for p, r in plan}
    rows = [{k: _typed(v) if k not in TEXT else (v or None) for k, v in r.items()}
            for r in read_rows(opts.csv_path) if tuple(r[k] for k in KEY) in keys]
    doc = {
        "version": JSON_VERSION,
        "study": opts.study.name,
        "summary": opts.study.summary,
        "complete": complete and len(rows) == len(plan),
        "started": meta["started"],
        "finished": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": meta["command"],
        "commands": meta["commands"],
        "cwd": os.getcwd(),
        "machine": {**machine_info(), "loadavg_end": list(os.getloadavg())},
        "parameters": {"duration_s": opts.duration, "repeat": opts.repeat,
                       "bounce_ns": list(opts.bounce), "quick": opts.quick,
                       "points": len(plan) // opts.repeat, "runs": len(plan)},
        "columns": list(COLUMNS),
        "rows": rows,
        "medians": medians(rows),
    }
    if opts.study.name == "generations":
        doc["ratios"] = ratios(doc["medians"])
        doc["kernel"] = KERNEL_DEFER
    path = os.path.join(opts.out, f"{opts.study.name}.json")
    with open(path + ".tmp", "w") as f:
        json.dump(doc, f, indent=1)
    os.replace(path + ".tmp", path)
    return doc


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated(signum)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        opts = parse_args(argv)
        if opts is None:
            for s in STUDIES.values():
                print(f"{s.name:12s} {s.summary} ({s.duration:g} s per point, {s.repeat} reps, "
                      f"bounce {','.join(map(str, s.bounce))})")
            return 0
        _need_extras()
        if os.path.exists(opts.out) and not os.path.isdir(opts.out):
            raise Usage(f"--out: {opts.out} exists and is not a directory")
        try:
            os.makedirs(opts.out, exist_ok=True)
        except OSError as e:
            raise Usage(f"--out: cannot create {opts.out}: {e.strerror}") from None
        if opts.resume and os.path.exists(opts.csv_path):
            read_rows(opts.csv_path)  # refuse a CSV of other columns before running anything
    except Usage as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _raise_terminated)
    signal.signal(signal.SIGHUP, _raise_terminated)
    try:
        return sweep(opts, [sys.argv[0]] + argv)
    except KeyboardInterrupt:  # between setting up and the first point, or after the last
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Terminated as e:
        return 128 + e.signum
    except Usage as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
