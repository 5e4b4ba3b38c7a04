"""The qdisc path: pfifo_fast bands and limit, the empty-qdisc bypass,
the dev_tx_weight quota of __qdisc_run, and requeueing on a full TX ring.

A queue is stopped by hand (netif_tx_stop_queue) to make packets wait in the
qdisc; the NIC's completion path (Nic.poll -> netif_tx_wake_queue) or an
explicit wake restarts it.
"""

from __future__ import annotations

import pytest

from netq.kernel.core import dev as dev_mod
from netq.kernel.core.dev import net_tx_action
from netq.kernel.core.netdevice import (
    NET_XMIT_DROP,
    NET_XMIT_SUCCESS,
    netif_tx_stop_queue,
    netif_tx_wake_queue,
)
from netq.kernel.kstructs import (
    NETDEV_QUEUE,
    NIC,
    QDISC,
    QDISC_STATE_SCHED,
    QUEUE_STATE_DRV_XOFF,
    SOCK,
)
from netq.kernel.sched.sch_generic import prio2band
from netq.machine.config import CostConfig
from tests.modelutil import (
    config,
    delivered,
    drain,
    drops,
    in_flight,
    output_queue,
    phys,
    qdisc_of,
    qf,
    ring_descs,
    sd,
    socks_of,
    traffic,
    xmit,
)
from workers.nic import Nic

XOFF = 1 << QUEUE_STATE_DRV_XOFF
SCHED = 1 << QDISC_STATE_SCHED


def one_queue(**kw):
    kw.setdefault("ring_size", 64)
    return config(cpus=1, devices=[phys(tx_queues=1, **kw)], traffic_=[traffic(sockets_per_cpu=1)])


# -- pfifo_fast ------------------------------------------------------------------------------
def test_single_queue_device_gets_pfifo_fast_with_limit_tx_queue_len(mknet):
    net = mknet(one_queue(tx_queue_len=123))
    q = qdisc_of(net)
    assert q.ops.id == "pfifo_fast"
    assert qf(q, "limit") == 123


def test_prio2band_table():
    assert list(prio2band) == [1, 2, 2, 2, 1, 2, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1]


def test_pfifo_fast_puts_each_priority_in_its_band(mknet):
    """With the queue stopped, the first skb takes the bypass, is refused and
    requeued (q->gso_skb); the other sixteen land in band
    prio2band[priority & 15]."""
    net = mknet(one_queue())
    dev = net.dev_by_name["eth0"]
    q = qdisc_of(net)
    (sk,) = socks_of(net, 0)
    netif_tx_stop_queue(dev.txqs[0])
    xmit(net, 0, sk, priority=0)  # the leader
    assert qf(q, "requeue_pending") == 1 and qf(q, "bypass") == 1
    for prio in range(16):
        assert xmit(net, 0, sk, priority=prio + 16) == NET_XMIT_SUCCESS  # & TC_PRIO_MAX
    for band in range(3):
        got = q.bands[band].peek_batch(64)[:, 5].tolist()
        assert got == [p + 16 for p in range(16) if prio2band[p] == band]
    assert qf(q, "band_bitmap") == 0b111
    assert qf(q, "qlen") == 17 and qf(q, "enqueued") == 16


def test_socket_tos_picks_the_priority_and_so_the_band(mknet):
    """Skbs made as the CPU worker makes them (workers.cpu.Generator): a
    socket's IP_TOS sets skb->priority = rt_tos2priority(tos) (ip_tos2prio),
    over the socket's own priority, and that picks the pfifo_fast band.
    0x10 (LOWDELAY) -> TC_PRIO_INTERACTIVE 6 -> band 0; 0x18 -> 4 -> band 1;
    0x08 (THROUGHPUT) -> TC_PRIO_BULK 2 -> band 2; no TOS: the socket's
    priority (7 -> band 0)."""
    cfg = config(
        cpus=1,
        devices=[phys(tx_queues=1, ring_size=64)],
        traffic_=[
            traffic(sockets_per_cpu=1, tos=0x10, priority=3),
            traffic(sockets_per_cpu=1, tos=0x18),
            traffic(sockets_per_cpu=1, tos=0x08, priority=6),
            traffic(sockets_per_cpu=1, priority=7),
        ],
    )
    net = mknet(cfg)
    dev = net.dev_by_name["eth0"]
    q = qdisc_of(net)
    lowdelay, tos18, bulk, plain = socks_of(net, 0)
    netif_tx_stop_queue(dev.txqs[0])
    xmit(net, 0, plain)  # the leader: bypass, refused, requeued
    assert qf(q, "requeue_pending") == 1
    for sk in (lowdelay, tos18, bulk, plain):
        assert xmit(net, 0, sk) == NET_XMIT_SUCCESS
    got = [q.bands[band].peek_batch(64)[:, 5].tolist() for band in range(3)]
    assert got == [[6, 7], [4], [2]]


def test_pfifo_fast_sends_band_0_before_1_before_2(mknet):
    """Wire order: the requeued leader, then band 0 (prio 6, 7), then band 1,
    then band 2 -- FIFO within a band."""
    net = mknet(one_queue())
    dev = net.dev_by_name["eth0"]
    txq = dev.txqs[0]
    (sk,) = socks_of(net, 0)
    netif_tx_stop_queue(txq)
    sent = [(0, 1)]  # (seq, priority) of the leader (band 1)
    xmit(net, 0, sk, priority=1)
    seq = 1
    for prio in list(range(16)) + list(range(15, -1, -1)):
        xmit(net, 0, sk, priority=prio)
        sent.append((seq, prio))
        seq += 1
    assert len(ring_descs(txq)) == 0
    assert netif_tx_wake_queue(txq)  # as the NIC's completion would
    assert output_queue(net, 0) == [qdisc_of(net).id]
    net_tx_action()
    d = ring_descs(txq)
    want = [sent[0], *sorted(sent[1:], key=lambda sp: prio2band[sp[1]])]  # stable sort
    assert [(int(r[1]), int(r[5])) for r in d] == want
    nic = Nic(net)
    nic.poll()
    assert delivered(net) == len(sent)
    # one flow with mixed priorities is reordered by the bands: the NIC counts
    # every skb whose flow sequence number is not above the highest before it
    highest, late = -1, 0
    for seq_, _ in want:
        if seq_ <= highest:
            late += 1
        highest = max(highest, seq_)
    assert net.nic[NIC.reorders] == late > 0


def test_pfifo_fast_limit_is_tx_queue_len_and_excess_is_a_qdisc_drop(mknet):
    """qlen counts the requeued skb (3.13: "it's still part of the queue"), so
    8 skbs fit under tx_queue_len 8 and the next 4 are dropped."""
    net = mknet(one_queue(tx_queue_len=8))
    txq = net.dev_by_name["eth0"].txqs[0]
    q = qdisc_of(net)
    (sk,) = socks_of(net, 0)
    netif_tx_stop_queue(txq)
    rcs = [xmit(net, 0, sk) for _ in range(12)]
    assert rcs == [NET_XMIT_SUCCESS] * 8 + [NET_XMIT_DROP] * 4
    assert qf(q, "qlen") == 8 and qf(q, "requeue_pending") == 1 and qf(q, "enqueued") == 7
    assert qf(q, "drops") == 4
    assert drops(net, "QDISC_DROP") == 4 and drops(net) == 4
    assert sk.f[SOCK.dropped] == 4
    assert sd(net, 0, "xmit_ok") == 8
    netif_tx_wake_queue(txq)
    drain(net, Nic(net))
    assert delivered(net) == 8


@pytest.mark.parametrize("profile,under_lock", [("3.13", True), ("6.18", False)])
def test_a_qdisc_drop_is_freed_under_the_root_lock_until_4_8(
    mknet, monkeypatch, profile, under_lock
):
    """kfree_skb of a dropped skb (free_ns) is paid inside the enqueue, under
    root_lock, up to 4.7; from 4.8 (520ac30f4551) it waits on the to_free
    list until __dev_xmit_skb has released the lock.  pfifo: locked in both."""
    from netq.kernel.core.percpu import this
    from netq.kernel.sched import sch_generic

    net = mknet(
        config(
            cpus=1,
            profile=profile,
            devices=[phys(tx_queues=1, ring_size=64, tx_queue_len=2, qdisc="pfifo")],
            traffic_=[traffic(sockets_per_cpu=1)],
            costs=CostConfig(free_ns=11),
        )
    )
    txq = net.dev_by_name["eth0"].txqs[0]
    (sk,) = socks_of(net, 0)
    netif_tx_stop_queue(txq)
    while drops(net, "QDISC_DROP") == 0:
        xmit(net, 0, sk, softirq=False)
    seen: list[tuple[int, int]] = []  # (ns paid, to_free pending at the time)
    enqueue = sch_generic.qdisc_enqueue

    def spy(skb, q):
        rc = enqueue(skb, q)
        seen.append((-1, this.to_free))  # the enqueue's end: root_lock still held
        return rc

    monkeypatch.setattr(sch_generic, "ndelay", lambda ns: seen.append((ns, this.to_free)))
    monkeypatch.setattr(dev_mod, "qdisc_enqueue", spy)
    assert xmit(net, 0, sk, softirq=False) == NET_XMIT_DROP
    i = seen.index((-1, 0 if under_lock else 11))  # under the lock: paid, or pending
    assert (11 in [ns for ns, _ in seen[:i]]) == under_lock
    assert (11 in [ns for ns, _ in seen[i:]]) != under_lock  # else paid after the unlock
    assert this.to_free == 0


def test_pfifo_fast_backlog_tracks_bytes(mknet):
    net = mknet(
        config(
            cpus=1,
            devices=[phys(tx_queues=1, ring_size=64)],
            traffic_=[traffic(sockets_per_cpu=1, length=[100, 1500])],
        )
    )
    txq = net.dev_by_name["eth0"].txqs[0]
    q = qdisc_of(net)
    (sk,) = socks_of(net, 0)
    netif_tx_stop_queue(txq)
    lens = [100 + 37 * i for i in range(10)]
    for n in lens:
        xmit(net, 0, sk, length=n)
    assert qf(q, "backlog") == sum(lens) and qf(q, "qlen") == 10
    netif_tx_wake_queue(txq)
    drain(net, Nic(net))
    assert qf(q, "backlog") == 0 and qf(q, "bytes") == sum(lens) and qf(q, "packets") == 10


# -- bypass vs enqueue ---------------------------------------------------------------------------
def test_idle_qdisc_is_bypassed(mknet):
    """Empty, work-conserving, not running: every skb goes straight to the
    driver (sch_direct_xmit), none is enqueued and no __qdisc_run happens."""
    net = mknet(one_queue())
    q = qdisc_of(net)
    (sk,) = socks_of(net, 0)
    for _ in range(20):
        assert xmit(net, 0, sk) == NET_XMIT_SUCCESS
    assert qf(q, "bypass") == 20 and sd(net, 0, "bypass") == 20
    assert qf(q, "enqueued") == 0 and sd(net, 0, "enqueued") == 0
    assert sd(net, 0, "qdisc_runs") == 0 and qf(q, "runs") == 0
    assert qf(q, "packets") == 20 and qf(q, "bytes") == 20 * 1000
    assert len(ring_descs(net.dev_by_name["eth0"].txqs[0])) == 20


def test_stopped_queue_makes_packets_enqueue(mknet):
    net = mknet(one_queue())
    q = qdisc_of(net)
    (sk,) = socks_of(net, 0)
    netif_tx_stop_queue(net.dev_by_name["eth0"].txqs[0])
    for _ in range(10):
        xmit(net, 0, sk)
    # the first skb found the qdisc empty: bypass, refused by the stopped
    # queue (NETDEV_TX_BUSY without calling the driver) and requeued
    assert qf(q, "bypass") == 1 and qf(q, "requeues") == 1 and sd(net, 0, "tx_busy") == 1
    assert qf(q, "enqueued") == 9 and sd(net, 0, "enqueued") == 9
    assert qf(q, "qlen") == 10
    # each enqueuer ran the qdisc (it was not running) and found the queue stopped
    assert sd(net, 0, "qdisc_runs") >= 9 and sd(net, 0, "run_packets") == 0


def test_dev_tx_weight_quota_reschedules_and_net_tx_action_finishes(mknet):
    """100 skbs queued, queue woken: one __qdisc_run sends exactly 64
    (dev_tx_weight), sets SCHED and puts the qdisc on this CPU's
    output_queue; the next NET_TX softirq sends the other 36."""
    net = mknet(one_queue(ring_size=256, tx_queue_len=1000))
    txq = net.dev_by_name["eth0"].txqs[0]
    q = qdisc_of(net)
    (sk,) = socks_of(net, 0)
    netif_tx_stop_queue(txq)
    for _ in range(100):
        xmit(net, 0, sk)
    assert qf(q, "qlen") == 100 and output_queue(net, 0) == []
    assert netif_tx_wake_queue(txq)
    assert output_queue(net, 0) == [q.id] and qf(q, "state") & SCHED
    runs0 = sd(net, 0, "qdisc_runs")
    assert net_tx_action()
    assert len(ring_descs(txq)) == 64
    assert qf(q, "qlen") == 36
    assert sd(net, 0, "quota_exhausted") == 1
    assert sd(net, 0, "qdisc_runs") == runs0 + 1
    assert output_queue(net, 0) == [q.id] and qf(q, "state") & SCHED
    assert qf(q, "running") == 0
    assert net_tx_action()
    assert len(ring_descs(txq)) == 100 and qf(q, "qlen") == 0
    assert sd(net, 0, "quota_exhausted") == 1
    assert output_queue(net, 0) == [] and not qf(q, "state") & SCHED
    assert not net_tx_action()  # nothing left to do


def test_exactly_dev_tx_weight_packets_do_not_exhaust_the_quota(mknet):
    """qdisc_restart returns 0 when the 64th send empties the qdisc, so the
    loop ends before the quota test: no reschedule."""
    net = mknet(one_queue(ring_size=256))
    txq = net.dev_by_name["eth0"].txqs[0]
    q = qdisc_of(net)
    (sk,) = socks_of(net, 0)
    netif_tx_stop_queue(txq)
    for _ in range(64):
        xmit(net, 0, sk)
    netif_tx_wake_queue(txq)
    net_tx_action()
    assert len(ring_descs(txq)) == 64
    assert sd(net, 0, "quota_exhausted") == 0 and output_queue(net, 0) == []
    assert qf(q, "qlen") == 0


# -- requeue when the ring is full ---------------------------------------------------------------------
def test_full_ring_stops_queue_requeues_and_completion_wakes_on_irq_cpu(mknet):
    """ring_size 4, 10 skbs from CPU 0, no NIC: 4 fill the ring and the driver
    stops the queue; the 5th is requeued (gso_skb), 5 more wait in the qdisc.
    The NIC's completion wakes the queue on its interrupt CPU (1), whose
    NET_TX softirq runs the qdisc; in the end all 10 are on the wire, in order."""
    net = mknet(
        config(
            cpus=2,
            devices=[phys(tx_queues=1, ring_size=4, irq_cpus=[1])],
            traffic_=[traffic(cpus=[0], sockets_per_cpu=1)],
        )
    )
    txq = net.dev_by_name["eth0"].txqs[0]
    q = qdisc_of(net)
    (sk,) = socks_of(net, 0)
    for _ in range(10):
        assert xmit(net, 0, sk) == NET_XMIT_SUCCESS
    assert len(ring_descs(txq)) == 4
    assert txq.f[NETDEV_QUEUE.state] & XOFF
    assert txq.f[NETDEV_QUEUE.tx_stops] == 1
    assert txq.f[NETDEV_QUEUE.tx_packets] == 4
    assert qf(q, "requeues") == 1 and qf(q, "requeue_pending") == 1
    assert qf(q, "qlen") == 6 and sd(net, 0, "requeues") == 1
    # CPU 0's softirq ran the requeue's reschedule and found the queue stopped
    assert output_queue(net, 0) == [] and output_queue(net, 1) == []
    assert not qf(q, "state") & SCHED

    nic = Nic(net)
    assert nic.poll() == 4
    assert not txq.f[NETDEV_QUEUE.state] & XOFF
    assert txq.f[NETDEV_QUEUE.tx_restart] == 1 and net.nic[NIC.wakes] == 1
    assert output_queue(net, 1) == [q.id] and output_queue(net, 0) == []
    net.bind_cpu(1)
    assert net_tx_action()
    assert qf(q, "requeue_pending") == 0  # the gso_skb went first
    assert len(ring_descs(txq)) == 4 and qf(q, "qlen") == 2
    assert txq.f[NETDEV_QUEUE.state] & XOFF and txq.f[NETDEV_QUEUE.tx_stops] == 2

    drain(net, nic)
    assert delivered(net) == 10 and in_flight(net) == 0
    assert net.nic[NIC.reorders] == 0
    # 10 = 4 + 4 + 2: the ring filled (and the queue stopped) twice
    assert txq.f[NETDEV_QUEUE.tx_stops] == 2 and txq.f[NETDEV_QUEUE.tx_restart] == 2
    assert qf(q, "packets") == 10 and qf(q, "requeues") == 1
    assert drops(net) == 0
    assert txq.f[NETDEV_QUEUE.completions_remote] == 10  # sent by CPU 0, irq on CPU 1


def test_wake_with_qdisc_already_scheduled_does_not_schedule_twice(mknet):
    """__netif_schedule is a no-op while SCHED is set: the qdisc stays on the
    output_queue of the CPU that scheduled it first."""
    net = mknet(
        config(
            cpus=2,
            devices=[phys(tx_queues=1, ring_size=4, irq_cpus=[1])],
            traffic_=[traffic(cpus=[0], sockets_per_cpu=1)],
        )
    )
    txq = net.dev_by_name["eth0"].txqs[0]
    q = qdisc_of(net)
    (sk,) = socks_of(net, 0)
    for _ in range(6):
        xmit(net, 0, sk, softirq=False)  # CPU 0's softirq has not run yet
    assert output_queue(net, 0) == [q.id]
    Nic(net).poll()
    assert txq.f[NETDEV_QUEUE.tx_restart] == 1
    assert output_queue(net, 1) == [] and output_queue(net, 0) == [q.id]
    net.bind_cpu(0)
    net_tx_action()
    assert len(ring_descs(txq)) == 2 and qf(q, "qlen") == 0


# -- net_tx_action ---------------------------------------------------------------------------------
def test_net_tx_action_reschedules_a_qdisc_whose_root_lock_is_busy(mknet):
    """spin_trylock(root_lock) fails (CPU 1 holds it): the qdisc goes back on
    this CPU's output_queue, still SCHED; next time it runs."""
    from netq.kernel.core.percpu import this

    net = mknet(
        config(
            cpus=2,
            devices=[phys(tx_queues=1, ring_size=64)],
            traffic_=[traffic(cpus=[0], sockets_per_cpu=1)],
        )
    )
    txq = net.dev_by_name["eth0"].txqs[0]
    q = qdisc_of(net)
    (sk,) = socks_of(net, 0)
    netif_tx_stop_queue(txq)
    for _ in range(3):
        xmit(net, 0, sk)
    netif_tx_wake_queue(txq)  # irq CPU of queue 0 is CPU 0
    net.bind_cpu(1)
    this.locks[q.root_lock].lock()  # CPU 1 holds root_lock
    net.bind_cpu(0)
    assert net_tx_action()
    assert sd(net, 0, "resched_trylock") == 1
    assert output_queue(net, 0) == [q.id] and qf(q, "state") & SCHED
    assert qf(q, "qlen") == 3
    net.bind_cpu(1)
    this.locks[q.root_lock].unlock()
    net.bind_cpu(0)
    assert net_tx_action()
    assert qf(q, "qlen") == 0 and len(ring_descs(txq)) == 3
    assert output_queue(net, 0) == [] and not qf(q, "state") & SCHED


def test_net_tx_action_drops_a_deactivated_qdisc_it_cannot_lock(mknet):
    """... unless the qdisc is deactivated: then SCHED is just cleared."""
    from netq.kernel.core.percpu import this
    from netq.kernel.kstructs import QDISC_STATE_DEACTIVATED

    net = mknet(
        config(
            cpus=2,
            devices=[phys(tx_queues=1, ring_size=64)],
            traffic_=[traffic(cpus=[0], sockets_per_cpu=1)],
        )
    )
    txq = net.dev_by_name["eth0"].txqs[0]
    q = qdisc_of(net)
    (sk,) = socks_of(net, 0)
    netif_tx_stop_queue(txq)
    xmit(net, 0, sk)
    xmit(net, 0, sk)
    netif_tx_wake_queue(txq)
    net.atomics.set_bit(q.base + QDISC.state, QDISC_STATE_DEACTIVATED)
    net.bind_cpu(1)
    this.locks[q.root_lock].lock()
    net.bind_cpu(0)
    assert net_tx_action()
    assert sd(net, 0, "resched_trylock") == 0
    assert output_queue(net, 0) == [] and not qf(q, "state") & SCHED
    net.bind_cpu(1)
    this.locks[q.root_lock].unlock()


# -- other qdisc kinds -------------------------------------------------------------------------------
def test_pfifo_is_one_fifo_that_ignores_priority_and_can_be_bypassed(mknet):
    net = mknet(
        config(
            cpus=1,
            devices=[phys(tx_queues=1, ring_size=64, qdisc="pfifo", tx_queue_len=5)],
            traffic_=[traffic(sockets_per_cpu=1)],
        )
    )
    txq = net.dev_by_name["eth0"].txqs[0]
    q = qdisc_of(net)
    (sk,) = socks_of(net, 0)
    assert q.ops.id == "pfifo" and len(q.bands) == 1
    xmit(net, 0, sk, priority=1)
    assert qf(q, "bypass") == 1
    netif_tx_stop_queue(txq)
    prios = [1, 6, 2, 7, 0, 3]
    rcs = [xmit(net, 0, sk, priority=p) for p in prios]
    # 1 requeued + 4 enqueued = limit 5; the sixth is dropped
    assert rcs == [NET_XMIT_SUCCESS] * 5 + [NET_XMIT_DROP]
    assert drops(net, "QDISC_DROP") == 1
    netif_tx_wake_queue(txq)
    net_tx_action()
    assert ring_descs(txq)[:, 5].tolist() == [1, *prios[:5]]


def test_mq_gives_each_queue_its_own_pfifo_fast(mknet):
    net = mknet(config(cpus=1, devices=[phys(tx_queues=3)], traffic_=[traffic()]))
    dev = net.dev_by_name["eth0"]
    children = [qdisc_of(net, "eth0", k) for k in range(3)]
    assert [c.ops.id for c in children] == ["pfifo_fast"] * 3
    assert len({c.id for c in children}) == 3
    assert len({c.root_lock for c in children}) == 3
    assert [c.dev_queue for c in children] == dev.txqs


def test_shared_root_qdisc_blocks_behind_a_stopped_queue(mknet):
    """One pfifo_fast for all 2 queues (no mq, no TCQ_F_ONETXQUEUE): an skb
    for the stopped queue at the head is requeued and holds back the rest,
    even those for the open queue, until the stopped queue wakes."""
    from netq.kernel.core.netdevice import NetDeviceOps
    from netq.kernel.drivers.ethernet import eth_start_xmit

    net = mknet(
        config(
            cpus=1,
            devices=[phys(tx_queues=2, ring_size=64, qdisc="pfifo_fast")],
            traffic_=[traffic(sockets_per_cpu=1)],
        )
    )
    dev = net.dev_by_name["eth0"]
    q = qdisc_of(net, "eth0", 0)
    assert qdisc_of(net, "eth0", 1) is q
    dev.netdev_ops = NetDeviceOps(eth_start_xmit, lambda d, skb: skb.priority)
    (sk,) = socks_of(net, 0)
    netif_tx_stop_queue(dev.txqs[0])
    for prio in (0, 1, 1, 1):  # queue = priority (band 1 for both)
        xmit(net, 0, sk, priority=prio)
    assert qf(q, "qlen") == 4 and qf(q, "requeue_pending") == 1
    assert len(ring_descs(dev.txqs[1])) == 0
    netif_tx_wake_queue(dev.txqs[0])
    net_tx_action()
    assert len(ring_descs(dev.txqs[0])) == 1 and len(ring_descs(dev.txqs[1])) == 3


def test_pfifo_fast_peek_shows_the_next_skb_without_taking_it(mknet):
    from netq.kernel.sched.sch_generic import pfifo_fast_peek

    net = mknet(one_queue())
    txq = net.dev_by_name["eth0"].txqs[0]
    (sk,) = socks_of(net, 0)
    q = qdisc_of(net)
    assert pfifo_fast_peek(q) is None
    netif_tx_stop_queue(txq)
    xmit(net, 0, sk, priority=1)  # the leader is requeued into gso_skb
    xmit(net, 0, sk, priority=0)  # band 1
    xmit(net, 0, sk, priority=6)  # band 0: next out of the bands
    d = pfifo_fast_peek(q)
    assert (d[3], d[5]) == (2, 6)
    assert pfifo_fast_peek(q) == d and q.f[QDISC.qlen] == 3
