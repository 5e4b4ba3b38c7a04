"""Locking strategies of __dev_xmit_skb for a locked qdisc.

``busylock`` (2.6.36 .. 6.18): a sender that finds the qdisc running
(``contended = qdisc_is_running(q)``) first takes q->busylock, then
root_lock.  ``rootlock`` (before 2.6.36): straight to root_lock.

"Another CPU runs the qdisc" is staged in one process: QDISC.running is set
to CPU 1 + 1, as qdisc_run_begin on CPU 1 would have left it; later CPU 1
finishes its __qdisc_run under root_lock, which is the only way the running
state ends.
"""

from __future__ import annotations

import pytest

from netq.kernel.core.netdevice import NET_XMIT_SUCCESS
from netq.kernel.core.percpu import this
from netq.kernel.kstructs import QDISC
from netq.kernel.sched.sch_generic import __qdisc_run, qdisc_is_running
from shm.lock import STAT
from tests.modelutil import (
    config,
    delivered,
    drain,
    phys,
    qdisc_of,
    ring_descs,
    sd,
    socks_of,
    traffic,
    xmit,
)
from workers.nic import Nic


def setup(mknet, strategy: str | None, profile: str = "3.13"):
    net = mknet(
        config(
            cpus=2,
            profile=profile,
            strategy=strategy,
            devices=[phys(tx_queues=1, ring_size=64)],
            traffic_=[traffic(cpus=[0], sockets_per_cpu=1)],
        )
    )
    return net, qdisc_of(net), socks_of(net, 0)[0]


def acquisitions(net, cpu: int, lock_id: int) -> int:
    """This CPU's private lock_stat row (not yet flushed)."""
    net.bind_cpu(cpu)
    return this.locks[lock_id].st[STAT.acquisitions]


def cpu1_finishes_its_run(net, q) -> None:
    """CPU 1, which 'was' running q, goes on with its __qdisc_run loop under
    root_lock and ends it (qdisc_run_end)."""
    net.bind_cpu(1)
    root = this.locks[q.root_lock]
    root.lock()
    __qdisc_run(q)
    root.unlock()


@pytest.mark.parametrize("profile", ["2.6.37", "3.13", "6.18"])
def test_profiles_default_to_busylock(mknet, profile):
    net, _, _ = setup(mknet, None, profile)
    assert net.strategy == "busylock" and net.busylock


def test_busylock_taken_when_the_qdisc_is_running_elsewhere(mknet):
    net, q, sk = setup(mknet, "busylock")
    q.f[QDISC.running] = 1 + 1  # CPU 1 is inside __qdisc_run
    assert qdisc_is_running(q)
    assert xmit(net, 0, sk) == NET_XMIT_SUCCESS
    assert sd(net, 0, "busylock_taken") == 1
    assert acquisitions(net, 0, q.busylock) == 1
    # it could not bypass (the qdisc is running): enqueued for CPU 1 to send
    assert q.f[QDISC.bypass] == 0 and q.f[QDISC.enqueued] == 1 and q.f[QDISC.qlen] == 1
    assert q.f[QDISC.running] == 2
    # both locks released on the way out
    assert net.locks.owner(q.busylock) == -1 and net.locks.owner(q.root_lock) == -1
    cpu1_finishes_its_run(net, q)
    assert q.f[QDISC.running] == 0 and q.f[QDISC.qlen] == 0
    assert len(ring_descs(net.dev_by_name["eth0"].txqs[0])) == 1
    drain(net, Nic(net))
    assert delivered(net) == 1


def test_busylock_not_taken_when_the_qdisc_is_idle(mknet):
    net, q, sk = setup(mknet, "busylock")
    for _ in range(5):
        xmit(net, 0, sk)
    assert sd(net, 0, "busylock_taken") == 0
    assert acquisitions(net, 0, q.busylock) == 0
    assert acquisitions(net, 0, q.root_lock) >= 5


def test_every_contended_sender_takes_busylock(mknet):
    net, q, sk = setup(mknet, "busylock")
    q.f[QDISC.running] = 2
    for _ in range(7):
        xmit(net, 0, sk)
    assert sd(net, 0, "busylock_taken") == 7
    assert q.f[QDISC.qlen] == 7
    cpu1_finishes_its_run(net, q)
    assert q.f[QDISC.qlen] == 0 and len(ring_descs(net.dev_by_name["eth0"].txqs[0])) == 7


def test_rootlock_never_takes_busylock(mknet):
    net, q, sk = setup(mknet, "rootlock")
    assert not net.busylock
    q.f[QDISC.running] = 2
    for _ in range(7):
        assert xmit(net, 0, sk) == NET_XMIT_SUCCESS
    assert sd(net, 0, "busylock_taken") == 0
    assert acquisitions(net, 0, q.busylock) == 0
    assert q.f[QDISC.enqueued] == 7 and q.f[QDISC.bypass] == 0
    cpu1_finishes_its_run(net, q)
    q.f[QDISC.running] = 0
    for _ in range(3):
        xmit(net, 0, sk)
    assert sd(net, 0, "busylock_taken") == 0
    drain(net, Nic(net))
    assert delivered(net) == 10


def test_run_owner_relocks_are_counted(mknet):
    """Every sch_direct_xmit re-takes root_lock after the driver: the moment
    busylock is about.  Uncontended in a single process."""
    net, _q, sk = setup(mknet, "busylock")
    for _ in range(4):
        xmit(net, 0, sk)  # 4 bypasses, each one sch_direct_xmit
    assert sd(net, 0, "owner_relocks") == 4
    assert sd(net, 0, "owner_relock_contended") == 0


def test_contended_sender_may_still_bypass_if_the_run_ended_meanwhile(mknet):
    """The racy qdisc_is_running() saw CPU 1 running; by the time root_lock
    is taken the run has ended: the empty qdisc is bypassed, and busylock is
    released before __qdisc_run / at the end, never kept."""
    net, q, sk = setup(mknet, "busylock")
    net.bind_cpu(0)
    q.f[QDISC.running] = 1 + 1  # CPU 1 runs q when CPU 0 looks
    root = this.locks[q.root_lock]
    spin_lock = root.lock

    def run_ends_meanwhile():
        # CPU 1's qdisc_run_end lands while CPU 0 takes busylock, then root_lock
        root.lock = spin_lock
        q.f[QDISC.running] = 0
        return spin_lock()

    root.lock = run_ends_meanwhile
    assert xmit(net, 0, sk) == NET_XMIT_SUCCESS
    assert root.lock is spin_lock
    assert sd(net, 0, "busylock_taken") == 1
    assert q.f[QDISC.bypass] == 1 and q.f[QDISC.enqueued] == 0
    assert net.locks.owner(q.busylock) == -1 and net.locks.owner(q.root_lock) == -1
    assert q.f[QDISC.running] == 0
