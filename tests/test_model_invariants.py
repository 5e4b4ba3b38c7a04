"""Identities that hold at every quiescent point of a run (README: Invariants).

* generated == delivered + sum(drops by reason) + in flight, where in flight
  is what sits in qdiscs (q->gso_skb included) and TX rings;
* per qdisc: qlen == enqueued - (dequeued - requeues) - purged, the skbs
  stored in its bands (+ the requeued one) are qlen of them, and backlog is
  their bytes;
* bstats count every skb once: packets == bypass + dequeued - requeues +
  requeue_pending (a requeued skb is dequeued again without being recounted);
* per socket: sent == completed + dropped + in flight of that socket.

The workload is built to hit every path: two CPUs on an mq device without
XPS (so they collide on queues), tiny rings (stops, requeues, wakes), a short
tx_queue_len (QDISC_DROPs), NIC polls and softirqs interleaved irregularly.
"""

from __future__ import annotations

import numpy as np

from netq.kernel.kstructs import NETDEV_QUEUE, QDISC, SOCK
from netq.kernel.sched.sch_generic import gso_skbs
from tests.modelutil import (
    config,
    delivered,
    drain,
    drops,
    generated,
    in_flight,
    leaf_qdiscs,
    phys,
    run_softirq,
    socks_of,
    softirq_pending,
    traffic,
    xmit,
)
from workers.nic import Nic


def stored(q) -> tuple[int, int]:
    """(skbs, bytes) physically held by a qdisc: its bands plus gso_skb."""
    n = sum(len(b) for b in q.bands)
    nbytes = sum(int(b.peek_batch(b.size)[:, 4].sum()) for b in q.bands)
    held = gso_skbs(q.f)
    return n + len(held), nbytes + sum(d[4] for d in held)


def sock_in_flight(net) -> dict[int, int]:
    per = {}
    arrays = [b.peek_batch(b.size) for q in leaf_qdiscs(net) for b in q.bands]
    arrays += [t.ring.peek_batch(t.ring.size) for t in net.txqs if t.ring is not None]
    for q in leaf_qdiscs(net):
        if q.f[QDISC.requeue_pending]:
            arrays.append(np.array(gso_skbs(q.f), dtype=np.int64))
    for a in arrays:
        for s in a[:, 2].tolist():
            per[s] = per.get(s, 0) + 1
    return per


def check_identities(net, where: str) -> None:
    total_drops = drops(net)
    assert generated(net) == delivered(net) + total_drops + in_flight(net), where
    for q in leaf_qdiscs(net):
        f = q.f
        qlen = f[QDISC.qlen]
        assert (
            qlen == f[QDISC.enqueued] - (f[QDISC.dequeued] - f[QDISC.requeues]) - f[QDISC.purged]
        ), (where, q.name)
        assert stored(q) == (qlen, f[QDISC.backlog]), (where, q.name)
        assert f[QDISC.packets] == (
            f[QDISC.bypass] + f[QDISC.dequeued] - f[QDISC.requeues] + f[QDISC.requeue_pending]
        ), (where, q.name)
        assert f[QDISC.drops] >= 0 and qlen <= f[QDISC.limit]
    fl = sock_in_flight(net)
    for sk in net.socks:
        f = sk.f
        assert f[SOCK.sent] == (
            f[SOCK.completed] + f[SOCK.dropped] + f[SOCK.dropped_ctl] + fl.get(sk.id, 0)
        ), (where, sk)


def test_identities_hold_at_every_quiescent_point(mknet):
    net = mknet(
        config(
            cpus=2,
            devices=[phys(tx_queues=4, ring_size=4, tx_queue_len=5)],
            traffic_=[traffic(sockets_per_cpu=3, length=[64, 1500])],
        )
    )
    nic = Nic(net)
    socks = {c: socks_of(net, c) for c in (0, 1)}
    check_identities(net, "start")
    for rnd in range(30):
        for cpu in (0, 1):
            burst = (rnd * 11 + cpu * 5) % 37
            for i in range(burst):
                # every other round the softirq is left pending for a while
                xmit(net, cpu, socks[cpu][i % 3], softirq=rnd % 2 == 0)
                check_identities(net, f"round {rnd} cpu {cpu} skb {i}")
        if rnd % 3 != 2:
            nic.poll()
            check_identities(net, f"round {rnd} after NIC poll")
        for cpu in (0, 1):
            if softirq_pending(net, cpu):
                run_softirq(net, cpu)
                check_identities(net, f"round {rnd} after cpu {cpu} softirq")
    # the workload did exercise drops, requeues, stops and wakes
    qs = leaf_qdiscs(net)
    assert drops(net, "QDISC_DROP") > 0
    assert sum(q.f[QDISC.requeues] for q in qs) > 0
    assert sum(t.f[NETDEV_QUEUE.tx_stops] for t in net.txqs) > 0
    assert sum(t.f[NETDEV_QUEUE.tx_restart] for t in net.txqs) > 0
    assert sum(q.f[QDISC.bypass] for q in qs) > 0 and sum(q.f[QDISC.enqueued] for q in qs) > 0
    drain(net, nic)
    check_identities(net, "drained")
    assert in_flight(net) == 0
    assert generated(net) == delivered(net) + drops(net) > 0
    for sk in net.socks:
        assert sk.outstanding() == 0


def test_qdisc_reset_keeps_the_qdisc_identity(mknet):
    from netq.kernel.core.netdevice import netif_tx_stop_queue
    from netq.kernel.core.percpu import this
    from netq.kernel.sched.sch_generic import qdisc_reset
    from tests.modelutil import qdisc_of

    net = mknet(
        config(
            cpus=1, devices=[phys(tx_queues=1, ring_size=64)], traffic_=[traffic(sockets_per_cpu=1)]
        )
    )
    q = qdisc_of(net)
    (sk,) = socks_of(net, 0)
    netif_tx_stop_queue(net.dev_by_name["eth0"].txqs[0])
    for _ in range(5):
        xmit(net, 0, sk)
    root = this.locks[q.root_lock]
    root.lock()
    purged = qdisc_reset(q)
    root.unlock()
    assert len(purged) == 5
    f = q.f
    assert f[QDISC.qlen] == 0 and f[QDISC.backlog] == 0
    assert f[QDISC.purged] == 5
    assert (
        f[QDISC.qlen]
        == f[QDISC.enqueued] - (f[QDISC.dequeued] - f[QDISC.requeues]) - f[QDISC.purged]
    )
