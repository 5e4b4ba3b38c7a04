"""kernel/softirq.c's NET_TX loop, and sch_direct_xmit's return by version.

Issue 13, items 3 and 5, pinned by counters in one process:

* __do_softirq runs net_tx_action again while NET_TX was raised again, at
  most MAX_SOFTIRQ_RESTART (10) passes, or until MAX_SOFTIRQ_TIME (3.9+),
  then wakes ksoftirqd; 4.9 .. 2023 kernels (profile 4.19) leave pending
  softirqs to a runnable ksoftirqd, 6.x runs them at once again;
* sch_direct_xmit returns qlen up to 4.15 (3.13) and true after any
  successful send from 4.16: the bypass of a lone skb then runs
  __qdisc_run at qlen 0.

Wall-clock limits are taken out where they would make a test depend on the
machine's speed (``softirq_time_ns`` 0 or 1 ns through dataclasses.replace).
"""

from __future__ import annotations

import dataclasses

import pytest

from netq.kernel.core.netdevice import netif_tx_stop_queue, netif_tx_wake_queue
from netq.kernel.core.percpu import this
from netq.kernel.profiles import PROFILES
from netq.kernel.softirq import (
    MAX_SOFTIRQ_RESTART,
    __do_softirq,
    do_softirq,
    run_ksoftirqd,
)
from tests.modelutil import (
    config,
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

WEIGHT = 64  # dev_tx_weight of every profile


def _backlog(mknet, profile: str, n: int, cpus: int = 1, **prof):
    """One queue whose qdisc holds ``n`` skbs and is scheduled on CPU 0
    (queue stopped while they were sent, then woken), under ``profile``
    with its fields ``prof`` replaced."""
    net = mknet(
        config(
            cpus=cpus,
            profile=profile,
            devices=[phys(tx_queues=1, ring_size=2048, tx_queue_len=4096, irq_cpus=[0])],
            traffic_=[traffic(cpus=[0], sockets_per_cpu=1, sndbuf=0)],
        )
    )
    if prof:
        net.profile = dataclasses.replace(net.profile, **prof)
    txq = net.dev_by_name["eth0"].txqs[0]
    q = qdisc_of(net)
    (sk,) = socks_of(net, 0)
    netif_tx_stop_queue(txq)
    for _ in range(n):
        xmit(net, 0, sk, softirq=False)
    assert qf(q, "qlen") == n
    assert netif_tx_wake_queue(txq)  # raises NET_TX on CPU 0
    assert output_queue(net, 0) == [q.id]
    return net, txq, q


# -- the restart loop ------------------------------------------------------------------------
@pytest.mark.parametrize("profile", ["3.13", "6.18"])
def test_do_softirq_restarts_ten_passes_then_wakes_ksoftirqd(mknet, profile):
    """12 quotas queued: one __do_softirq sends 10 of them (9 restarts, the
    10th pass leaves NET_TX pending: MAX_SOFTIRQ_RESTART), wakes ksoftirqd;
    ksoftirqd's turn sends the rest and it goes back to sleep.  There the
    versions differ by sch_direct_xmit's return: 3.13's qlen ends the run
    on the last skb (1 restart), 6.18's "true" exhausts the quota on it and
    reschedules, a third pass finds the qdisc empty (2 restarts)."""
    net, txq, q = _backlog(mknet, profile, 12 * WEIGHT, softirq_time_ns=0)
    assert do_softirq()
    assert len(ring_descs(txq)) == MAX_SOFTIRQ_RESTART * WEIGHT
    assert sd(net, 0, "net_tx_action") == MAX_SOFTIRQ_RESTART
    assert sd(net, 0, "softirq_runs") == 1
    assert sd(net, 0, "softirq_restarts") == MAX_SOFTIRQ_RESTART - 1
    assert sd(net, 0, "softirq_restart_limit") == 1 and sd(net, 0, "softirq_time_limit") == 0
    assert sd(net, 0, "quota_exhausted") == MAX_SOFTIRQ_RESTART
    assert output_queue(net, 0) == [q.id]  # still pending: ksoftirqd's
    assert sd(net, 0, "ksoftirqd_running") == 1 and sd(net, 0, "ksoftirqd_wakeups") == 1
    assert run_ksoftirqd()
    assert len(ring_descs(txq)) == 12 * WEIGHT and qf(q, "qlen") == 0
    assert sd(net, 0, "ksoftirqd_runs") == 1 and sd(net, 0, "softirq_runs") == 2
    extra = 1 if profile == "3.13" else 2
    assert sd(net, 0, "softirq_restarts") == MAX_SOFTIRQ_RESTART - 1 + extra
    assert sd(net, 0, "ksoftirqd_running") == 0  # nothing pending: back to sleep
    assert not run_ksoftirqd() and sd(net, 0, "ksoftirqd_runs") == 1


def test_the_time_limit_ends_the_loop_before_the_restart_limit(mknet):
    """3.9+: MAX_SOFTIRQ_TIME is tested first; a limit shorter than one pass
    ends the loop after it, without a restart."""
    net, txq, _q = _backlog(mknet, "3.13", 3 * WEIGHT, softirq_time_ns=1)
    __do_softirq()
    assert len(ring_descs(txq)) == WEIGHT
    assert sd(net, 0, "softirq_time_limit") == 1 and sd(net, 0, "softirq_restarts") == 0
    assert sd(net, 0, "softirq_restart_limit") == 0
    assert sd(net, 0, "ksoftirqd_running") == 1


def test_2_6_37_has_no_time_limit(mknet):
    """Before 3.9 only MAX_SOFTIRQ_RESTART bounds the loop: the profile's
    own limit is 0 and a backlog of 12 quotas still stops at 10 passes."""
    assert PROFILES["2.6.37"].softirq_time_ns == 0
    net, txq, _q = _backlog(mknet, "2.6.37", 12 * WEIGHT)
    __do_softirq()
    assert len(ring_descs(txq)) == MAX_SOFTIRQ_RESTART * WEIGHT
    assert sd(net, 0, "softirq_restart_limit") == 1 and sd(net, 0, "softirq_time_limit") == 0


def test_3_13_retries_a_busy_root_lock_ten_times_then_leaves_it_to_ksoftirqd(mknet):
    """3.13's net_tx_action trylocks root_lock; another CPU holds it: each
    pass reschedules the qdisc (re-raising NET_TX), so __do_softirq tries
    MAX_SOFTIRQ_RESTART times, sends nothing, and wakes ksoftirqd."""
    net, txq, q = _backlog(mknet, "3.13", 5, cpus=2, softirq_time_ns=0)
    net.bind_cpu(1)
    this.locks[q.root_lock].lock()
    net.bind_cpu(0)
    try:
        __do_softirq()
    finally:
        net.bind_cpu(1)
        this.locks[q.root_lock].unlock()
        net.bind_cpu(0)
    assert sd(net, 0, "resched_trylock") == MAX_SOFTIRQ_RESTART
    assert sd(net, 0, "softirq_restarts") == MAX_SOFTIRQ_RESTART - 1
    assert qf(q, "qlen") == 5 and len(ring_descs(txq)) == 0
    assert sd(net, 0, "ksoftirqd_running") == 1
    assert run_ksoftirqd() and qf(q, "qlen") == 0


@pytest.mark.parametrize("profile,defers", [("3.13", False), ("4.19", True), ("6.18", False)])
def test_a_runnable_ksoftirqd_takes_over_only_from_4_9_to_the_2023_revert(mknet, profile, defers):
    """ksoftirqd is runnable (the last loop hit its limit): 4.19's do_softirq
    (4cd13c21b207) leaves the pending NET_TX to it, counted as deferred;
    3.13 (before) and 6.18 (after d15121be7485) run it at once."""
    assert PROFILES[profile].ksoftirqd_defer is defers
    net, txq, q = _backlog(mknet, profile, 12 * WEIGHT, softirq_time_ns=0)
    assert do_softirq()
    sent = len(ring_descs(txq))
    assert sd(net, 0, "ksoftirqd_running") == 1 and output_queue(net, 0) == [q.id]
    ran = do_softirq()  # the next local_bh_enable
    assert ran is not defers
    assert sd(net, 0, "softirq_deferred") == (1 if defers else 0)
    assert (len(ring_descs(txq)) == sent) is defers


def test_each_profile_has_its_kernels_softirq_rules():
    """2.6.37: restarts only; 3.9+ (3.13 on): 2 ms; 4.9 .. 2023: ksoftirqd
    defers (4.19 only among the profiles)."""
    got = {n: (p.softirq_time_ns, p.ksoftirqd_defer) for n, p in PROFILES.items()}
    assert got == {
        "2.6.37": (0, False),
        "3.13": (2_000_000, False),
        "4.19": (2_000_000, True),
        "6.18": (2_000_000, False),
        "6.19": (2_000_000, False),
    }


# -- sch_direct_xmit's return value ------------------------------------------------------------
@pytest.mark.parametrize(
    "profile,qdisc,runs",
    [
        ("2.6.37", "default", 0),  # returns qlen: 0, the run ends at once
        ("3.13", "default", 0),
        ("4.19", "pfifo", 1),  # 4.16+: true after a successful send
        ("6.18", "pfifo", 1),
        ("6.18", "fq", 0),  # fq never bypasses
    ],
)
def test_a_lone_bypassed_skb_runs_the_qdisc_from_4_16(mknet, profile, qdisc, runs):
    """A lone skb into an idle, empty, locked qdisc is bypassed.  Up to 4.15
    sch_direct_xmit returns qlen (0), so __dev_xmit_skb ends the run; from
    4.16 (29b86cdac00a) it returns true and __qdisc_run is called at qlen 0,
    a run that dequeues nothing."""
    assert PROFILES[profile].sch_direct_xmit_bool is (profile not in ("2.6.37", "3.13"))
    net = mknet(
        config(
            profile=profile,
            devices=[phys(tx_queues=1, ring_size=64, qdisc=qdisc)],
            traffic_=[traffic(sockets_per_cpu=1)],
        )
    )
    q = qdisc_of(net)
    (sk,) = socks_of(net, 0)
    xmit(net, 0, sk)
    txq = net.dev_by_name["eth0"].txqs[0]
    assert len(ring_descs(txq)) == 1 and qf(q, "qlen") == 0
    assert sd(net, 0, "bypass") == (0 if qdisc == "fq" else 1)
    if qdisc != "fq":
        assert sd(net, 0, "qdisc_runs") == runs and sd(net, 0, "run_packets") == 0
    assert qf(q, "running") == 0


def test_a_nolock_bypass_runs_the_qdisc_only_if_something_waits(mknet):
    """6.18's NOLOCK pfifo_fast: 'sch_direct_xmit() && !nolock_qdisc_is_empty()',
    so a lone skb's bypass ends the run without __qdisc_run."""
    net = mknet(config(profile="6.18", devices=[phys(tx_queues=1, ring_size=64)]))
    (sk,) = socks_of(net, 0)
    xmit(net, 0, sk)
    assert sd(net, 0, "bypass") == 1 and sd(net, 0, "qdisc_runs") == 0


def test_the_kernel_model_reads_the_virtual_clock_when_it_has_one(monkeypatch):
    """MAX_SOFTIRQ_TIME, fq's flow_refill_delay, the TX queue cache's age and
    net_ratelimit all read ktime_get_ns(): this CPU's virtual clock on a
    virtual run (the host's time runs a hundred times slower there)."""
    from netq.kernel.core.percpu import this
    from netq.kernel.core.timekeeping import ktime_get_ns

    class Clock:
        now = 12_345

    monkeypatch.setattr(this, "vt", Clock())
    assert ktime_get_ns() == 12_345
    monkeypatch.setattr(this, "vt", None)
    a = ktime_get_ns()
    assert ktime_get_ns() >= a > 12_345
