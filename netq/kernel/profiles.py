"""Kernel profiles: the version-dependent constants of the transmit path.

A profile answers "which kernel are we emulating" for everything that changed
between generations and that a run's numbers depend on.  Strategies (how
``__dev_xmit_skb`` locks a qdisc) can also be chosen independently of the
profile, so one workload can be run under each; the profile only supplies the
default.
"""

from __future__ import annotations

from dataclasses import dataclass

#: How ``__dev_xmit_skb`` serialises senders on a qdisc (docs/architecture.md,
#: "How to add a strategy"): rootlock (before 2.6.36), busylock (2.6.36 .. 6.18), nolock
#: (TCQ_F_NOLOCK pfifo_fast, 4.16+), defer (the lock-free defer_list, 6.19).
STRATEGIES = ("rootlock", "busylock", "nolock", "defer")


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
        ),
        Profile(
            "4.19",
            10,
            "nolock",
            64,
            "skb_get_hash",
            "TCQ_F_NOLOCK pfifo_fast (4.16): seqlock trylock, no bypass; XMIT_RECURSION_LIMIT 10",
            nolock_bypass=False,
        ),
        Profile(
            "6.18",
            8,
            "busylock",
            64,
            "skb_get_hash",
            "XMIT_RECURSION_LIMIT 8 (2020), busylock, reciprocal_scale(skb_get_hash)",
        ),
        Profile(
            "6.19",
            8,
            "defer",
            64,
            "skb_get_hash",
            "commit 100dfa74cad9 (2025): senders push on q->defer_list; one splices and runs",
        ),
    )
}

DEFAULT_PROFILE = "3.13"
