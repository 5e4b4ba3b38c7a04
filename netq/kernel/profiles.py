"""Kernel profiles: the version-dependent constants of the transmit path.

A profile answers "which kernel are we emulating" for everything that changed
between generations and that a run's numbers depend on.  A strategy says how
``__dev_xmit_skb`` enters a *locked* qdisc (fq, pfifo, pfifo_fast before
4.16); it can be chosen independently of the profile, so one workload can be
run under each, and the profile only supplies the default.  Whether a qdisc
is locked at all is not a strategy: it is the qdisc's ``static_flags``
(pfifo_fast is TCQ_F_NOLOCK from 4.16, :attr:`Profile.pfifo_fast_nolock`),
and a TCQ_F_NOLOCK qdisc takes its own branch of ``__dev_xmit_skb`` before
any strategy's code, as the kernel's does.
"""

from __future__ import annotations

from dataclasses import dataclass

#: How ``__dev_xmit_skb`` serialises senders on a *locked* qdisc: rootlock
#: (before 2.6.36), busylock (2.6.36 .. 6.18), defer (the lock-free
#: defer_list, 6.19).  A TCQ_F_NOLOCK qdisc never meets any of them.
STRATEGIES = ("rootlock", "busylock", "defer")

#: strategy names netq once had, and what to use instead (a configuration
#: naming one is refused with this text)
RETIRED_STRATEGIES = {
    "nolock": (
        "is no strategy any more: pfifo_fast is TCQ_F_NOLOCK from kernel 4.16 by "
        "itself, whatever the strategy (profiles 4.19, 6.18, 6.19); use "
        "profile 4.19 or 6.18 (their locked qdiscs take busylock), or set "
        "pfifo_fast_nolock = true to make pfifo_fast lockless under another "
        "profile (a what-if)"
    ),
}


@dataclass(frozen=True)
class Profile:
    """Constants of one kernel generation."""

    name: str
    #: RECURSION_LIMIT / XMIT_RECURSION_LIMIT: a noqueue transmission is
    #: refused when the per-CPU counter already *exceeds* it
    #: (``__this_cpu_read(xmit_recursion) > RECURSION_LIMIT``).
    recursion_limit: int
    #: default locking strategy of a locked qdisc
    strategy: str
    #: weight_p / dev_tx_weight: packets one __qdisc_run may send
    dev_tx_weight: int
    #: how skb_tx_hash and get_xps_queue hash a flow:
    #: "jhash_sk_hash"   3.13: __flow_hash_1word(sk->sk_hash) = jhash_1word(h, hashrnd),
    #:                   then ((u64)hash * qcount) >> 32
    #: "skb_get_hash"    4.2+: reciprocal_scale(skb_get_hash(skb), qcount), where a
    #:                   locally generated skb carries the socket's random sk_txhash
    tx_hash: str
    #: where it comes from, for the report
    source: str
    #: nolock: the empty-qdisc bypass of commit ba27b4cdaaa6 (5.14); 4.19's
    #: lockless pfifo_fast always enqueued
    nolock_bypass: bool = True
    #: byte queue limits (3.3, lib/dynamic_queue_limits.c) in drivers that
    #: support it (the device's ``bql``)
    bql: bool = True
    #: dequeue_skb bulk-dequeues up to qdisc_avail_bulklimit() bytes for a
    #: TCQ_F_ONETXQUEUE qdisc (3.18, commit 5772e9a3463b), at most the run's
    #: remaining quota (a November 2025 fix of that commit, in 6.19 and stable)
    bulk_dequeue: bool = True
    #: net_tx_action takes a locked qdisc's root_lock with spin_trylock and
    #: reschedules the qdisc when that fails (up to 4.15); from 4.16 (commit
    #: 6b3ba9146fe6, "allow qdiscs to handle locking") it waits in spin_lock
    tx_action_trylock: bool = False
    # -- issue 13 (1, 3, 5): qdisc flags, sch_direct_xmit, the softirq loop --
    #: pfifo_fast's static_flags carry TCQ_F_NOLOCK (4.16, commit
    #: c5ad119fb6c0 "net: sched: pfifo_fast use skb_array"): the default
    #: qdisc and every mq child take the NOLOCK branch of __dev_xmit_skb
    pfifo_fast_nolock: bool = True
    #: sch_direct_xmit returns true after any successful send (4.16, commit
    #: 29b86cdac00a "net: sched: remove remaining uses for qdisc_qlen in
    #: xmit path"); before, it returned qdisc_qlen(q) (0: stop)
    sch_direct_xmit_bool: bool = True
    #: __do_softirq restarts while "time_before(jiffies, end)", end =
    #: jiffies + MAX_SOFTIRQ_TIME (2 ms; commit c10d73671ad3, 3.9); 0: only
    #: MAX_SOFTIRQ_RESTART bounds the loop (2.6.37)
    softirq_time_ns: int = 2_000_000
    #: do_softirq and invoke_softirq leave pending softirqs to ksoftirqd while
    #: it is runnable (commit 4cd13c21b207 "softirq: Let ksoftirqd do its
    #: job", 4.9; reverted in 2023 by d15121be7485)
    ksoftirqd_defer: bool = False


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            "2.6.37",
            3,
            "busylock",
            64,
            "jhash_sk_hash",
            "commit 745e20f1b626 (2010) adds xmit_recursion with RECURSION_LIMIT 3",
            bql=False,
            bulk_dequeue=False,
            tx_action_trylock=True,
            pfifo_fast_nolock=False,
            sch_direct_xmit_bool=False,
            softirq_time_ns=0,
        ),
        Profile(
            "3.13",
            10,
            "busylock",
            64,
            "jhash_sk_hash",
            "the seed: net/core/dev.c of 3.13, RECURSION_LIMIT 10, busylock since 2.6.36",
            bulk_dequeue=False,
            tx_action_trylock=True,
            pfifo_fast_nolock=False,
            sch_direct_xmit_bool=False,
        ),
        Profile(
            "4.19",
            10,
            "busylock",
            64,
            "skb_get_hash",
            "TCQ_F_NOLOCK pfifo_fast (4.16): seqlock trylock, no bypass; locked qdiscs "
            "busylock; ksoftirqd defers softirqs (4.9); XMIT_RECURSION_LIMIT 10",
            nolock_bypass=False,
            ksoftirqd_defer=True,
        ),
        Profile(
            "6.18",
            8,
            "busylock",
            64,
            "skb_get_hash",
            "XMIT_RECURSION_LIMIT 8 (2020), NOLOCK pfifo_fast with bypass, busylock for "
            "locked qdiscs, reciprocal_scale(skb_get_hash)",
        ),
        Profile(
            "6.19",
            8,
            "defer",
            64,
            "skb_get_hash",
            "commit 100dfa74cad9 (2025): senders to a locked qdisc push on q->defer_list; "
            "one splices and runs (NOLOCK pfifo_fast as 6.18)",
        ),
    )
}

DEFAULT_PROFILE = "3.13"
