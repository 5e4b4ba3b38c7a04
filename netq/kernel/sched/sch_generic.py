"""Generic packet scheduler routines (net/sched/sch_generic.c, include/net/sch_generic.h).

A qdisc kind is a small frozen ops table (:class:`Qdisc_ops`); a kind only
moves packets.  All accounting (qlen, backlog, bstats/qstats, the counters
behind the identities) happens here, in :func:`qdisc_enqueue` and
:func:`qdisc_dequeue`, so every kind obeys

    qlen == enqueued - (dequeued - requeues) - purged

where ``dequeued - requeues`` counts the skbs that left for good (a requeued
skb was dequeued once and comes back into ``q->gso_skb``).

The dequeue side follows 3.13 (the seed): ``qdisc_run_end`` at the end of
``__qdisc_run``, requeued skbs kept in ``q->gso_skb``, and one skb per
qdisc_restart, unless the profile has bulk dequeue (3.18+): then a
TCQ_F_ONETXQUEUE qdisc hands out as many skbs as BQL lets the ring take
(``try_bulk_dequeue_skb``), and the driver gets them under one
HARD_TX_LOCK and one root_lock release.  Later kernels let the caller run
``qdisc_run_end``; that is not modelled.

Locking: every function that touches a qdisc's queue is called with
``qdisc_lock(q)`` (root_lock) held, as its docstring says; ``state`` bits are
atomic; ``running`` is protected by root_lock (3.13's ``__state``).
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass

from shm.lock import RunAborted, SpinLock
from shm.ring import DESC_WORDS, Ring

from ..core.delay import ndelay
from ..core.netdevice import (
    NET_XMIT_CN,
    NET_XMIT_DROP,
    NET_XMIT_MASK,
    NET_XMIT_SUCCESS,
    NETDEV_TX_BUSY,
    NETDEV_TX_OK,
    NetDevice,
    NetdevQueue,
    __netif_schedule,
    dev_hard_start_xmit_list,
    netif_xmit_frozen_or_stopped,
    qdisc_avail_bulklimit,
)
from ..core.percpu import this
from ..core.skbuff import SkBuff, skb_from_desc
from ..core.sock import sk_dropped
from ..kstructs import (
    DROP,
    GSO_SKB_MAX,
    NETDEV_QUEUE,
    QDISC,
    QDISC_STATE_DEACTIVATED,
    QDISC_STATE_MISSED,
    QDISC_STATE_SCHED,
    QUEUE_STATE_DRV_XOFF,
    QUEUE_STATE_FROZEN,
    QUEUE_STATE_STACK_XOFF,
    RUNCTL,
    SOFTNET,
    TCQ_F_BUILTIN,
    TCQ_F_CAN_BYPASS,
    TCQ_F_NOLOCK,
    TCQ_F_ONETXQUEUE,
)
from ..stddef import NULL
from ..tracepoints import QDISC_RUN_BEGIN, QDISC_RUN_END

# word indices used on the hot path
_QLEN, _BACKLOG, _RUNNING = QDISC.qlen, QDISC.backlog, QDISC.running
_ENQ, _DEQ, _DROPS = QDISC.enqueued, QDISC.dequeued, QDISC.drops
_STATE = QDISC.state
_QFLAGS = QDISC.flags
_XMIT_OWNER, _TXQ_STATE = NETDEV_QUEUE.xmit_lock_owner, NETDEV_QUEUE.state
_TRANS_START = NETDEV_QUEUE.trans_start
_OWNER_RELOCKS = SOFTNET.owner_relocks
_FROZEN_OR_STOPPED = (
    (1 << QUEUE_STATE_DRV_XOFF) | (1 << QUEUE_STATE_STACK_XOFF) | (1 << QUEUE_STATE_FROZEN)
)


@dataclass(frozen=True)
class Qdisc_ops:
    """struct Qdisc_ops: what a kind does.  A missing op is NULL (None, see
    :mod:`netq.kernel.stddef`); calling it is a bug (mq has no
    enqueue/dequeue of its own, noqueue no enqueue).  The generic code calls
    enqueue and dequeue without a test, as the kernel does; the optional ops
    it tests first are typed ``| None``."""

    id: str
    #: (skb, q) -> NET_XMIT_*; only stores the skb (accounting is generic)
    enqueue: Callable[[SkBuff, Qdisc], int]
    #: (q) -> descriptor tuple or None; only removes it
    dequeue: Callable[[Qdisc], tuple | None]
    peek: Callable[[Qdisc], tuple | None] | None
    #: (q) -> list of descriptors purged
    reset: Callable[[Qdisc], list] | None
    #: TCQ_F_* every instance starts with, in every kernel netq models
    static_flags: int = 0
    #: (q) -> the drop reason of the enqueue that just returned a drop
    #: (default QDISC_DROP)
    drop_reason: Callable[[Qdisc], str] | None = None
    #: TCQ_F_* the kind's static_flags gained in a later kernel: pfifo_fast's
    #: TCQ_F_NOLOCK from 4.16 (:func:`qdisc_static_flags` adds them when the
    #: profile, or a what-if, says so)
    nolock_static_flags: int = 0


def qdisc_static_flags(ops: Qdisc_ops, nolock: bool) -> int:
    """The TCQ_F_* a new qdisc of ``ops`` starts with (qdisc_alloc:
    ``sch->flags = ops->static_flags``, plus what its init sets: pfifo_fast's
    TCQ_F_CAN_BYPASS).  ``nolock``: the kernel's static_flags have
    TCQ_F_NOLOCK for this kind (pfifo_fast from 4.16, commit c5ad119fb6c0;
    netq's profile field ``pfifo_fast_nolock``).  pfifo and fq never have it,
    in any kernel."""
    return ops.static_flags | (ops.nolock_static_flags if nolock else 0)


class Qdisc:
    """A qdisc: shared fields in ``f`` (:data:`netq.kernel.kstructs.QDISC`), band
    FIFOs as :class:`shm.ring.Ring`, and its two locks by id."""

    __slots__ = (
        "band_locks",
        "bands",
        "base",
        "busylock",
        "children",
        "dev",
        "dev_queue",
        "enqueue",
        "f",
        "flows",
        "id",
        "name",
        "ops",
        "root_lock",
        "seqlock",
    )

    def __init__(
        self,
        qid: int,
        name: str,
        ops: Qdisc_ops,
        f: memoryview,
        base: int,
        root_lock: int,
        busylock: int,
    ) -> None:
        self.id = qid
        self.name = name
        self.ops = ops
        self.f = f
        self.base = base
        #: qdisc_dev(q); NULL for noop_qdisc, which never holds an skb
        self.dev: NetDevice = NULL
        #: q->dev_queue: the TX queue of a TCQ_F_ONETXQUEUE qdisc (read only
        #: under that flag), else NULL
        self.dev_queue: NetdevQueue = NULL
        self.root_lock = root_lock
        self.busylock = busylock
        #: TCQ_F_NOLOCK: q->seqlock (the "running" trylock) and each band's
        #: ptr_ring producer_lock
        self.seqlock = -1
        self.band_locks: list[int] = []
        self.bands: list[Ring] = []
        self.children: list[Qdisc] = []
        #: fq: the flow records (FQ_FLOW), one per ring of ``bands``
        self.flows: list[memoryview] = []
        #: q->enqueue: None for noqueue (the __dev_queue_xmit test)
        self.enqueue: Callable[[SkBuff, Qdisc], int] | None = ops.enqueue

    @property
    def flags(self) -> int:
        return self.f[QDISC.flags]

    def __repr__(self) -> str:
        return f"<Qdisc {self.ops.id} {self.name}>"


# -- include/net/sch_generic.h -----------------------------------------------------------
def qdisc_lock(q: Qdisc) -> int:
    """The root lock's id (index into ``this.locks``)."""
    return q.root_lock


def qdisc_is_running(q: Qdisc) -> bool:
    """A racy read, as in the kernel (the busylock heuristic relies on it)."""
    return q.f[_RUNNING] != 0


def qdisc_run_begin(q: Qdisc) -> bool:
    """Become the CPU that runs the qdisc, unless another one is.

    Locked qdisc (called under root_lock): test and set RUNNING.
    TCQ_F_NOLOCK (4.16+, with the MISSED fix of commit a90c57f2cedd): trylock
    q->seqlock; on failure set MISSED (the holder will run again) and try
    once more, so that either we get the lock or the holder sees MISSED.

    On the virtual clock with a slack, a holder ahead in wall time may have
    released and tested MISSED before this CPU set it: when the trylock
    failed only in virtual time (``released_ahead``), this CPU reschedules
    the qdisc as the holder would have.
    """
    f = q.f
    if f[_QFLAGS] & TCQ_F_NOLOCK:
        seq = this.locks[q.seqlock]
        if seq.trylock():
            f[_RUNNING] = this.cpu + 1
            return True
        if not this.net.atomics.test_and_set_bit(q.base + _STATE, QDISC_STATE_MISSED):
            if seq.trylock():
                f[_RUNNING] = this.cpu + 1
                return True
        vt = this.vt
        if vt is not None and vt.released_ahead:
            # Virtual clock with a slack: the holder released later in
            # virtual time but earlier in wall time, and may have tested
            # MISSED before it was set here.  It would have seen it and
            # rescheduled; this CPU reschedules in its place.  (At slack 0
            # the holder waits at the window before its release, so this
            # cannot happen.)
            __netif_schedule(q)
        return False
    if f[_RUNNING]:
        return False
    f[_RUNNING] = this.cpu + 1
    return True


def qdisc_run_end(q: Qdisc) -> None:
    """Stop running the qdisc.  Locked: under root_lock.  NOLOCK: release
    the seqlock, then reschedule if someone MISSED it meanwhile.  On the
    virtual clock the holder first waits at the window, so that every
    trylock earlier in virtual time has failed and set MISSED."""
    f = q.f
    f[_RUNNING] = 0
    if f[_QFLAGS] & TCQ_F_NOLOCK:
        vt = this.vt
        if vt is not None:
            # the MISSED test reads what other CPUs set lock-free: every
            # trylock before this release in virtual time has set it first
            # (they fail on the real seqlock, still held while this waits)
            vt.sync()
        this.locks[q.seqlock].unlock()
        if f[_STATE] >> QDISC_STATE_MISSED & 1:
            __netif_schedule(q)


def nolock_qdisc_is_empty(q: Qdisc) -> bool:
    """No skb waits in the bands or q->gso_skb, and nobody MISSED the seqlock.

    The kernel tests its NON_EMPTY state bits (MISSED, DRAINING); netq also
    looks at the band rings themselves, whose occupancy is exact.  The
    qlen counter is not used: on a NOLOCK qdisc it lags (an enqueuer
    preempted between its produce and its increment), and trusting it
    lets a later skb of the same flow bypass an earlier one."""
    f = q.f
    if f[_STATE] >> QDISC_STATE_MISSED & 1 or f[QDISC.requeue_pending]:
        return False
    for ring in q.bands:
        if ring.used():
            return False
    return True


def _qadd(q: Qdisc, field: int, delta: int) -> None:
    """Add to a qdisc counter: atomically on a NOLOCK qdisc (senders and the
    runner change it concurrently; the kernel keeps per-CPU stats there),
    plainly under root_lock otherwise."""
    if q.f[_QFLAGS] & TCQ_F_NOLOCK:
        this.net.atomics.fetch_add(q.base + field, delta)
    else:
        q.f[field] += delta


def qdisc_bstats_update(q: Qdisc, skb: SkBuff) -> None:
    """bstats: bytes and packets sent.  Called under root_lock."""
    f = q.f
    f[QDISC.bytes] += skb.len
    f[QDISC.packets] += 1


# -- generic enqueue/dequeue with all the accounting -------------------------------------------
def qdisc_enqueue(skb: SkBuff, q: Qdisc) -> int:
    """q->enqueue(skb, q) plus the bookkeeping.  Called under root_lock
    (a NOLOCK qdisc: without it; its counters are then atomic).

    A drop is counted in qstats.drops and in this CPU's drops by reason.
    """
    c = this.net.costs.enqueue_ns
    if c:
        ndelay(c)
    rc = q.ops.enqueue(skb, q)
    f = q.f
    if f[_QFLAGS] & TCQ_F_NOLOCK:
        if rc == NET_XMIT_SUCCESS:
            at = this.net.atomics
            at.fetch_add(q.base + _QLEN, 1)
            at.fetch_add(q.base + _BACKLOG, skb.len)
            at.fetch_add(q.base + _ENQ, 1)
            this.sd[SOFTNET.enqueued] += 1
        else:
            this.net.atomics.fetch_add(q.base + _DROPS, 1)
            kfree_skb(skb, "QDISC_DROP")
        return rc
    if rc == NET_XMIT_SUCCESS:
        f[_QLEN] += 1
        f[_BACKLOG] += skb.len
        f[_ENQ] += 1
        this.sd[SOFTNET.enqueued] += 1
    else:
        f[_DROPS] += 1
        ops = q.ops
        if ops.id == "noop":
            reason = "NOOP_QDISC"
        else:
            reason = ops.drop_reason(q) if ops.drop_reason else "QDISC_DROP"
        # up to 4.7 qdisc_drop frees it here, under the root lock
        kfree_skb(skb, reason, this.net.profile.qdisc_drop_after_unlock)
    return rc


def qdisc_dequeue(q: Qdisc) -> tuple | None:
    """q->dequeue(q) plus the bookkeeping.  Called under root_lock."""
    d = q.ops.dequeue(q)
    if d is not None:
        c = this.net.costs.dequeue_ns
        if c:
            ndelay(c)
        f = q.f
        if f[_QFLAGS] & TCQ_F_NOLOCK:
            at = this.net.atomics
            at.fetch_add(q.base + _QLEN, -1)
            at.fetch_add(q.base + _BACKLOG, -d[4])
        else:
            f[_QLEN] -= 1
            f[_BACKLOG] -= d[4]
        f[_DEQ] += 1  # the runner's only (root_lock or seqlock)
        # bstats are updated at dequeue, as __qdisc_dequeue_head does
        f[QDISC.bytes] += d[4]
        f[QDISC.packets] += 1
    return d


def kfree_skb(skb: SkBuff, reason: str, to_free: bool = False) -> None:
    """Drop an skb in this CPU's context, counted by reason (kfree_skb_reason),
    and pay for freeing it (``free_ns``).  ``to_free``: a locked qdisc's
    enqueue dropped it under the root lock on a 4.8+ kernel, which puts it
    on a to_free list and frees it after the lock (the cost waits in
    ``this.to_free`` for :func:`kfree_skb_list_to_free`)."""
    this.drops[DROP[reason]] += 1
    sk = skb.sk
    if sk is not None:
        sk_dropped(sk, skb.len)
    c = this.net.costs.free_ns
    if c:
        if to_free:
            this.to_free += c
        else:
            ndelay(c)


def kfree_skb_list_to_free() -> None:
    """kfree_skb_list(to_free) after the root lock is released (4.8+)."""
    c = this.to_free
    if c:
        this.to_free = 0
        ndelay(c)


# -- net/sched/sch_generic.c ----------------------------------------------------------------
def dequeue_skb(q: Qdisc, budget: int = 1) -> list[SkBuff] | None:
    """Mirrors dequeue_skb(): the first requeued skb of q->gso_skb, if its TX
    queue can take it (one at a time, as the kernel hands them back); else
    q->dequeue unless this one-queue qdisc's queue is frozen or stopped, and
    then, with bulk dequeue (3.18+) on a TCQ_F_ONETXQUEUE qdisc, more skbs
    up to BQL's available bytes and ``budget`` (try_bulk_dequeue_skb).
    Returns the skbs as a list (the kernel's skb->next chain) or None.
    Called under root_lock (NOLOCK: under the seqlock; q->gso_skb is then
    handled under root_lock, as the kernel does).  try_bulk_dequeue_skb_slow
    (bulk for multi-queue root qdiscs) is not modelled."""
    f = q.f
    if f[QDISC.requeue_pending]:
        if f[_QFLAGS] & TCQ_F_NOLOCK:
            root = this.locks[q.root_lock]
            root.lock()
            try:
                skb = _take_gso_skb(q)
            finally:
                root.unlock()
        else:
            skb = _take_gso_skb(q)
        return None if skb is None else [skb]
    flags = f[_QFLAGS]
    if not (flags & TCQ_F_ONETXQUEUE) or not netif_xmit_frozen_or_stopped(q.dev_queue):
        d = qdisc_dequeue(q)
        if d is not None:
            skb = skb_from_desc(d, this.net)
            if flags & TCQ_F_ONETXQUEUE and this.net.profile.bulk_dequeue:  # qdisc_may_bulk
                return try_bulk_dequeue_skb(q, skb, q.dev_queue, budget)
            return [skb]
    elif flags & TCQ_F_NOLOCK:
        qdisc_maybe_clear_missed(q, q.dev_queue)
    return None


def try_bulk_dequeue_skb(q: Qdisc, skb: SkBuff, txq: NetdevQueue, budget: int) -> list[SkBuff]:
    """Dequeue more skbs behind ``skb`` while BQL has room for their bytes
    (qdisc_avail_bulklimit) and, with the profile's ``bulk_dequeue_budget``
    (the November 2025 fix: 6.19, 6.18 stable), at most ``budget`` more;
    3.18 .. 6.18.0 (4.19 included) count the skbs but only BQL's bytes stop
    the list.  Without BQL the limit is 0: no bulk.

    Where netq differs: a list stops at GSO_SKB_MAX skbs.  What the driver
    does not take goes back to ``q->gso_skb``, an unbounded sk_buff_head in
    the kernel and a ring of GSO_SKB_MAX descriptors in netq's shared
    memory; only a profile without the budget (4.19, whose lists BQL alone
    bounds) can reach the cap, with a BQL limit above GSO_SKB_MAX skbs.
    (Before the cap, such a list that the driver stopped on overflowed the
    ring: the generations preset's 4.19 row crashed.)"""
    skbs = [skb]
    bytelimit = qdisc_avail_bulklimit(txq) - skb.len
    cnt = 0
    net = this.net
    if not net.profile.bulk_dequeue_budget or budget >= GSO_SKB_MAX:
        budget = GSO_SKB_MAX - 1  # the list fits q->gso_skb if it comes back
    while bytelimit > 0:
        d = qdisc_dequeue(q)
        if d is None:
            break
        bytelimit -= d[4]
        skbs.append(skb_from_desc(d, net))
        cnt += 1
        if cnt == budget:
            break
    if cnt:
        f = q.f
        f[QDISC.bulk_lists] += 1
        f[QDISC.bulk_skbs] += cnt + 1
    return skbs


def qdisc_maybe_clear_missed(q: Qdisc, txq: NetdevQueue) -> None:
    """NOLOCK, TX queue stopped: clear MISSED so that qdisc_run_end does not
    reschedule a qdisc that cannot send (netif_tx_wake_queue will), then
    re-test the queue: if it was woken meanwhile, the MISSED we may have just
    cleared was the rescheduled softirq's, so set it again (5.14,
    include/net/sch_generic.h).  Without the re-test a wake can be lost and
    the qdisc keeps its packets with nobody to run it."""
    at = this.net.atomics
    at.clear_bit(q.base + _STATE, QDISC_STATE_MISSED)
    if not netif_xmit_frozen_or_stopped(txq):
        at.set_bit(q.base + _STATE, QDISC_STATE_MISSED)


def _gso_slot(f: memoryview, i: int) -> int:
    """Word index of the i-th requeued skb of q->gso_skb (a circular FIFO)."""
    return QDISC.gso_skb + (f[QDISC.requeue_head] + i) % GSO_SKB_MAX * DESC_WORDS


def gso_skbs(f: memoryview) -> list[tuple]:
    """The descriptors q->gso_skb holds, first to last."""
    out: list[tuple] = []
    for i in range(f[QDISC.requeue_pending]):
        g = _gso_slot(f, i)
        out.append(tuple(f[g : g + DESC_WORDS]))
    return out


def _take_gso_skb(q: Qdisc) -> SkBuff | None:
    f = q.f
    if not f[QDISC.requeue_pending]:
        return None
    g = _gso_slot(f, 0)
    d = tuple(f[g : g + DESC_WORDS])
    txq = q.dev.txqs[d[7]]
    if netif_xmit_frozen_or_stopped(txq):
        if f[_QFLAGS] & TCQ_F_NOLOCK:
            qdisc_maybe_clear_missed(q, txq)
        return None
    f[QDISC.requeue_head] = (f[QDISC.requeue_head] + 1) % GSO_SKB_MAX
    f[QDISC.requeue_pending] -= 1
    _qadd(q, _QLEN, -1)
    _qadd(q, _BACKLOG, -d[4])
    f[_DEQ] += 1
    return skb_from_desc(d, this.net)


def dev_requeue_skb(skbs: list[SkBuff], q: Qdisc) -> int:
    """Append the skbs (one, or the rest of a bulk list the driver stopped
    on) to q->gso_skb and reschedule.  Called under root_lock (NOLOCK: takes
    root_lock for q->gso_skb, as 5.x does).

    Differs from 3.13 in one respect: backlog is restored too (as the kernel
    does since 4.x with qdisc_qstats_backlog_inc), so the byte identity holds.
    """
    f = q.f
    nolock = f[_QFLAGS] & TCQ_F_NOLOCK
    if nolock:
        this.locks[q.root_lock].lock()
    for skb in skbs:
        n = f[QDISC.requeue_pending]
        if n >= GSO_SKB_MAX:
            raise AssertionError(f"{q.name}: q->gso_skb holds {n} skbs (max {GSO_SKB_MAX})")
        g = _gso_slot(f, n)
        f[g : g + DESC_WORDS] = _pack_words(skb)
        f[QDISC.requeue_pending] = n + 1
        f[QDISC.requeues] += 1
        _qadd(q, _QLEN, 1)
        _qadd(q, _BACKLOG, skb.len)
    if nolock:
        this.locks[q.root_lock].unlock()
    this.sd[SOFTNET.requeues] += 1
    __netif_schedule(q)
    return 0


def _pack_words(skb: SkBuff) -> array:
    return array("q", skb.desc())


def sch_direct_xmit(
    skb: SkBuff,
    q: Qdisc,
    dev: NetDevice,
    txq: NetdevQueue,
    root_lock: SpinLock | None,
    more: list[SkBuff] | None = None,
) -> int:
    """Transmit an skb (and ``more``, the rest of a bulk-dequeued list): drop
    root_lock, HARD_TX_LOCK, hand them to the driver, re-take root_lock;
    what the driver did not take (it stopped the queue mid-list, or returned
    NETDEV_TX_BUSY) is requeued.  Called with root_lock held and the qdisc
    running (NOLOCK: ``root_lock`` is None, nothing to drop; the seqlock is
    held).  ``root_lock`` is this CPU's handle of the lock, as the kernel
    passes the spinlock_t pointer.

    Returns 0 if the queue should not be run further, else non-zero.  Up to
    4.15 (profiles 2.6.37, 3.13) it returns qdisc_qlen(q): 0 when the qdisc
    is empty, so the 3.13 bypass path ends the run at once.  From 4.16
    (commit 29b86cdac00a, profile ``sch_direct_xmit_bool``) it returns true
    after any successful send, whatever qlen: the bypass of 4.16 .. 6.18
    then releases busylock and calls __qdisc_run even at qlen 0 (one more
    dequeue that finds nothing).  Both return 0 after a requeue or when the
    TX queue is frozen/stopped.  The re-acquisition of
    root_lock is the moment the busylock commit is about: the qdisc-running
    CPU competing with every enqueuer.  What it finds ahead is counted
    (softnet ``owner_*``).  NETDEV_TX_LOCKED (LLTX trylock collisions) is not
    modelled: netq's LLTX drivers never return it.
    """
    if root_lock is not None:
        root_lock.unlock()
    ret = NETDEV_TX_BUSY
    # HARD_TX_LOCK / HARD_TX_UNLOCK, inlined on this per-packet path
    tf = txq.f
    xl = None if txq.lltx else this.locks[txq.xmit_lock]
    if xl is not None:
        xl.lock()
        tf[_XMIT_OWNER] = this.cpu
    rest = None
    if not tf[_TXQ_STATE] & _FROZEN_OR_STOPPED:
        if more:  # the rest of the list follows (netdev_xmit_more() is false otherwise)
            this.xmit_more = True
        # dev_hard_start_xmit and its txq_trans_update, inlined on this
        # per-packet path
        ret = dev.netdev_ops.ndo_start_xmit(skb, dev)
        if ret == NETDEV_TX_OK and (xl is not None or tf[_XMIT_OWNER] != -1):
            # (holding _xmit_lock, xmit_lock_owner is this CPU: no need to read it)
            tf[_TRANS_START] = skb.tstamp
        if more:
            if ret < NET_XMIT_MASK:  # dev_xmit_complete
                ret, rest = dev_hard_start_xmit_list(more, dev, txq)
            this.xmit_more = False
    if xl is not None:
        tf[_XMIT_OWNER] = -1
        xl.unlock()

    sd = this.sd
    if root_lock is not None:
        sd[_OWNER_RELOCKS] += 1
        if root_lock.lock():
            sd[SOFTNET.owner_relock_contended] += 1
            sd[SOFTNET.owner_ahead] += root_lock.last_ahead
            sd[SOFTNET.owner_wait_ns] += root_lock.last_wait_ns

    if ret < NET_XMIT_MASK:  # dev_xmit_complete
        # <= 4.15: go on while the queue is not empty; 4.16+: go on.  A
        # NOLOCK qdisc exists only from 4.16 (a what-if NOLOCK pfifo_fast
        # under an older profile returns true too: its qlen lags).
        ret = 1 if root_lock is None or this.net.profile.sch_direct_xmit_bool else q.f[_QLEN]
    else:
        sd[SOFTNET.tx_busy] += 1
        # what the driver did not take: the rest of the list, or all of it
        ret = dev_requeue_skb(rest or [skb, *(more or ())], q)
    if ret and tf[_TXQ_STATE] & _FROZEN_OR_STOPPED:  # netif_xmit_frozen_or_stopped
        ret = 0
    return ret


def qdisc_restart(q: Qdisc, budget: int) -> tuple[int, int]:
    """Dequeue an skb (a list with bulk dequeue, at most ``budget`` more) and
    sch_direct_xmit it.  Returns (0 when done: empty, throttled, or the TX
    queue stopped; the skbs dequeued).  Called under root_lock."""
    skbs = dequeue_skb(q, budget)
    if skbs is None:
        return 0, 0
    f = q.f
    n = len(skbs)
    f[QDISC.run_packets] += n
    this.sd[SOFTNET.run_packets] += n
    skb = skbs[0]
    dev = q.dev
    txq = dev.txqs[skb.queue_mapping]
    root_lock = None if f[_QFLAGS] & TCQ_F_NOLOCK else this.locks[q.root_lock]
    if n == 1:
        return sch_direct_xmit(skb, q, dev, txq, root_lock), 1
    return sch_direct_xmit(skb, q, dev, txq, root_lock, skbs[1:]), n


def __qdisc_run(q: Qdisc) -> None:
    """Run the qdisc for at most dev_tx_weight packets, then reschedule it on
    this CPU (NET_TX softirq).  3.13: ends with qdisc_run_end().  The kernel
    also yields on need_resched(); the emulated CPU has no scheduler tick
    inside a qdisc run, so only the quota applies.  Called under root_lock
    with the qdisc running."""
    quota = this.net.profile.dev_tx_weight
    q.f[QDISC.runs] += 1
    sd = this.sd
    sd[SOFTNET.qdisc_runs] += 1
    tr = this.trace
    if tr is not None:
        tr.emit(QDISC_RUN_BEGIN, q.id)
        weight = quota
    while True:
        more, packets = qdisc_restart(q, quota)
        if not more:
            if tr is not None:
                quota -= packets
            break
        quota -= packets
        if quota <= 0:
            sd[SOFTNET.quota_exhausted] += 1
            if q.f[_QFLAGS] & TCQ_F_NOLOCK:
                # 5.14+: qdisc_run_end() will see MISSED and reschedule
                this.net.atomics.set_bit(q.base + _STATE, QDISC_STATE_MISSED)
            else:
                __netif_schedule(q)
            break
    if tr is not None:
        tr.emit(QDISC_RUN_END, q.id, weight - quota)
    qdisc_run_end(q)


def qdisc_run(q: Qdisc) -> None:
    """include/net/pkt_sched.h.  Called under root_lock."""
    if qdisc_run_begin(q):
        __qdisc_run(q)


# -- noop and noqueue (builtin) ----------------------------------------------------------------
def noop_enqueue(skb: SkBuff, q: Qdisc) -> int:
    """The qdisc of a deactivated queue: drops everything (NET_XMIT_CN)."""
    return NET_XMIT_CN


def noop_dequeue(q: Qdisc) -> None:
    return None


noop_qdisc_ops = Qdisc_ops("noop", noop_enqueue, noop_dequeue, noop_dequeue, lambda q: [])
#: noqueue has no enqueue at all: __dev_queue_xmit takes its noqueue branch.
noqueue_qdisc_ops = Qdisc_ops("noqueue", NULL, noop_dequeue, noop_dequeue, lambda q: [])


# -- pfifo_fast ---------------------------------------------------------------------------------
TC_PRIO_MAX = 15
prio2band = (1, 2, 2, 2, 1, 2, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1)
#: bitmap2band[b]: the first non-empty band for band bitmap b
bitmap2band = (-1, 0, 1, 0, 2, 0, 1, 0)
_BMAP = QDISC.band_bitmap


def pfifo_fast_enqueue(skb: SkBuff, q: Qdisc) -> int:
    """Tail-enqueue on band prio2band[skb->priority & TC_PRIO_MAX] while
    qlen < limit (q->limit is dev->tx_queue_len), else qdisc_drop.

    TCQ_F_NOLOCK (4.16+, commit c5ad119fb6c0): each band is a ptr_ring
    (skb_array) of dev->tx_queue_len entries, allocated in pfifo_fast_init,
    whose producer side has its own spinlock; no root_lock.  There is no
    total limit: skb_array_produce fails only when the skb's own band is
    full, so the qdisc can hold 3 x tx_queue_len skbs.  netq's band ring
    holds ``q->limit`` (= tx_queue_len) and its occupancy, read under the
    band's producer lock, is the ptr_ring's "full" test."""
    f = q.f
    if f[_QFLAGS] & TCQ_F_NOLOCK:
        band = prio2band[skb.priority & TC_PRIO_MAX]
        ring = q.bands[band]
        lk = this.locks[q.band_locks[band]]
        lk.lock()
        ok = ring.used() < f[QDISC.limit] and ring.produce_from(skb)
        lk.unlock()
        return NET_XMIT_SUCCESS if ok else NET_XMIT_DROP
    if f[_QLEN] < f[QDISC.limit]:
        band = prio2band[skb.priority & TC_PRIO_MAX]
        q.bands[band].produce_from(skb)
        f[_BMAP] |= 1 << band
        return NET_XMIT_SUCCESS
    return NET_XMIT_DROP


def pfifo_fast_dequeue(q: Qdisc) -> tuple | None:
    f = q.f
    if f[_QFLAGS] & TCQ_F_NOLOCK:
        return _pfifo_fast_dequeue_nolock(q)
    band = bitmap2band[f[_BMAP]]
    if band < 0:
        return None
    ring = q.bands[band]
    d = ring.consume()
    if not ring.used():
        f[_BMAP] &= ~(1 << band)
    return d


def _pfifo_fast_dequeue_nolock(q: Qdisc) -> tuple | None:
    """5.14+ pfifo_fast_dequeue: the first non-empty band; if all are empty
    and MISSED is set, clear it and look once more (an enqueue may have
    raced with us).  Called with the seqlock held (the only consumer)."""
    for need_retry in (True, False):
        for ring in q.bands:
            if ring.used():
                return ring.consume()
        if not need_retry or not q.f[_STATE] >> QDISC_STATE_MISSED & 1:
            return None
        this.net.atomics.clear_bit(q.base + _STATE, QDISC_STATE_MISSED)
    return None


def pfifo_fast_peek(q: Qdisc) -> tuple | None:
    """The skb dequeue would return next, left in place.  Scans the band
    rings (not band_bitmap, which a TCQ_F_NOLOCK qdisc does not keep)."""
    for ring in q.bands:
        if len(ring):
            return tuple(int(x) for x in ring.peek_batch(1)[0])
    return None


def fifo_reset(q: Qdisc) -> list:
    """Purge every band; returns the purged descriptors (qdisc_reset)."""
    out: list[tuple] = []
    for ring in q.bands:
        out.extend(tuple(int(x) for x in row) for row in ring.consume_batch(ring.size))
    q.f[_BMAP] = 0
    return out


#: pfifo_fast: TCQ_F_CAN_BYPASS (set by pfifo_fast_init) in every kernel;
#: TCQ_F_NOLOCK in its static_flags from 4.16 (TCQ_F_CPUSTATS, the per-CPU
#: stats that come with it, are netq's atomic counters)
pfifo_fast_ops = Qdisc_ops(
    "pfifo_fast",
    pfifo_fast_enqueue,
    pfifo_fast_dequeue,
    pfifo_fast_peek,
    fifo_reset,
    static_flags=TCQ_F_CAN_BYPASS,
    nolock_static_flags=TCQ_F_NOLOCK,
)


def qdisc_reset(q: Qdisc) -> list:
    """Purge the qdisc (and q->gso_skb).  Called under root_lock (NOLOCK:
    and the seqlock); returns the purged descriptors so the caller can
    account them (QDISC_RESET).  qlen and backlog are lowered by what was
    purged (on a NOLOCK qdisc a racing sender may add meanwhile)."""
    f = q.f
    purged = q.ops.reset(q) if q.ops.reset else []
    if f[QDISC.requeue_pending]:
        purged.extend(gso_skbs(f))
        f[QDISC.requeue_pending] = 0
        f[QDISC.requeue_head] = 0
    f[QDISC.purged] += len(purged)
    _qadd(q, _QLEN, -len(purged))
    _qadd(q, _BACKLOG, -sum(d[4] for d in purged))
    return purged


def _reset_locked(q: Qdisc, before: Callable[[], None] | None = None) -> list:
    """Take what qdisc_reset needs (seqlock for NOLOCK, then root_lock), run
    ``before`` (e.g. the DEACTIVATED mark) and reset."""
    locks = this.locks
    nolock = q.f[_QFLAGS] & TCQ_F_NOLOCK
    if nolock:
        locks[q.seqlock].lock()
    root = locks[q.root_lock]
    root.lock()
    try:
        if before is not None:
            before()
        return qdisc_reset(q)
    finally:
        root.unlock()
        if nolock:
            locks[q.seqlock].unlock()


def qdisc_reset_purge(q: Qdisc) -> int:
    """qdisc_reset() under root_lock, with every purged skb freed in this
    (control) context: counted as QDISC_RESET and charged to its socket."""
    purged = _reset_locked(q)
    net = this.net
    for d in purged:
        this.drops[DROP["QDISC_RESET"]] += 1
        if d[2] >= 0:
            sk_dropped(net.socks[d[2]], d[4])
    return len(purged)


def dev_deactivate_queue(txq: NetdevQueue, qdisc_default: Qdisc) -> int:
    """Point txq->qdisc at noop_qdisc, mark the old one DEACTIVATED (unless
    builtin) and purge it.  Returns the skbs purged.  Control context."""
    net = this.net
    q = net.qdiscs[txq.f[NETDEV_QUEUE.qdisc]]

    def deactivate() -> None:
        if not q.f[QDISC.flags] & TCQ_F_BUILTIN:
            net.atomics.set_bit(q.base + _STATE, QDISC_STATE_DEACTIVATED)
        txq.f[NETDEV_QUEUE.qdisc] = qdisc_default.id  # rcu_assign_pointer

    purged = _reset_locked(q, deactivate)
    for d in purged:
        this.drops[DROP["QDISC_RESET"]] += 1
        if d[2] >= 0:
            sk_dropped(net.socks[d[2]], d[4])
    return len(purged)


def some_qdisc_is_busy(dev: NetDevice) -> bool:
    """A qdisc of dev is still running or scheduled (3.13 checks RUNNING and
    SCHED under the root lock; a racy read is enough to wait on)."""
    net = this.net
    for txq in dev.txqs:
        q = net.qdiscs[txq.f[NETDEV_QUEUE.qdisc_sleeping]]
        if q.f[_RUNNING] or q.f[_STATE] >> QDISC_STATE_SCHED & 1:
            return True
    return False


def dev_deactivate(dev: NetDevice, wait_s: float = 2.0) -> int:
    """Take the device's qdiscs out of service (as ``ip link set DEV down``
    does via dev_deactivate_many): every TX queue gets noop_qdisc, the old
    qdiscs are marked DEACTIVATED and purged, then wait for running qdiscs
    to finish (some_qdisc_is_busy; a scheduled one is dropped from the
    softirq by net_tx_action when it sees DEACTIVATED).  Control context.
    Returns the skbs purged.

    On the virtual clock the wait lets the other CPUs' clocks run: the
    control process sleeps through it (holding GVT back would stop the very
    runs it waits for) and resumes at GVT (VirtualCpu.wake_idle): nothing
    it waits for has a virtual time of its own; an aborted run ends the wait
    with RunAborted."""
    net = this.net
    n = sum(dev_deactivate_queue(txq, net.qdiscs[0]) for txq in dev.txqs)
    if not some_qdisc_is_busy(dev):
        return n
    vt = this.vt
    if vt is not None:
        vt.sleep()
    deadline = time.monotonic() + wait_s
    while some_qdisc_is_busy(dev) and time.monotonic() < deadline:
        if net.runctl[RUNCTL.abort]:
            raise RunAborted(f"{dev.name}: the run was aborted in dev_deactivate")
        time.sleep(0.0005)  # yield()
    if vt is not None:
        vt.wake_idle()
    return n


def dev_activate(dev: NetDevice) -> None:
    """Give every TX queue its qdisc_sleeping back and clear DEACTIVATED
    (transition_one_qdisc).  Control context."""
    net = this.net
    for txq in dev.txqs:
        q = net.qdiscs[txq.f[NETDEV_QUEUE.qdisc_sleeping]]
        if not q.f[QDISC.flags] & TCQ_F_BUILTIN:
            net.atomics.clear_bit(q.base + _STATE, QDISC_STATE_DEACTIVATED)
        txq.f[NETDEV_QUEUE.qdisc] = q.id


def qdisc_state_deactivated(q: Qdisc) -> bool:
    return bool(q.f[_STATE] >> QDISC_STATE_DEACTIVATED & 1)


QDISC_OPS: dict[str, Qdisc_ops] = {}


def register_qdisc(ops: Qdisc_ops) -> Qdisc_ops:
    """register_qdisc(): make a kind known by its id."""
    QDISC_OPS[ops.id] = ops
    return ops


for _ops in (noop_qdisc_ops, noqueue_qdisc_ops, pfifo_fast_ops):
    register_qdisc(_ops)


# dev.c and sch_generic.c call each other (as in the kernel); bound last so
# that either module may be imported first.
