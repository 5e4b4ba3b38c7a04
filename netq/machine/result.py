"""What a run reports, as a versioned dict (the JSON of ``--json``).

Schema (``version`` 1); times in ns unless a key says otherwise:

``version``            1
``status``             "ok" | "fault" | "stalled" | "interrupted" | "invariant"
``exit_code``          the process exit code the run ends with
``setup``              cpus, cpu_map (emulated → host core), host_cores,
                       shared_cores (bool), processes, nic_core, strategy,
                       profile (name, recursion_limit, dev_tx_weight, tx_hash),
                       lock (fairness, waiting, spin_ns, why), costs, devices,
                       traffic, platform (measured costs), seed, duration_s
``window_s``           the measured window (start gate → stop), seconds
``generated``          skbs generated in all; ``delivered``: put on the wire
``pps``                delivered packets/s over the window (NIC side)
``pps_by_cpu``         list, one per emulated CPU (by sending CPU)
``cpu_ns_per_packet``  CPU time of all emulated CPUs in the window / delivered
                       in the window
``cpus``               per CPU: generated, pps, cpu_ns, nvcsw, nivcsw, counters
``queues``             one per TX queue of every device: device, queue,
                       packets, bytes (wire), pps, tx_stops, tx_restart, tx_busy,
                       completions_local, completions_remote, irq_cpu; with
                       BQL (``bql`` true): bql_limit (bytes, now),
                       bql_limit_max (largest reached), bql_inflight,
                       bql_stack_xoffs (times BQL stopped the queue)
``qdiscs``             one per qdisc: kind, name, parent, sent_bytes,
                       sent_packets, dropped, overlimits, requeues, backlog,
                       qlen, bypass, runs, run_packets, bulk_lists and bulk_skbs
                       (bulk dequeue: lists of more than one skb, skbs in
                       them), defer_splices and defer_spliced (defer:
                       defer_list splices, skbs taken by them); fq qdiscs
                       also ``fq``: limit, flow_limit, quantum,
                       initial_quantum, flows_plimit (drops of full flows)
``locks``              /proc/lock_stat rows with at least one acquisition, plus
                       handoffs, handoff_total_ns, handoff_max_ns (FIFO locks:
                       the gaps between a release and the next waiter
                       running with the lock)
``drops``              {reason: count} for every named reason
``messages``           kernel messages: text, device, printed, suppressed
``latency``            enqueue→wire: count, mean, p50, p90, p99, p999, max (ns)
``mechanism``          waiters ahead of the qdisc owner, packets per qdisc run,
                       busylock takes, context switches per packet, ...
``nic``                delivered, reorders, reorders_moved, flow_queue_changes, wakes,
                       bql_wakes, write_space_wakes (CPUs woken by send-buffer
                       space)
``invariants``         list of {name, ok, detail}; ``invariants_ok`` bool
``faults``             what went wrong (dead workers, stalls), with lock owners
``projection``         None, or what the same schedule would deliver if the
                       lock that lost most time to FIFO handoffs had handed
                       over in 200 ns (kernel-like) instead of the measured
                       gaps: lock, handoffs, mean_handoff_ns, handoff_ns,
                       saved_s, busy_share, measured_pps, projected_pps
                       (:func:`projection`; a projection, not a measurement)
"""
from __future__ import annotations

import numpy as np

from netq.kernel.kstructs import (
    DROP_REASONS,
    MSG_TEXT,
    NETDEV_QUEUE,
    NIC,
    QDISC,
    SOFTNET,
)

from netq.kernel.core.dql import dql_inflight

RESULT_VERSION = 1


_QDISC_EXTRA = ("bulk_lists", "bulk_skbs", "defer_splices", "defer_spliced")


def qdisc_rows(net) -> list[dict]:
    from netq.kernel.sched.sch_mq import mq_dump

    rows = []
    for q in net.qdiscs:
        if q.dev is None:
            continue  # builtins (noop, noqueue) are not shown per device by tc
        f = q.f
        if q.ops.id == "mq":
            s = mq_dump(q)
            vals = dict(sent_bytes=s["bytes"], sent_packets=s["packets"], dropped=s["drops"],
                        overlimits=s["overlimits"], requeues=s["requeues"], backlog=s["backlog"],
                        qlen=s["qlen"], bypass=sum(c.f[QDISC.bypass] for c in q.children),
                        runs=sum(c.f[QDISC.runs] for c in q.children),
                        run_packets=sum(c.f[QDISC.run_packets] for c in q.children),
                        **{k: sum(c.f[getattr(QDISC, k)] for c in q.children) for k in _QDISC_EXTRA})
        else:
            vals = dict(sent_bytes=f[QDISC.bytes], sent_packets=f[QDISC.packets],
                        dropped=f[QDISC.drops], overlimits=f[QDISC.overlimits],
                        requeues=f[QDISC.requeues], backlog=f[QDISC.backlog], qlen=f[QDISC.qlen],
                        bypass=f[QDISC.bypass], runs=f[QDISC.runs],
                        run_packets=f[QDISC.run_packets],
                        **{k: f[getattr(QDISC, k)] for k in _QDISC_EXTRA})
        rows.append({"kind": q.ops.id, "name": q.name, "device": q.dev.name,
                     "parent": net.qdisc_parent[q.id], **{k: int(v) for k, v in vals.items()}})
        if q.ops.id == "fq":
            rows[-1]["fq"] = {"limit": int(f[QDISC.limit]), "flow_limit": int(f[QDISC.fq_flow_plimit]),
                              "quantum": int(f[QDISC.fq_quantum]),
                              "initial_quantum": int(f[QDISC.fq_initial_quantum]),
                              "flows_plimit": int(f[QDISC.fq_flows_plimit])}
    for d in net.devices:
        if d.cfg.is_virtual or d.cfg.qdisc == "noqueue":
            rows.append({"kind": "noqueue", "name": f"{d.name} noqueue", "device": d.name,
                         "parent": "root", "sent_bytes": 0, "sent_packets": 0, "dropped": 0,
                         "overlimits": 0, "requeues": 0, "backlog": 0, "qlen": 0, "bypass": 0,
                         "runs": 0, "run_packets": 0, **{k: 0 for k in _QDISC_EXTRA}})
    return rows


def queue_rows(net, window_s: float, at_stop: dict | None) -> list[dict]:
    rows = []
    for t in net.txqs:
        f = t.f
        stop_pk = at_stop["queue_packets"][t.index] if at_stop else f[NETDEV_QUEUE.nic_packets]
        rows.append({
            "device": t.dev.name, "queue": t.qindex,
            "packets": int(f[NETDEV_QUEUE.nic_packets]), "bytes": int(f[NETDEV_QUEUE.nic_bytes]),
            "pps": stop_pk / window_s if window_s > 0 else 0.0,
            "tx_packets": int(f[NETDEV_QUEUE.tx_packets]),
            "tx_stops": int(f[NETDEV_QUEUE.tx_stops]), "tx_restart": int(f[NETDEV_QUEUE.tx_restart]),
            "tx_busy": int(f[NETDEV_QUEUE.tx_busy]),
            "completions_local": int(f[NETDEV_QUEUE.completions_local]),
            "completions_remote": int(f[NETDEV_QUEUE.completions_remote]),
            "irq_cpu": int(f[NETDEV_QUEUE.irq_cpu]),
            "bql": bool(t.bql),
        })
        if t.bql:
            rows[-1].update({
                "bql_limit": int(f[NETDEV_QUEUE.dql_limit]),
                "bql_limit_max": int(f[NETDEV_QUEUE.dql_limit_max_seen]),
                "bql_inflight": int(dql_inflight(f)),
                "bql_stack_xoffs": int(f[NETDEV_QUEUE.dql_stack_xoffs]),
            })
    return rows


def drops(net) -> dict:
    tot = np.zeros(len(DROP_REASONS), dtype=np.int64)
    for row in net.drops:
        tot += np.frombuffer(row, dtype=np.int64) if isinstance(row, memoryview) else np.array(row)
    return {r: int(tot[i]) for i, r in enumerate(DROP_REASONS)}


def messages(net) -> list[dict]:
    out = []
    for d in net.devices:
        for m, text in enumerate(MSG_TEXT):
            printed = sum(row[(d.index * 2 + m) * 2] for row in net.msgs)
            supp = sum(row[(d.index * 2 + m) * 2 + 1] for row in net.msgs)
            if printed or supp:
                out.append({"text": text % d.name, "device": d.name,
                            "printed": int(printed), "suppressed": int(supp)})
    return out


def latency(encoded: bytes | None) -> dict:
    if not encoded:
        return {"count": 0}
    from hdrh.histogram import HdrHistogram

    h = HdrHistogram.decode(encoded)
    n = h.get_total_count()
    if not n:
        return {"count": 0}
    return {"count": int(n), "mean": float(h.get_mean_value()),
            "p50": int(h.get_value_at_percentile(50)), "p90": int(h.get_value_at_percentile(90)),
            "p99": int(h.get_value_at_percentile(99)), "p999": int(h.get_value_at_percentile(99.9)),
            "max": int(h.get_max_value())}


def mechanism(net, delivered_window: int) -> dict:
    sds = net.softnet
    tot = {k: int(sum(sd[getattr(SOFTNET, k)] for sd in sds)) for k in (
        "owner_relocks", "owner_relock_contended", "owner_ahead", "owner_wait_ns", "qdisc_runs",
        "run_packets", "bypass", "enqueued", "busylock_taken", "quota_exhausted", "requeues",
        "net_tx_action", "resched_trylock", "nvcsw", "nivcsw", "generated", "wmem_sleeps")}
    tot["xmit_recursion_max"] = int(max(sd[SOFTNET.xmit_recursion_max] for sd in sds))
    tot["xmit_recursion_cut"] = int(max(sd[SOFTNET.xmit_recursion_cut] for sd in sds))
    relocks = tot["owner_relocks"]
    dw = max(delivered_window, 1)
    return {
        **tot,
        # None when the qdisc owner never re-took root_lock (nolock, noqueue)
        "owner_ahead_per_relock": tot["owner_ahead"] / relocks if relocks else None,
        "owner_wait_ns_per_relock": tot["owner_wait_ns"] / relocks if relocks else None,
        "packets_per_qdisc_run": tot["run_packets"] / tot["qdisc_runs"] if tot["qdisc_runs"] else 0.0,
        "ctx_switches_per_packet": (tot["nvcsw"] + tot["nivcsw"]) / dw,
    }


#: SPEC.md: a kernel-like cost of handing a spinlock to the next waiter (the
#: cache line moves to a CPU that is spinning on it)
KERNEL_HANDOFF_NS = 200


def projection(res: dict, handoff_ns: int = KERNEL_HANDOFF_NS) -> dict | None:
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


def lock_rows(net) -> list[dict]:
    return [r for r in net.locks.stats() if r["acquisitions"] or r["contentions"]]


def nic_row(net) -> dict:
    n = net.nic
    return {k: int(n[getattr(NIC, k)]) for k in (
        "delivered", "delivered_bytes", "reorders", "reorders_moved", "flow_queue_changes",
        "wakes", "bql_wakes", "write_space_wakes", "cpu_ns")}
