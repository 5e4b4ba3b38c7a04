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

What each profile's kernel does that netq does differently (beyond what the
kernel functions' docstrings say):

* 2.6.37: no XPS (2.6.38) and no skb->ooo_okay (2.6.38), which netq still
  gives it when a configuration asks; its skb_tx_hash XORed ``skb->rxhash``
  into the socketless fallback (netq: the protocol alone; netq sends no
  socketless skb without a recorded rx queue).  It shares 3.13's jhash
  seeding here, taken from jhash.h's lookup3 form; 2.6.37's own jhash.h was
  not read.
* 3.13: as the kernel for everything the profile's fields name (the seed).
* 4.19: no rx-queue folding into the traffic class, no ``!qcount`` fallback
  and no bulk-dequeue packet budget, as 4.19 is.  4.19.0's lockless
  pfifo_fast had no ``__QDISC_STATE_MISSED`` (5.13, commit a90c57f2cedd;
  the 5.14 follow-ups): a sender whose seqlock trylock failed just after the
  holder's last dequeue left its skb in the qdisc until the next transmit or
  softirq (the "stuck packet" of 4.16 .. 5.12).  netq runs 4.19's NOLOCK
  qdiscs with the 5.13/5.14 MISSED machinery anyway: without it a run could
  end with skbs nobody sends, which the drain and the invariants would
  report as a stall rather than measure.
* 6.18: the November 2025 bulk-dequeue budget is in 6.18's stable series,
  not in 6.18.0; netq gives it to the profile.
* 6.19: the defer_list limit is net.core.qdisc_max_burst (the January 2026
  fix in 6.19), not 100dfa74cad9's ``q->limit``.
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
    #: a locked qdisc's enqueue hands what it drops to a to_free list that
    #: __dev_xmit_skb frees after releasing the root lock (4.8, commit
    #: 520ac30f4551 "net_sched: drop packets after root qdisc lock is
    #: released"); before, qdisc_drop freed them under it
    qdisc_drop_after_unlock: bool = True

    # -- queue selection, hashing and bulk dequeue by version (issue 13, items 4, 6, 7) ----
    #: jhash_1word/2words/3words seed as include/linux/jhash.h did until 2015:
    #: ``a += JHASH_INITVAL; b += JHASH_INITVAL; c += initval`` (3.13's
    #: jhash_1word(a, iv) = jhash_3words(a, 0, 0, iv)); False: the later
    #: ``__jhash_nwords(a, b, c, initval + JHASH_INITVAL + (n << 2))``
    jhash_legacy_seed: bool = False
    #: skb_tx_hash folds a recorded rx queue into the skb's traffic class
    #: (``hash -= qoffset`` while ``hash >= qcount``, then ``+ qoffset``: the
    #: 2021 fix of eadec877ce9c/1b837d489e06, in 5.x and stable); False: the
    #: 3.13/4.19 fold over every TX queue, ignoring the class
    tx_hash_rxq_in_tc: bool = True
    #: skb_tx_hash hashes over every TX queue when the skb's class has none
    #: (the ``!qcount`` fallback, a 2022 fix of eadec877ce9c in 5.x and stable)
    tx_hash_qcount_fallback: bool = True
    #: XPS maps are kept per traffic class (4.10, commit 184c449f91fe): a CPU
    #: picks only among its queues of the skb's class (``tci = cpu * num_tc +
    #: tc``); False: among all the queues whose xps_cpus name it
    xps_tc: bool = True
    #: try_bulk_dequeue_skb stops at the run's remaining quota (a November
    #: 2025 fix, in 6.19 and the 6.18 stable series); False: only BQL's bytes
    #: bound a bulk list (3.18 .. 6.18.0, 4.19 included)
    bulk_dequeue_budget: bool = True
    #: who sets skb->ooo_okay (which lets __netdev_pick_tx leave a socket's
    #: cached TX queue): "tcp" (2.6.38+: tcp_transmit_skb, when nothing of the
    #: socket is in a host queue; other protocols never), "owner_w" (6.19:
    #: skb_set_owner_w for every protocol, ``old_wmem == SK_WMEM_ALLOC_BIAS``)
    ooo_okay: str = "tcp"
    #: sk_tx_queue_get forgets a socket's cached TX queue once it is older
    #: than net.core.txq_reselection_ms (6.19, commit 4a7708443dec, Oct 2025);
    #: sk_tx_queue_set refreshes its time stamp when it is older than HZ
    txq_reselection: bool = False
    #: fq keys an unconnected socket's skbs (TCP_CLOSE, UDP with sendto) by
    #: ``skb_get_hash(skb) & orphan_mask`` like orphans, not by the socket
    #: (2019, "net_sched: sch_fq: handle non connected flows")
    fq_hash_unconnected: bool = True
    #: get_xps_queue tries the xps_rxqs map of the socket's recorded RX queue
    #: (sk_rx_queue_mapping) before the CPU's (4.18, commit fc9bab24e93b
    #: "net: Enable Tx queue selection based on Rx queues")
    xps_rxqs: bool = True
    #: the hardware era of this kernel's machines: its virtual-clock price
    #: list (netq.kernel.costs.ERAS)
    hardware: str = "2025"


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
            jhash_legacy_seed=True,
            tx_hash_rxq_in_tc=False,
            tx_hash_qcount_fallback=False,
            xps_tc=False,
            xps_rxqs=False,
            bulk_dequeue_budget=False,
            pfifo_fast_nolock=False,
            sch_direct_xmit_bool=False,
            softirq_time_ns=0,
            qdisc_drop_after_unlock=False,
            # the busylock commit's (2.6.36) box: dual E5450, front-side bus
            hardware="2007",
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
            jhash_legacy_seed=True,
            tx_hash_rxq_in_tc=False,
            tx_hash_qcount_fallback=False,
            xps_tc=False,
            xps_rxqs=False,
            bulk_dequeue_budget=False,
            fq_hash_unconnected=False,
            pfifo_fast_nolock=False,
            sch_direct_xmit_bool=False,
            qdisc_drop_after_unlock=False,
            hardware="2010",
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
            tx_hash_rxq_in_tc=False,
            tx_hash_qcount_fallback=False,
            bulk_dequeue_budget=False,
            fq_hash_unconnected=False,
            ksoftirqd_defer=True,
            hardware="2018",
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
            ooo_okay="owner_w",
            txq_reselection=True,
        ),
    )
}

DEFAULT_PROFILE = "3.13"
