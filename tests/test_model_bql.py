"""Byte queue limits, bulk dequeue, and senders sleeping for send-buffer space.

- dql (lib/dynamic_queue_limits.c): the limit starts at 0, grows when the
  ring ran dry while over the limit, shrinks by the lowest slack once the
  hold time has passed, and stays within [min_limit, max_limit];
- the driver's netdev_tx_sent_queue stops a queue over its limit
  (STACK_XOFF); the NIC's netdev_tx_completed_queue restarts it and
  schedules its qdisc on the queue's interrupt CPU;
- bulk dequeue (3.18+): one qdisc_restart hands the driver a list, under one
  root_lock release, bounded by BQL's bytes and the run's quota; the rest of
  a list the driver stopped on is requeued in order;
- sock_wait_for_wmem / sock_def_write_space: a sender with every socket full
  sleeps until a completion leaves one half empty.
"""

from __future__ import annotations

import numpy as np
import pytest

from netq.kernel.core.dev import net_tx_action
from netq.kernel.core.dql import (
    DQL_MAX_LIMIT,
    SLACK_HOLD_NS,
    dql_avail,
    dql_completed,
    dql_inflight,
    dql_init,
    dql_queued,
)
from netq.kernel.core.netdevice import NET_XMIT_SUCCESS, netif_tx_stop_queue, netif_tx_wake_queue
from netq.kernel.core.percpu import this
from netq.kernel.core.sock import sock_wait_for_wmem, wake_cpu
from netq.kernel.drivers import ethernet
from netq.kernel.kstructs import (
    GSO_SKB_MAX,
    NETDEV_QUEUE,
    NIC,
    QUEUE_STATE_DRV_XOFF,
    QUEUE_STATE_STACK_XOFF,
    SOFTNET,
)
from netq.machine.config import CostConfig
from tests.modelutil import (
    config,
    delivered,
    drain,
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
from tests.test_model_invariants import check_identities
from workers.nic import Nic

XOFF = 1 << QUEUE_STATE_DRV_XOFF
STACK_XOFF = 1 << QUEUE_STATE_STACK_XOFF
T0 = 10**12


def _dql(**kw) -> np.ndarray:
    f = np.zeros(NETDEV_QUEUE.words, dtype=np.int64)
    dql_init(f, T0, **kw)
    return f


# -- the dql algorithm -----------------------------------------------------------------------
def test_dql_limit_starts_at_zero_and_grows_when_the_ring_runs_dry():
    f = _dql()
    assert f[NETDEV_QUEUE.dql_limit] == 0 and dql_avail(f) == 0
    dql_queued(f, 1000)
    assert dql_avail(f) == -1000  # over the limit after one packet
    dql_completed(f, 1000, T0 + 1)  # over limit and nothing left in flight: starved
    assert f[NETDEV_QUEUE.dql_limit] == 1000
    dql_queued(f, 1500)
    dql_queued(f, 1500)
    dql_completed(f, 3000, T0 + 2)  # starved again: grows by what was sent and completed
    assert f[NETDEV_QUEUE.dql_limit] > 1000
    assert f[NETDEV_QUEUE.dql_adj_limit] == f[NETDEV_QUEUE.dql_limit] + 4000
    assert f[NETDEV_QUEUE.dql_limit_max_seen] == f[NETDEV_QUEUE.dql_limit]


def test_dql_limit_shrinks_by_the_lowest_slack_after_the_hold_time():
    f = _dql(min_limit=0)
    f[NETDEV_QUEUE.dql_limit] = 100_000
    f[NETDEV_QUEUE.dql_adj_limit] = 100_000
    # busy all along: 10 kB in flight at every completion, 1 kB completed each time
    dql_queued(f, 10_000)
    now = T0
    for _ in range(5):
        now += 1_000_000
        dql_queued(f, 1000)
        dql_completed(f, 1000, now)
    assert f[NETDEV_QUEUE.dql_limit] == 100_000  # inside the hold time: unchanged
    slack = f[NETDEV_QUEUE.dql_lowest_slack]
    assert 0 < slack < 100_000
    dql_queued(f, 1000)
    dql_completed(f, 1000, now + SLACK_HOLD_NS + 1)
    assert f[NETDEV_QUEUE.dql_limit] < 100_000


def _over_limit_then_complete(caught_up_by: int) -> np.ndarray:
    """Queue 3000 B, complete 1000 B (over the limit of 0: prev_ovlimit 3000,
    prev_num_queued 3000), queue 1000 B more, then complete up to
    ``caught_up_by`` bytes short of prev_num_queued, with 1000 B still in
    flight afterwards (so only the "previous interval" clause can fire)."""
    f = _dql()
    dql_queued(f, 3000)
    dql_completed(f, 1000, T0 + 1)
    assert f[NETDEV_QUEUE.dql_limit] == 0
    assert f[NETDEV_QUEUE.dql_prev_ovlimit] == 3000
    assert f[NETDEV_QUEUE.dql_prev_num_queued] == 3000
    dql_queued(f, 1000 + caught_up_by)
    dql_completed(f, 2000 - caught_up_by, T0 + 2)
    assert f[NETDEV_QUEUE.dql_num_completed] == 3000 - caught_up_by
    assert dql_inflight(f) == 1000 + 2 * caught_up_by
    return f


def test_dql_completions_equal_to_prev_num_queued_count_as_starved_3_5():
    # 3.5's AFTER_EQ(completed, prev_num_queued): completed == prev_num_queued
    # with prev_ovlimit set is starvation; the limit grows by
    # POSDIFF(completed, prev_num_queued) + prev_ovlimit = 0 + 3000.  The
    # strict test of 3.3/3.4 would enter the shrink branch and keep limit 0.
    f = _over_limit_then_complete(0)
    assert f[NETDEV_QUEUE.dql_limit] == 3000
    assert f[NETDEV_QUEUE.dql_lowest_slack] == 2**32 - 1  # the starved branch resets it
    assert f[NETDEV_QUEUE.dql_slack_start] == T0 + 2
    assert f[NETDEV_QUEUE.dql_adj_limit] == 3000 + 3000


def test_dql_completions_short_of_prev_num_queued_are_not_starved():
    # one byte short: not all_prev_completed, busy all along: the shrink branch
    # records the slack, the limit stays (inside the hold time)
    f = _over_limit_then_complete(1)
    assert f[NETDEV_QUEUE.dql_limit] == 0
    assert f[NETDEV_QUEUE.dql_lowest_slack] == 0  # POSDIFF(0 + 3000, 2 * 1999)
    assert f[NETDEV_QUEUE.dql_slack_start] == T0


def test_dql_limit_stays_within_its_bounds():
    f = _dql(max_limit=3000, min_limit=500)
    assert f[NETDEV_QUEUE.dql_limit] == 500
    for i in range(10):
        dql_queued(f, 1500)
        dql_queued(f, 1500)
        dql_completed(f, 3000, T0 + i)
    assert f[NETDEV_QUEUE.dql_limit] == 3000
    assert f[NETDEV_QUEUE.dql_max_limit] == 3000 and DQL_MAX_LIMIT > 2**30


def test_dql_refuses_to_complete_more_than_was_queued():
    f = _dql()
    dql_queued(f, 100)
    with pytest.raises(AssertionError, match="dql_completed"):
        dql_completed(f, 200, T0)


# -- STACK_XOFF --------------------------------------------------------------------------------
def test_bql_stops_the_queue_and_the_completion_restarts_it_on_the_irq_cpu(mknet):
    """Limit 0 at start: the first skb reaches the ring and BQL stops the
    queue; the second is requeued (the bypass found the queue stopped).
    The NIC's completion raises the limit, clears STACK_XOFF and schedules
    the qdisc on the interrupt CPU, whose softirq sends the second."""
    net = mknet(
        config(
            cpus=2,
            profile="6.18",
            devices=[phys(tx_queues=1, bql=True, irq_cpus=[1])],
            traffic_=[traffic(cpus=[0], sockets_per_cpu=1, length=1000)],
        )
    )
    txq = net.dev_by_name["eth0"].txqs[0]
    q = qdisc_of(net)
    (sk,) = socks_of(net, 0)
    assert txq.bql
    assert xmit(net, 0, sk) == NET_XMIT_SUCCESS
    assert len(ring_descs(txq)) == 1
    assert txq.f[NETDEV_QUEUE.state] & STACK_XOFF and not txq.f[NETDEV_QUEUE.state] & XOFF
    assert txq.f[NETDEV_QUEUE.dql_stack_xoffs] == 1
    assert xmit(net, 0, sk) == NET_XMIT_SUCCESS
    assert len(ring_descs(txq)) == 1 and qf(q, "requeue_pending") == 1

    nic = Nic(net)
    assert nic.poll() == 1
    assert not txq.f[NETDEV_QUEUE.state] & STACK_XOFF
    assert txq.f[NETDEV_QUEUE.dql_limit] == 1000
    assert net.nic[NIC.bql_wakes] == 1
    assert output_queue(net, 1) == [q.id] and output_queue(net, 0) == []
    drain(net, nic)
    assert delivered(net) == 2 and in_flight(net) == 0
    check_identities(net, "after drain")


def test_without_bql_the_ring_takes_everything(mknet):
    """bql = false (or a 2.6.37 profile): no STACK_XOFF, the ring fills."""
    for profile, bql in (("6.18", False), ("2.6.37", True)):
        net = mknet(config(profile=profile, devices=[phys(tx_queues=1, bql=bql, ring_size=64)]))
        txq = net.dev_by_name["eth0"].txqs[0]
        (sk,) = socks_of(net, 0)
        for _ in range(10):
            xmit(net, 0, sk)
        assert not txq.bql
        assert len(ring_descs(txq)) == 10 and not txq.f[NETDEV_QUEUE.state] & STACK_XOFF


# -- bulk dequeue ---------------------------------------------------------------------------------
def _backlogged(
    mknet,
    profile: str,
    n: int,
    ring_size: int = 256,
    limit: int = 10**6,
    qdisc: str = "default",
    sndbuf: int = 212992,
    costs: CostConfig | None = None,
):
    """A single-queue device whose qdisc holds ``n`` skbs (the queue stopped
    by hand while they were sent), with a fixed BQL limit of ``limit`` bytes."""
    net = mknet(
        config(
            profile=profile,
            devices=[phys(tx_queues=1, bql=True, ring_size=ring_size, irq_cpus=[0], qdisc=qdisc)],
            traffic_=[traffic(sockets_per_cpu=1, length=1000, sndbuf=sndbuf)],
            costs=costs or CostConfig(),
        )
    )
    txq = net.dev_by_name["eth0"].txqs[0]
    dql_init(txq.f, T0, min_limit=limit)
    (sk,) = socks_of(net, 0)
    netif_tx_stop_queue(txq)
    for _ in range(n):
        assert xmit(net, 0, sk) == NET_XMIT_SUCCESS
    q = qdisc_of(net)
    assert qf(q, "qlen") == n
    return net, txq, q


def test_bulk_dequeue_hands_the_driver_a_list_under_one_root_lock_release(mknet):
    # a locked qdisc: 6.18's pfifo_fast is TCQ_F_NOLOCK, whose runner never
    # re-takes root_lock; pfifo is locked in every kernel
    net, txq, q = _backlogged(mknet, "6.18", 20, qdisc="pfifo")
    relocks = sd(net, 0, "owner_relocks")
    assert netif_tx_wake_queue(txq)
    assert net_tx_action()
    # the requeued leader comes back alone, then the other 19 in one list
    assert qf(q, "bulk_lists") == 1 and qf(q, "bulk_skbs") == 19
    assert sd(net, 0, "owner_relocks") - relocks == 2
    assert [int(r[1]) for r in ring_descs(txq)] == list(range(20))
    assert qf(q, "qlen") == 0
    check_identities(net, "after the run")


@pytest.mark.parametrize("profile,doorbells", [("6.18", 2), ("3.13", 20)])
def test_the_doorbell_is_rung_once_per_list_with_xmit_more(mknet, monkeypatch, profile, doorbells):
    """The driver's doorbell (its price, doorbell_ns) is paid for the last
    skb of a bulk list only: netdev_xmit_more() is true for the others.  3.13
    has no bulk dequeue (and no xmit_more): one doorbell per skb."""
    xmit, bell = 3, 7  # ns: tell the two prices apart
    net, txq, _q = _backlogged(
        mknet, profile, 20, qdisc="pfifo", costs=CostConfig(xmit_ns=xmit, doorbell_ns=bell)
    )
    paid: list[int] = []
    monkeypatch.setattr(ethernet, "ndelay", paid.append)
    assert netif_tx_wake_queue(txq)
    while net_tx_action():
        pass
    assert len(ring_descs(txq)) == 20
    assert paid.count(xmit) == 20 and paid.count(bell) == doorbells
    assert this.xmit_more is False  # cleared after the list
    check_identities(net, "after the run")


def test_bulk_dequeue_is_bounded_by_bql_bytes(mknet):
    """BQL has room for 3000 bytes: lists of at most 3 skbs of 1000 bytes
    (the first skb, then more while bytes remain)."""
    net, txq, q = _backlogged(mknet, "6.19", 12, limit=3000)
    netif_tx_wake_queue(txq)
    net_tx_action()
    assert qf(q, "bulk_lists") >= 1
    assert qf(q, "bulk_skbs") / qf(q, "bulk_lists") <= 3
    check_identities(net, "after the run")


def test_bulk_dequeue_is_bounded_by_the_run_quota(mknet):
    """100 skbs, BQL room for all: the run takes its first skb plus at most
    dev_tx_weight (64) more, then the quota is spent and the qdisc goes back
    on the output_queue (try_bulk_dequeue_skb's budget)."""
    net, txq, q = _backlogged(mknet, "6.19", 100)
    netif_tx_wake_queue(txq)
    net_tx_action()
    assert sd(net, 0, "quota_exhausted") == 1
    assert len(ring_descs(txq)) == 1 + 64
    assert output_queue(net, 0) == [q.id]
    check_identities(net, "after one run")


def test_no_bulk_dequeue_before_3_18(mknet):
    net, txq, q = _backlogged(mknet, "3.13", 20)
    netif_tx_wake_queue(txq)
    net_tx_action()
    assert qf(q, "bulk_lists") == 0
    assert len(ring_descs(txq)) == 20 and sd(net, 0, "owner_relocks") >= 20


def test_rest_of_a_list_the_driver_stopped_on_is_requeued_in_order(mknet):
    """Ring of 8: a list of 19 fills it, the driver stops the queue, and the
    other 11 go back to q->gso_skb in order; the NIC's wakes send them, then
    the rest, and every flow arrives in order."""
    net, txq, q = _backlogged(mknet, "6.18", 20, ring_size=8)
    netif_tx_wake_queue(txq)
    net_tx_action()
    assert len(ring_descs(txq)) == 8 and txq.f[NETDEV_QUEUE.state] & XOFF
    assert qf(q, "requeue_pending") == 12 and qf(q, "qlen") == 12
    check_identities(net, "with a requeued list")
    nic = Nic(net)
    drain(net, nic)
    assert delivered(net) == 20 and net.nic[NIC.reorders] == 0
    assert qf(q, "requeue_pending") == 0
    check_identities(net, "after drain")


# -- send-buffer sleep and wake ----------------------------------------------------------------
def test_sock_wait_for_wmem_returns_at_once_when_a_socket_is_writable(mknet):
    net = mknet(config())
    assert sock_wait_for_wmem(net, 0, lambda: True) is False
    assert sd(net, 0, "wmem_sleeping") == 0 and sd(net, 0, "wmem_sleeps") == 0


def test_a_sleeping_sender_is_woken_once(mknet):
    net = mknet(config(cpus=2))
    net.softnet[1][SOFTNET.wmem_sleeping] = 1
    assert wake_cpu(net, 1)
    assert not wake_cpu(net, 1)  # the flag was taken: one post only
    assert net.cpu_wake[1].value == 1
    assert sock_wait_for_wmem(net, 1, lambda: False) is True
    assert net.cpu_wake[1].value == 0  # the wait consumed the post
    assert sd(net, 1, "wmem_sleeps") == 1


def test_completion_wakes_a_sender_once_its_socket_is_half_empty(mknet):
    """A socket with room for 4 skbs: fill it, mark the CPU asleep; the NIC
    completing 1 skb (3/4 full) does not wake it, completing the rest does."""
    truesize = 1000 + 576
    net = mknet(
        config(
            devices=[phys(tx_queues=1, bql=False)],
            traffic_=[traffic(sockets_per_cpu=1, length=1000, sndbuf=4 * truesize)],
        )
    )
    txq = net.dev_by_name["eth0"].txqs[0]
    (sk,) = socks_of(net, 0)
    for _ in range(4):
        xmit(net, 0, sk)
    net.softnet[0][SOFTNET.wmem_sleeping] = 1
    nic = Nic(net)
    nic.batch = 1
    assert nic.poll() == 1
    assert net.nic[NIC.write_space_wakes] == 0 and sd(net, 0, "wmem_sleeping") == 1
    assert nic.poll() == 1  # 2 of 4 left: half empty
    assert net.nic[NIC.write_space_wakes] == 1 and sd(net, 0, "wmem_sleeping") == 0
    assert len(ring_descs(txq)) == 2


def test_bulk_dequeue_has_no_packet_budget_before_the_2025_fix_4_19(mknet):
    """4.19's try_bulk_dequeue_skb counts the skbs it chains but only BQL's
    bytes stop the list: with room for all 100, one list carries far more
    than the run's dev_tx_weight (64), which 6.19 stops at (test above)."""
    net, txq, q = _backlogged(mknet, "4.19", 100)
    netif_tx_wake_queue(txq)
    net_tx_action()
    assert qf(q, "bulk_lists") >= 1
    assert qf(q, "bulk_skbs") > 64 + 1
    assert len(ring_descs(txq)) > 64 + 1
    check_identities(net, "after the run")


def test_a_4_19_list_longer_than_a_run_is_requeued_whole_when_the_driver_stops(mknet):
    """4.19: BQL room for 300 skbs and no packet budget, a ring of 16: the
    list stops at GSO_SKB_MAX (q->gso_skb's room, where the kernel's list is
    unbounded), the driver takes 16 and the rest goes back to q->gso_skb in
    order (it overflowed there and crashed the sender before)."""
    net, txq, q = _backlogged(mknet, "4.19", 300, ring_size=16, sndbuf=1 << 20)
    netif_tx_wake_queue(txq)
    net_tx_action()
    assert len(ring_descs(txq)) == 16 and txq.f[NETDEV_QUEUE.state] & XOFF
    assert qf(q, "bulk_skbs") == GSO_SKB_MAX and qf(q, "bulk_lists") == 1
    assert qf(q, "requeue_pending") == GSO_SKB_MAX - 16
    assert qf(q, "qlen") == 300 - 16
    check_identities(net, "with a requeued list of GSO_SKB_MAX")
