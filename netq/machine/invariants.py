"""The invariants (README: "Invariants"), checkable at any quiescent point.

Each check returns a :class:`Check` (name, ok, detail).  "Quiescent" means no
CPU is inside dev_queue_xmit or a qdisc run and the NIC is not mid-batch:
between bursts in a single-process test, or after the supervisor's drain.
In flight then means: in a qdisc (qlen, q->gso_skb included) or in a TX ring.
"""

from __future__ import annotations

from dataclasses import dataclass

from netq.kernel.core.sock import sk_wmem_alloc
from netq.kernel.kstructs import NIC, QDISC, SOCK, SOFTNET
from netq.kernel.sched.sch_generic import gso_skbs
from shm.lock import NO_CPU


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


def in_flight(net) -> dict:
    """Skbs inside qdiscs and TX rings right now."""
    qlen = sum(q.f[QDISC.qlen] for q in net.qdiscs)
    ring = sum(len(t.ring) for t in net.txqs if t.ring is not None)
    # skbs on a defer_list: the nodes marked in use
    nodes = net.region.array("defer_nodes")["state"]
    return {"qdiscs": int(qlen), "rings": int(ring), "defer": int(nodes.sum())}


def totals(net) -> dict:
    gen = sum(sd[SOFTNET.generated] for sd in net.softnet)
    drops = int(sum(sum(row) for row in net.drops))
    return {"generated": int(gen), "delivered": int(net.nic[NIC.delivered]), "dropped": drops}


def check_all(net, final: bool = True) -> list[Check]:
    """Every invariant; ``final`` also demands nothing in flight and no lock held."""
    out = []
    t = totals(net)
    fl = in_flight(net)
    inflight = fl["qdiscs"] + fl["rings"] + fl["defer"]
    out.append(
        Check(
            "conservation",
            t["generated"] == t["delivered"] + t["dropped"] + inflight,
            f"generated {t['generated']} = delivered {t['delivered']} + dropped {t['dropped']}"
            f" + in flight {inflight} (qdiscs {fl['qdiscs']}, rings {fl['rings']},"
            f" defer lists {fl['defer']})",
        )
    )
    if final:
        out.append(Check("drained", inflight == 0, f"{inflight} skbs still queued after drain"))

    bad = []
    for q in net.qdiscs:
        f = q.f
        want = f[QDISC.enqueued] - (f[QDISC.dequeued] - f[QDISC.requeues]) - f[QDISC.purged]
        stored = sum(len(b) for b in q.bands) + f[QDISC.requeue_pending]
        if f[QDISC.qlen] != want or (q.bands and f[QDISC.qlen] != stored):
            bad.append(
                f"{q.name}: qlen {f[QDISC.qlen]} enqueued {f[QDISC.enqueued]} dequeued "
                f"{f[QDISC.dequeued]} requeues {f[QDISC.requeues]} purged {f[QDISC.purged]} "
                f"stored {stored}"
            )
        if q.bands:
            backlog = sum(int(b.peek_batch(b.size)[:, 4].sum()) for b in q.bands)
            backlog += sum(d[4] for d in gso_skbs(f))
            if backlog != f[QDISC.backlog]:
                bad.append(f"{q.name}: backlog {f[QDISC.backlog]} != bytes stored {backlog}")
    out.append(
        Check(
            "qdisc_identities",
            not bad,
            "; ".join(bad) or "qlen = enqueued - (dequeued - requeues) - purged, for every qdisc",
        )
    )

    if final:
        bad = []
        for sk in net.socks:
            f = sk.f
            acc = f[SOCK.completed] + f[SOCK.dropped] + f[SOCK.dropped_ctl]
            if f[SOCK.sent] != acc:
                bad.append(
                    f"sock {sk.id}: sent {f[SOCK.sent]} != completed {f[SOCK.completed]}"
                    f" + dropped {f[SOCK.dropped] + f[SOCK.dropped_ctl]}"
                )
            elif sk_wmem_alloc(sk):
                bad.append(f"sock {sk.id}: {sk_wmem_alloc(sk)} send-buffer bytes never freed")
        out.append(
            Check(
                "sockets",
                not bad,
                "; ".join(bad[:5]) or "every socket's skbs were completed or dropped",
            )
        )

    nic = net.nic
    out.append(
        Check(
            "flow_order",
            nic[NIC.reorders] == 0,
            f"{nic[NIC.reorders]} out-of-order skbs in flows that kept their queue "
            f"({nic[NIC.reorders_moved]} more in flows that moved under ooo_okay)",
        )
    )

    if final:
        held = [h for h in net.locks.holders() if h["owner_cpu"] != NO_CPU]
        out.append(
            Check(
                "locks_released",
                not held,
                "; ".join(f"{h['lock']} held by cpu {h['owner_cpu']}" for h in held)
                or "no lock held",
            )
        )
    rows = net.locks.stats()
    bad = [
        r["name"]
        for r in rows
        if not (
            r["contentions"] <= r["acquisitions"]
            and r["con_bounces"] <= r["contentions"]
            and r["acq_bounces"] <= r["acquisitions"]
        )
    ]
    out.append(
        Check(
            "lock_stats",
            not bad,
            ("inconsistent: " + ", ".join(bad))
            if bad
            else "contentions <= acquisitions, bounces <= their totals",
        )
    )
    return out


def ok(checks: list[Check]) -> bool:
    return all(c.ok for c in checks)
