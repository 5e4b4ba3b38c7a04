"""A study's summary: medians per point, the generations ratios, the text table."""

from __future__ import annotations

import statistics
from typing import Any

from netq.app.figures import KERNEL_DEFER

from .rows import FIGURES, KEY
from .studies import GEN_LOCK_WAIT, GEN_QDISCS, GENERATIONS, STUDIES


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
        m.update(
            reps=len(rs),
            ok=len(ok),
            statuses=sorted({r["status"] for r in rs}),
            shared_cores=any(r["shared_cores"] for r in rs if r["shared_cores"] is not None),
        )
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
        by.setdefault((m["bounce_ns"], m["qdisc"], m["lock_wait"], m["cpus"]), {})[
            m["strategy"]
        ] = m
    out = []
    order = {q: i for i, q in enumerate(GEN_QDISCS)}
    worder = {w: i for i, w in enumerate(GEN_LOCK_WAIT)}
    for (b, qd, w, n), st in sorted(
        by.items(),
        key=lambda kv: (
            kv[0][0],
            order.get(kv[0][1], 9),
            str(kv[0][1]),
            worder.get(kv[0][2], 9),
            str(kv[0][2]),
            kv[0][3],
        ),
    ):
        old, new = st.get("busylock"), st.get("defer")
        if not old or not new or not old["pps"] or new["pps"] is None:
            continue
        oc, nc = old["cpu_ns_per_packet"], new["cpu_ns_per_packet"]
        out.append(
            {
                "bounce_ns": b,
                "qdisc": qd,
                "lock_wait": w,
                "cpus": n,
                "pps_ratio": new["pps"] / old["pps"],
                "cpu_ns_per_packet_ratio": nc / oc if oc and nc is not None else None,
                "busylock_pps": old["pps"],
                "defer_pps": new["pps"],
                "busylock_cpu_ns_per_packet": oc,
                "defer_cpu_ns_per_packet": nc,
            }
        )
    return out


def _pair(qdisc: str) -> str:
    """What a generations ratio compares on ``qdisc``."""
    if qdisc in ("pfifo_fast", "default"):
        return "6.19 / 6.18 (both nolock)"
    return "defer / busylock"


def table(study: str, ms: list[dict[str, Any]]) -> str:
    """The medians as a text table; generations adds the defer / busylock
    ratios beside the kernel's figures."""
    cols = [
        ("cpus", "cpus"),
        ("tx_queues", "txq"),
        ("xps", "xps"),
        ("series", "what ran"),
        ("lock_fairness", "fair"),
        ("bounce_ns", "bounce"),
        ("pps", "pps"),
        ("cpu_ns_per_packet", "cpu us/pkt"),
        ("acq_bounces_per_packet", "acq-b/pkt"),
        ("contentions_per_packet", "cont/pkt"),
        ("owner_ahead_per_relock", "ahead"),
        ("packets_per_qdisc_run", "pkt/run"),
        ("ctx_switches_per_packet", "csw/pkt"),
        ("ok", "ok"),
    ]
    if study == "contention":
        cols = [c for c in cols if c[0] not in ("tx_queues", "xps")]
    elif study == "generations":
        keep = [
            "series",
            "qdisc",
            "lock_wait",
            "cpus",
            "pps",
            "cpu_ns_per_packet",
            "owner_ahead_per_relock",
            "packets_per_qdisc_run",
            "ctx_switches_per_packet",
            "ok",
        ]
        if len({m["bounce_ns"] for m in ms}) > 1:
            keep.insert(4, "bounce_ns")
        names = dict(cols, qdisc="qdisc", lock_wait="lock wait")
        cols = [(k, names[k]) for k in keep]
        order = {q: i for i, q in enumerate(GEN_QDISCS)}
        worder = {w: i for i, w in enumerate(GEN_LOCK_WAIT)}
        sorder = {s: i for i, (s, _) in enumerate(GENERATIONS)}
        ms = sorted(
            ms,
            key=lambda m: (
                m["bounce_ns"],
                order.get(m["qdisc"], 9),
                worder.get(m["lock_wait"], 9),
                m["cpus"],
                sorder.get(m["strategy"], 9),
            ),
        )
    elif study not in STUDIES:  # a file study: the point is its axes' values
        drop = ("cpus", "tx_queues", "xps", "series", "lock_fairness", "bounce_ns")
        cols = [("series", "point")] + [c for c in cols if c[0] not in drop]
    else:
        cols = [
            c for c in cols if c[0] not in ("series", "lock_fairness", "owner_ahead_per_relock")
        ]

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
        lines += [
            "",
            "6.19 / 6.18, ratios of medians (pfifo_fast: TCQ_F_NOLOCK in both, the same "
            "code; pfifo and fq: defer / busylock); the kernel: " + KERNEL_DEFER["text"],
        ]
        rs = ratios(ms)
        many = len({r["bounce_ns"] for r in rs}) > 1
        for r in rs:
            where = (
                f"{r['qdisc']}, {r['lock_wait']}, {r['cpus']} sender{'s' if r['cpus'] > 1 else ''}"
            )
            if many:
                where += f", bounce {r['bounce_ns']}"
            cpu = r["cpu_ns_per_packet_ratio"]
            lines.append(
                f"  {where + ':':<32} {_pair(r['qdisc'])}: pps {r['pps_ratio']:.2f}x, "
                f"CPU ns/pkt {'-' if cpu is None else format(cpu, '.2f') + 'x'}"
                f"   (kernel: pps {KERNEL_DEFER['pps_ratio']}x, CPU ns/pkt "
                f"{KERNEL_DEFER['cpu_per_packet_ratio']}x)"
            )
        if not rs:
            lines.append("  (no qdisc, lock waiting and sender count with a median for both)")
    return "\n".join(lines)
