"""What a run reports: a typed, versioned document (the JSON of ``--json``).

The types below are the schema; ``result.schema.json`` beside this module
is the same schema as a JSON Schema (draft 2020-12) that the tests validate
real runs against.  A change to a key changes both and bumps
:data:`RESULT_VERSION`.  Times are in ns unless a key says otherwise; every
number is finite (the JSON is strict: no NaN or Infinity), and a ratio with
nothing to divide by is null.

Version history:

1. untyped dicts.  Keys were added under version 1 without a bump: its
   description did not list ``name``, ``delivered_in_window``, ``events``,
   ``lock_holders``, ``setup.hashrnd``, ``setup.device_loops``,
   ``setup.nic``, ``setup.packets``, ``setup.profile.source``,
   ``setup.lock.yield_spin``, a queue's ``tx_packets``, a qdisc's
   ``device``, ``nic.delivered_bytes`` or ``nic.cpu_ns``.
2. the same keys, typed here and described by the JSON Schema; every key
   below is in every run (the optional ones where they say so).
4. an event row's ``vt_at_ns`` and ``vt_done_ns`` (events on the virtual
   clock) and ``vt.window`` ("duration" or "packets": ``--packets`` on the
   virtual clock).

Top level (:class:`Result`):

``version``            :data:`RESULT_VERSION`
``name``               the configuration's name
``status``             "ok" | "fault" | "stalled" | "invariant" | "interrupted"
                       | "terminated"
``exit_code``          the process exit code the run ends with
``setup``              :class:`Setup`: cpus, cpu_map (emulated → host core),
                       host_cores, shared_cores, processes, nic_core,
                       strategy, profile, lock, costs, devices, traffic,
                       platform (measured costs), seed, duration_s, ...
``window_s``           the measured window (start gate → stop), seconds; on
                       the virtual clock virtual seconds: the duration, or
                       with a packet budget from the start to its last wire
                       finish (``vt.window``)
``generated``          skbs generated in all; ``delivered``: put on the wire;
                       ``delivered_in_window``: by the end of the window
``pps``                delivered packets/s over the window (NIC side)
``pps_by_cpu``         list, one per emulated CPU (by sending CPU)
``cpu_ns_per_packet``  CPU time of all emulated CPUs in the window / delivered
                       in the window (null if nothing was delivered)
``cpus``               :class:`CpuRow` per CPU
``queues``             :class:`QueueRow` per TX queue of every device
``qdiscs``             :class:`QdiscRow` per qdisc (tc -s fields and more)
``locks``              :class:`LockRow`: /proc/lock_stat rows with at least
                       one acquisition or contention
``drops``              {reason: count} for every named reason
``messages``           :class:`MessageRow`: kernel messages per device
``latency``            :class:`Latency`: enqueue→wire (count; the rest when
                       count > 0)
``mechanism``          :class:`Mechanism`: softnet totals and ratios
``nic``                :class:`NicRow`
``projection``         null, or :class:`Projection` (:func:`projection`; a
                       projection, not a measurement)
``invariants``         :class:`CheckRow` per invariant; ``invariants_ok``
``faults``             what went wrong (dead workers, stalls)
``events``             :class:`EventRow` per event carried out
``lock_holders``       only when status is not "ok": :class:`LockHolder` rows
``label``, ``preset``, ``variants``, ``ratios``: added by ``netq.run``
                       (variants: every run of a preset, each a Result)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypedDict, cast

import numpy as np
from hdrh.histogram import HdrHistogram

from netq.kernel.core.dql import dql_inflight
from netq.kernel.kstructs import (
    DROP_REASONS,
    MSG_TEXT,
    NETDEV_QUEUE,
    NIC,
    QDISC,
    SOFTNET,
)
from netq.kernel.sched.sch_mq import mq_dump

from .invariants import Check

RESULT_VERSION = 4

#: the exit codes of every netq command (README: "Exit codes"): a run or job
#: that ended well, one that failed (a fault, a stall, a broken invariant),
#: bad usage or configuration, SIGINT, and SIGTERM or SIGHUP
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143
#: a run's status -> its exit code
EXIT_CODES = {
    "ok": EXIT_OK,
    "fault": EXIT_FAILED,
    "stalled": EXIT_FAILED,
    "invariant": EXIT_FAILED,
    "interrupted": EXIT_INTERRUPTED,
    "terminated": EXIT_TERMINATED,
}
#: the JSON Schema of a result, shipped beside this module (package data)
SCHEMA_FILE = "result.schema.json"


# -- the types -----------------------------------------------------------------------------
class ProfileSetup(TypedDict):
    name: str
    recursion_limit: int
    dev_tx_weight: int
    tx_hash: str
    source: str


class LockSetup(TypedDict):
    fairness: str
    waiting: str
    spin_ns: int
    yield_spin: bool
    why: str


class NicSetup(TypedDict):
    batch: int
    coalesce_us: int


class _DeviceSetupBase(TypedDict):
    name: str
    kind: str
    tx_queues: int
    real_num_tx_queues: int
    lltx: bool


class DeviceSetup(_DeviceSetupBase, total=False):
    """A physical device has the ring keys; a virtual one ``lower``."""

    ring_size: int
    tx_queue_len: int
    line_rate_bps: float
    line_rate_pps: float
    #: queue number (a string in JSON) -> xps_cpus as the file shows it
    xps: dict[int, str]
    #: num_rx_queues, and queue -> xps_rxqs as the file shows it, when a
    #: device has xps_rxqs maps (4.18+)
    rx_queues: int
    xps_rxqs: dict[int, str]
    irq_cpus: list[int]
    lower: str


class Setup(TypedDict):
    cpus: int
    cpu_map: list[int]
    nic_core: int
    host_cores: list[int]
    processes: int
    shared_cores: bool
    #: how locked qdiscs are entered (rootlock, busylock, defer)
    strategy: str
    #: pfifo_fast is TCQ_F_NOLOCK in this run (its static_flags, 4.16+)
    pfifo_fast_nolock: bool
    #: why this configuration is one no kernel has (empty: some kernel has it)
    what_if: list[str]
    profile: ProfileSetup
    lock: LockSetup
    #: CostConfig's fields
    costs: dict[str, Any]
    devices: list[DeviceSetup]
    device_loops: list[list[str]]
    #: each TrafficConfig's fields
    traffic: list[dict[str, Any]]
    #: measured host costs (workers.platform), ns
    platform: dict[str, float]
    nic: NicSetup
    seed: int | None
    duration_s: float
    packets: int
    hashrnd: int
    #: "wall" or "virtual" (docs/virtual-time.md)
    clock: str
    #: the virtual clock's slack (ns); None on the wall clock
    slack_ns: int | None
    #: the virtual clock's price list (ns per operation); None on the wall clock
    vcosts: dict[str, Any] | None


class CpuRow(TypedDict):
    cpu: int
    host_core: int
    pid: int
    state: str
    generated: int
    delivered_in_window: int
    pps: float
    cpu_ns: int
    cpu_ns_per_packet: float | None
    nvcsw: int
    nivcsw: int


class _QueueRowBase(TypedDict):
    device: str
    queue: int
    packets: int
    bytes: int
    pps: float
    tx_packets: int
    tx_stops: int
    tx_restart: int
    tx_busy: int
    completions_local: int
    completions_remote: int
    irq_cpu: int
    bql: bool


class QueueRow(_QueueRowBase, total=False):
    """The bql_* keys are there when ``bql`` is true."""

    bql_limit: int
    bql_limit_max: int
    bql_inflight: int
    bql_stack_xoffs: int


class FqStats(TypedDict):
    limit: int
    flow_limit: int
    quantum: int
    initial_quantum: int
    flows_plimit: int


class _QdiscRowBase(TypedDict):
    kind: str
    name: str
    device: str
    parent: str
    sent_bytes: int
    sent_packets: int
    dropped: int
    overlimits: int
    requeues: int
    backlog: int
    qlen: int
    bypass: int
    runs: int
    run_packets: int
    bulk_lists: int
    bulk_skbs: int
    defer_splices: int
    defer_spliced: int


class QdiscRow(_QdiscRowBase, total=False):
    """``fq`` only for fq qdiscs."""

    fq: FqStats


class LockRow(TypedDict):
    """shm.lock.LockSpace.stats() rows."""

    name: str
    acquisitions: int
    contentions: int
    con_bounces: int
    acq_bounces: int
    waittime_min_ns: int
    waittime_max_ns: int
    waittime_total_ns: int
    holdtime_min_ns: int
    holdtime_max_ns: int
    holdtime_total_ns: int
    ahead_total: int
    sleeps: int
    trylock_fail: int
    handoffs: int
    handoff_total_ns: int
    handoff_max_ns: int
    acquisitions_by_cpu: list[int]


class LockHolder(TypedDict):
    """shm.lock.LockSpace.holders() rows."""

    lock: str
    owner_cpu: int
    owner_pid: int | None
    owner_alive: bool | None
    waiters: list[int]


class MessageRow(TypedDict):
    text: str
    device: str
    printed: int
    suppressed: int


class _LatencyBase(TypedDict):
    count: int


class Latency(_LatencyBase, total=False):
    """Only ``count`` when nothing was measured."""

    mean: float
    p50: int
    p90: int
    p99: int
    p999: int
    max: int


class Mechanism(TypedDict):
    owner_relocks: int
    owner_relock_contended: int
    owner_ahead: int
    owner_wait_ns: int
    qdisc_runs: int
    run_packets: int
    bypass: int
    enqueued: int
    busylock_taken: int
    quota_exhausted: int
    requeues: int
    net_tx_action: int
    resched_trylock: int
    #: kernel/softirq.c: __do_softirq calls, restarts, loops ended by
    #: MAX_SOFTIRQ_RESTART / MAX_SOFTIRQ_TIME, ksoftirqd wakeups and turns,
    #: do_softirq calls left to a runnable ksoftirqd (4.9 .. 2023)
    softirq_runs: int
    softirq_restarts: int
    softirq_restart_limit: int
    softirq_time_limit: int
    ksoftirqd_wakeups: int
    ksoftirqd_runs: int
    softirq_deferred: int
    nvcsw: int
    nivcsw: int
    generated: int
    wmem_sleeps: int
    xmit_recursion_max: int
    xmit_recursion_cut: int
    #: null when the qdisc owner never re-took root_lock (nolock, noqueue)
    owner_ahead_per_relock: float | None
    owner_wait_ns_per_relock: float | None
    packets_per_qdisc_run: float
    ctx_switches_per_packet: float


class NicRow(TypedDict):
    delivered: int
    delivered_bytes: int
    reorders: int
    reorders_moved: int
    flow_queue_changes: int
    wakes: int
    bql_wakes: int
    write_space_wakes: int
    cpu_ns: int


class Projection(TypedDict):
    lock: str
    handoffs: int
    mean_handoff_ns: float
    handoff_ns: int
    saved_s: float
    busy_share: float
    measured_pps: float
    projected_pps: float


class CheckRow(TypedDict):
    name: str
    ok: bool
    detail: str


class _EventRowBase(TypedDict):
    at: float
    action: str
    device: str | None
    worker: str | None
    value: int | float | None
    done_at: float
    result: str


class EventRow(_EventRowBase, total=False):
    #: a "fault" event's fault (FAULTS), only on those
    fault: str | None
    #: virtual clock: the virtual ns at which the control process carried
    #: the event out (its ``at``, or later when an earlier event's work took
    #: it past that) and at which its work was done; null on the wall clock
    vt_at_ns: int | None
    vt_done_ns: int | None


class VtLock(TypedDict):
    name: str
    grants: int
    #: grants to a request earlier than the one granted just before it
    order_violations: int
    wait_total_ns: int
    hold_total_ns: int
    #: other waiters spinning at the releases of the grants that waited
    #: (each made a handoff slower by spinner_ns)
    spinners: int
    #: spinners the holder's writes to the lock's own cache line waited for
    #: (a root lock beside qlen), in all
    line_spinners: int


class VtStats(TypedDict):
    """How a virtual-clock run kept time."""

    #: virtual seconds of the window, and the wall seconds they took
    virtual_s: float
    #: what the window is: "duration" (the configured virtual seconds) or
    #: "packets" (a packet budget: from the start to the last skb's wire
    #: finish)
    window: str
    wall_s: float
    #: wall seconds per virtual second
    slowdown: float
    #: the largest clock - GVT any participant saw at the window, ns
    max_skew_ns: int
    order_violations: int
    grants: int
    #: acquires made while holding a lock (no window wait)
    nested_acquires: int
    window_waits: int
    #: per participant (the CPUs, then the NIC, then the control process
    #: when it carried out events): its clock at the end, ns
    clocks_ns: list[int]
    locks: list[VtLock]


class Measured(TypedDict):
    """What the supervisor collects from the shared state after a run."""

    version: int
    name: str
    setup: Setup
    window_s: float
    generated: int
    delivered: int
    delivered_in_window: int
    pps: float
    pps_by_cpu: list[float]
    cpu_ns_per_packet: float | None
    cpus: list[CpuRow]
    queues: list[QueueRow]
    qdiscs: list[QdiscRow]
    locks: list[LockRow]
    drops: dict[str, int]
    messages: list[MessageRow]
    latency: Latency
    mechanism: Mechanism
    nic: NicRow
    #: a virtual-clock run's timekeeping; None on the wall clock
    vt: VtStats | None


class _ResultBase(Measured):
    projection: Projection | None
    invariants: list[CheckRow]
    invariants_ok: bool
    status: str
    faults: list[str]
    events: list[EventRow]
    exit_code: int


class Result(_ResultBase, total=False):
    """A whole run (see the module doc); the optional keys are added for a
    failed run (``lock_holders``) or by ``netq.run`` (the rest)."""

    lock_holders: list[LockHolder]
    label: str
    preset: str
    variants: list[Result]
    ratios: list[dict[str, Any]]


def finish(
    measured: Measured,
    checks: Sequence[Check],
    status: str,
    faults: list[str],
    events: list[EventRow],
    exit_code: int,
    lock_holders: list[LockHolder] | None = None,
) -> Result:
    """The run's result: what was measured, the projection, the invariant
    checks, and how the run ended (``lock_holders`` for a failed run)."""
    res: Result = {
        **measured,
        "projection": projection(measured),
        "invariants": [CheckRow(name=c.name, ok=c.ok, detail=c.detail) for c in checks],
        "invariants_ok": all(c.ok for c in checks),
        "status": status,
        "faults": faults,
        "events": events,
        "exit_code": exit_code,
    }
    if lock_holders is not None:
        res["lock_holders"] = lock_holders
    return res


# -- the rows ------------------------------------------------------------------------------
_QDISC_EXTRA = ("bulk_lists", "bulk_skbs", "defer_splices", "defer_spliced")


def qdisc_rows(net) -> list[QdiscRow]:
    """One row per qdisc of a device (tc -s qdisc), then a noqueue row per
    device without a queue; an mq root sums its children."""
    rows: list[QdiscRow] = []
    for q in net.qdiscs:
        if q.dev is None:
            continue  # builtins (noop, noqueue) are not shown per device by tc
        f = q.f
        if q.ops.id == "mq":
            s = mq_dump(q)
            vals = dict(
                sent_bytes=s["bytes"],
                sent_packets=s["packets"],
                dropped=s["drops"],
                overlimits=s["overlimits"],
                requeues=s["requeues"],
                backlog=s["backlog"],
                qlen=s["qlen"],
                bypass=sum(c.f[QDISC.bypass] for c in q.children),
                runs=sum(c.f[QDISC.runs] for c in q.children),
                run_packets=sum(c.f[QDISC.run_packets] for c in q.children),
                **{k: sum(c.f[getattr(QDISC, k)] for c in q.children) for k in _QDISC_EXTRA},
            )
        else:
            vals = dict(
                sent_bytes=f[QDISC.bytes],
                sent_packets=f[QDISC.packets],
                dropped=f[QDISC.drops],
                overlimits=f[QDISC.overlimits],
                requeues=f[QDISC.requeues],
                backlog=f[QDISC.backlog],
                qlen=f[QDISC.qlen],
                bypass=f[QDISC.bypass],
                runs=f[QDISC.runs],
                run_packets=f[QDISC.run_packets],
                **{k: f[getattr(QDISC, k)] for k in _QDISC_EXTRA},
            )
        rows.append(
            cast(
                QdiscRow,
                {
                    "kind": q.ops.id,
                    "name": q.name,
                    "device": q.dev.name,
                    "parent": net.qdisc_parent[q.id],
                    **{k: int(v) for k, v in vals.items()},
                },
            )
        )
        if q.ops.id == "fq":
            rows[-1]["fq"] = {
                "limit": int(f[QDISC.limit]),
                "flow_limit": int(f[QDISC.fq_flow_plimit]),
                "quantum": int(f[QDISC.fq_quantum]),
                "initial_quantum": int(f[QDISC.fq_initial_quantum]),
                "flows_plimit": int(f[QDISC.fq_flows_plimit]),
            }
    for d in net.devices:
        if d.cfg.is_virtual or d.cfg.qdisc == "noqueue":
            rows.append(
                cast(
                    QdiscRow,
                    {
                        "kind": "noqueue",
                        "name": f"{d.name} noqueue",
                        "device": d.name,
                        "parent": "root",
                        "sent_bytes": 0,
                        "sent_packets": 0,
                        "dropped": 0,
                        "overlimits": 0,
                        "requeues": 0,
                        "backlog": 0,
                        "qlen": 0,
                        "bypass": 0,
                        "runs": 0,
                        "run_packets": 0,
                        **{k: 0 for k in _QDISC_EXTRA},
                    },
                )
            )
    return rows


def queue_rows(net, window_s: float, at_stop: dict | None) -> list[QueueRow]:
    """One row per TX queue of every device; packets/s up to the stop."""
    rows: list[QueueRow] = []
    for t in net.txqs:
        f = t.f
        stop_pk = at_stop["queue_packets"][t.index] if at_stop else f[NETDEV_QUEUE.nic_packets]
        rows.append(
            {
                "device": t.dev.name,
                "queue": t.qindex,
                "packets": int(f[NETDEV_QUEUE.nic_packets]),
                "bytes": int(f[NETDEV_QUEUE.nic_bytes]),
                "pps": stop_pk / window_s if window_s > 0 else 0.0,
                "tx_packets": int(f[NETDEV_QUEUE.tx_packets]),
                "tx_stops": int(f[NETDEV_QUEUE.tx_stops]),
                "tx_restart": int(f[NETDEV_QUEUE.tx_restart]),
                "tx_busy": int(f[NETDEV_QUEUE.tx_busy]),
                "completions_local": int(f[NETDEV_QUEUE.completions_local]),
                "completions_remote": int(f[NETDEV_QUEUE.completions_remote]),
                "irq_cpu": int(f[NETDEV_QUEUE.irq_cpu]),
                "bql": bool(t.bql),
            }
        )
        if t.bql:
            rows[-1].update(
                {
                    "bql_limit": int(f[NETDEV_QUEUE.dql_limit]),
                    "bql_limit_max": int(f[NETDEV_QUEUE.dql_limit_max_seen]),
                    "bql_inflight": int(dql_inflight(f)),
                    "bql_stack_xoffs": int(f[NETDEV_QUEUE.dql_stack_xoffs]),
                }
            )
    return rows


def drops(net) -> dict[str, int]:
    tot = np.zeros(len(DROP_REASONS), dtype=np.int64)
    for row in net.drops:
        tot += np.array(row) if isinstance(row, list) else np.frombuffer(row, dtype=np.int64)
    return {r: int(tot[i]) for i, r in enumerate(DROP_REASONS)}


def messages(net) -> list[MessageRow]:
    out: list[MessageRow] = []
    for d in net.devices:
        for m, text in enumerate(MSG_TEXT):
            printed = sum(row[(d.index * 2 + m) * 2] for row in net.msgs)
            supp = sum(row[(d.index * 2 + m) * 2 + 1] for row in net.msgs)
            if printed or supp:
                out.append(
                    {
                        "text": text % d.name,
                        "device": d.name,
                        "printed": int(printed),
                        "suppressed": int(supp),
                    }
                )
    return out


def latency(encoded: bytes | None) -> Latency:
    """Percentiles of the NIC's encoded HDR histogram."""
    if not encoded:
        return {"count": 0}
    h = HdrHistogram.decode(encoded)
    n = h.get_total_count()
    if not n:
        return {"count": 0}
    return {
        "count": int(n),
        "mean": float(h.get_mean_value()),
        "p50": int(h.get_value_at_percentile(50)),
        "p90": int(h.get_value_at_percentile(90)),
        "p99": int(h.get_value_at_percentile(99)),
        "p999": int(h.get_value_at_percentile(99.9)),
        "max": int(h.get_max_value()),
    }


def mechanism(net, delivered_window: int) -> Mechanism:
    """Softnet totals and ratios.  On the virtual clock they are each CPU's
    counters as they stood when its clock passed the window's end (the
    drain that follows, one CPU emptying the qdisc with nobody sending,
    would dilute contention figures such as the owner's re-take wait); on
    the wall clock, the totals at the end of the drain."""
    sds = net.softnet_at_stop if net.softnet_at_stop is not None else net.softnet
    tot = {
        k: int(sum(sd[getattr(SOFTNET, k)] for sd in sds))
        for k in (
            "owner_relocks",
            "owner_relock_contended",
            "owner_ahead",
            "owner_wait_ns",
            "qdisc_runs",
            "run_packets",
            "bypass",
            "enqueued",
            "busylock_taken",
            "quota_exhausted",
            "requeues",
            "net_tx_action",
            "resched_trylock",
            "softirq_runs",
            "softirq_restarts",
            "softirq_restart_limit",
            "softirq_time_limit",
            "ksoftirqd_wakeups",
            "ksoftirqd_runs",
            "softirq_deferred",
            "nvcsw",
            "nivcsw",
            "generated",
            "wmem_sleeps",
        )
    }
    tot["xmit_recursion_max"] = int(max(sd[SOFTNET.xmit_recursion_max] for sd in sds))
    tot["xmit_recursion_cut"] = int(max(sd[SOFTNET.xmit_recursion_cut] for sd in sds))
    relocks = tot["owner_relocks"]
    dw = max(delivered_window, 1)
    return cast(
        Mechanism,
        {
            **tot,
            # None when the qdisc owner never re-took root_lock (nolock,
            # noqueue), and on the virtual clock, whose lock queue is not
            # counted (the wait is the virtual one: shm.vtime.virtual_lock)
            "owner_ahead_per_relock": tot["owner_ahead"] / relocks
            if relocks and not net.cfg.virtual
            else None,
            "owner_wait_ns_per_relock": tot["owner_wait_ns"] / relocks if relocks else None,
            "packets_per_qdisc_run": tot["run_packets"] / tot["qdisc_runs"]
            if tot["qdisc_runs"]
            else 0.0,
            "ctx_switches_per_packet": (tot["nvcsw"] + tot["nivcsw"]) / dw,
        },
    )


#: a kernel-like cost of handing a spinlock to the next waiter (the
#: cache line moves to a CPU that is spinning on it)
KERNEL_HANDOFF_NS = 200


def projection(res: Measured, handoff_ns: int = KERNEL_HANDOFF_NS) -> Projection | None:
    """What the same schedule would deliver if the lock that lost the most
    time to handoffs had handed over in ``handoff_ns`` (a spinning waiter in
    the kernel) instead of the measured gaps (here a waiter that went to
    sleep needs a wake-up, ~45 us on the development VM).

    Only FIFO locks hand over (an unfair lock has no handoff to replace):
    None when there was none.  The run's window is shortened by the time
    saved, scaled to the share of deliveries inside the window (lock
    statistics cover the drain too).  A *projection*, not a measurement:
    it holds as a bound when that lock is the bottleneck, i.e. when it was
    held or being handed over most of the window (``busy_share``)."""
    if res.get("vt") is not None:
        return None  # a wall-clock remedy: a virtual run prices handoffs itself
    locks = [r for r in res.get("locks", []) if r.get("handoffs")]
    window_ns = (res.get("window_s") or 0) * 1e9
    dw = res.get("delivered_in_window") or 0
    if not locks or window_ns <= 0 or not dw:
        return None
    top = max(locks, key=lambda r: r["handoff_total_ns"])
    share = dw / max(res.get("delivered") or dw, dw)
    n = top["handoffs"]
    saved = share * max(0, top["handoff_total_ns"] - n * handoff_ns)
    if saved >= window_ns:
        return None
    return {
        "lock": top["name"],
        "handoffs": n,
        "mean_handoff_ns": top["handoff_total_ns"] / n,
        "handoff_ns": handoff_ns,
        "saved_s": saved / 1e9,
        "busy_share": share * (top["holdtime_total_ns"] + top["handoff_total_ns"]) / window_ns,
        "measured_pps": dw / (window_ns / 1e9),
        "projected_pps": dw / ((window_ns - saved) / 1e9),
    }


def vt_stats(net, wall_s: float, virtual_s: float | None = None) -> VtStats | None:
    """A virtual-clock run's timekeeping, from its clocks and locks' virtual
    records (shm.vtime); None on the wall clock.  ``virtual_s``: the
    window's virtual seconds (default: the configured duration)."""
    if not net.virtual:
        return None
    clocks = net.region.array("vclocks")
    vlocks = net.region.array("vlocks")
    if virtual_s is None:
        virtual_s = net.cfg.duration
    locks: list[VtLock] = [
        {
            "name": name,
            "grants": int(v["grants"]),
            "order_violations": int(v["violations"]),
            "wait_total_ns": int(v["wait"]),
            "hold_total_ns": int(v["hold"]),
            "spinners": int(v["spinners"]),
            "line_spinners": int(v["line_spinners"]),
        }
        for name, v in zip(net.locks.names, vlocks)
        if v["grants"]
    ]
    out: VtStats = {
        "virtual_s": virtual_s,
        "window": "packets" if net.cfg.packets else "duration",
        "wall_s": wall_s,
        "slowdown": wall_s / virtual_s if virtual_s else 0.0,
        "max_skew_ns": int(clocks["max_skew"].max()),
        "order_violations": int(vlocks["violations"].sum()),
        "grants": int(vlocks["grants"].sum()),
        "nested_acquires": int(clocks["nested"].sum()),
        "window_waits": int(clocks["window_waits"].sum()),
        "clocks_ns": [int(x) for x in clocks["now"]],
        "locks": locks,
    }
    del clocks, vlocks
    return out


def lock_rows(net) -> list[LockRow]:
    return [r for r in net.locks.stats() if r["acquisitions"] or r["contentions"]]


def nic_row(net) -> NicRow:
    n = net.nic
    return cast(
        NicRow,
        {
            k: int(n[getattr(NIC, k)])
            for k in (
                "delivered",
                "delivered_bytes",
                "reorders",
                "reorders_moved",
                "flow_queue_changes",
                "wakes",
                "bql_wakes",
                "write_space_wakes",
                "cpu_ns",
            )
        },
    )
