"""The transmit half of net/core/dev.c: dev_queue_xmit and what it calls.

The structure is the seed's (3.13): ``__dev_queue_xmit`` picks a TX queue,
then either hands the skb to the queue's qdisc (``__dev_xmit_skb``) or, for a
noqueue device, calls the driver directly under the xmit_recursion and
xmit_lock_owner guards.  Each function says where later kernels differ.

Per-CPU state (``this.sd``: xmit_recursion, output_queue, counters) is this
CPU's only; the output_queue is also written by the NIC's completion path
"on" this CPU, so both sides take this CPU's softnet semaphore
(local_irq_save).  Locks are taken through ``this.locks`` (handles acting as
this CPU).
"""

from __future__ import annotations

import os
import struct
from typing import TYPE_CHECKING

from shm.layout import WORD
from shm.lock import RunAborted

from ..kstructs import (
    DEFER_NODE,
    IFF_UP,
    MSG_ASKS_TO_QUEUE,
    MSG_DEAD_LOOP,
    MSG_PRINTED,
    MSG_SUPPRESSED,
    NETDEV,
    NETDEV_QUEUE,
    QDISC,
    QDISC_STATE_DEACTIVATED,
    QDISC_STATE_SCHED,
    RUNCTL,
    SOFTNET,
    TCQ_F_CAN_BYPASS,
    TCQ_F_NOLOCK,
)
from ..sched.sch_generic import (
    Qdisc,
    __qdisc_run,
    dev_activate,
    dev_deactivate,
    kfree_skb,
    kfree_skb_list_to_free,
    nolock_qdisc_is_empty,
    qdisc_bstats_update,
    qdisc_enqueue,
    qdisc_reset_purge,
    qdisc_run,
    qdisc_run_begin,
    qdisc_run_end,
    sch_direct_xmit,
)
from ..tracepoints import DEFER_SPLICE, NET_DEV_QUEUE, QDISC_BYPASS, RECURSION_CUT
from .delay import ndelay
from .flow_dissector import netdev_pick_tx
from .netdevice import (
    ENETDOWN,
    HARD_TX_LOCK,
    HARD_TX_UNLOCK,
    NET_XMIT_DROP,
    NET_XMIT_MASK,
    NET_XMIT_SUCCESS,
    NetDevice,
    NetdevQueue,
    __netif_reschedule,
    dev_hard_start_xmit,
    dev_xmit_complete,
    netif_xmit_stopped,
)
from .percpu import this
from .skbuff import SkBuff, skb_from_desc
from .timekeeping import ktime_get_ns

if TYPE_CHECKING:
    from ..net_namespace import Net

_DEACT = 1 << QDISC_STATE_DEACTIVATED
_QSTATE, _QFLAGS, _QLEN = QDISC.state, QDISC.flags, QDISC.qlen
_RUNNING, _QBYTES, _QPACKETS, _QBYPASS = QDISC.running, QDISC.bytes, QDISC.packets, QDISC.bypass
_BYPASS = SOFTNET.bypass
_REC = SOFTNET.xmit_recursion
_WMEM_SLEEPING = SOFTNET.wmem_sleeping
_TXQ_QDISC = NETDEV_QUEUE.qdisc
_OWNER = NETDEV_QUEUE.xmit_lock_owner

#: net_ratelimit(): net_msg_burst messages per net_msg_cost (5 * HZ)
NET_MSG_BURST = 10
NET_MSG_COST_NS = 5_000_000_000


def __dev_queue_xmit(skb: SkBuff, accel_priv: object | None = None) -> int:
    """Pick a TX queue, then the qdisc path or the noqueue branch.

    rcu_read_lock_bh() has no counterpart (the emulated CPU is never
    preempted by its own softirq); skb_update_prio() (netprio cgroup) is not
    modelled; the skb's priority is set by its socket.
    """
    tr = this.trace
    if tr is not None:  # net:net_dev_queue
        sk = skb.sk
        tr.emit(NET_DEV_QUEUE, sk.id if sk is not None else -1, skb.sk_seq)
    dev = skb.dev
    txq = netdev_pick_tx(dev, skb)
    q = this.net.qdiscs[txq.f[_TXQ_QDISC]]  # rcu_dereference_bh(txq->qdisc)
    if q.enqueue is not None:
        return __dev_xmit_skb(skb, q, dev, txq)

    # The device has no queue. Common case for software devices:
    # loopback, all the sorts of tunnels...
    if dev.f[NETDEV.flags] & IFF_UP:
        cpu = this.cpu
        if txq.f[_OWNER] != cpu:
            sd = this.sd
            depth = sd[_REC]
            if depth > this.net.profile.recursion_limit:
                sd[SOFTNET.xmit_recursion_cut] = depth
                return _recursion_alert(skb, dev, "XMIT_RECURSION")
            HARD_TX_LOCK(dev, txq, cpu)
            if not netif_xmit_stopped(txq):
                if depth > sd[SOFTNET.xmit_recursion_max]:
                    sd[SOFTNET.xmit_recursion_max] = depth
                sd[_REC] = depth + 1
                rc = dev_hard_start_xmit(skb, dev, txq)
                sd[_REC] -= 1
                if dev_xmit_complete(rc):
                    HARD_TX_UNLOCK(dev, txq)
                    return rc
            HARD_TX_UNLOCK(dev, txq)
            net_crit_ratelimited(MSG_ASKS_TO_QUEUE, dev)
            kfree_skb(skb, "VIRT_QUEUE_STOPPED")
            return -ENETDOWN
        # Recursion is detected! It is possible, unfortunately
        return _recursion_alert(skb, dev, "DEAD_LOOP_OWNER")
    kfree_skb(skb, "DEV_DOWN")
    return -ENETDOWN


#: dev_queue_xmit(skb): queue an skb for transmission on skb->dev.  3.13's
#: net/core/dev.c returns ``__dev_queue_xmit(skb, NULL)`` (a static inline
#: of netdevice.h from 4.x); here it is that same function, accel_priv
#: defaulting to NULL, so that every packet does not pay a second call.
dev_queue_xmit = __dev_queue_xmit


def _recursion_alert(skb: SkBuff, dev: NetDevice, reason: str) -> int:
    """The ``recursion_alert:`` label: message, drop, -ENETDOWN."""
    if this.trace is not None:
        this.trace.emit(RECURSION_CUT, dev.index, this.sd[_REC])
    net_crit_ratelimited(MSG_DEAD_LOOP, dev)
    kfree_skb(skb, reason)
    return -ENETDOWN


def __dev_xmit_skb(skb: SkBuff, q: Qdisc, dev: NetDevice, txq: NetdevQueue) -> int:
    """Hand an skb to its qdisc, in the kernel's branch order.

    1. A TCQ_F_NOLOCK qdisc (pfifo_fast from 4.16: the default qdisc and
       every mq child of 4.19, 6.18 and 6.19) goes to
       _dev_xmit_skb_nolock, before any strategy's code: busylock (6.18)
       and the defer_list (6.19) only ever meet locked qdiscs (fq, pfifo,
       pfifo_fast before 4.16), as in the kernel's __dev_xmit_skb.  A host
       may be mixed: NOLOCK mq children beside an fq root on another
       device each take their own branch.
    2. Strategy ``defer`` (6.19): _dev_xmit_skb_defer.
    3. Else, under root_lock: drop if deactivated; bypass an empty
       work-conserving qdisc that nobody runs; else enqueue and run it if
       nobody does.  Strategy ``busylock`` (2.6.36 .. 6.18): a sender that
       finds the qdisc running first serialises on q->busylock, so the
       running CPU competes with at most one enqueuer for root_lock;
       strategy ``rootlock`` (before 2.6.36): every sender goes straight
       for root_lock.  The bypass releases busylock and runs __qdisc_run
       when sch_direct_xmit says go on: at qlen > 0 only up to 4.15, after
       any successful send from 4.16 (profile ``sch_direct_xmit_bool``).

    6.x differences not modelled: the TC_RECLASSIFY_LOOP owner test, the
    qdisc_run_end placement (netq's __qdisc_run ends the run, as 3.13's).
    """
    f = q.f
    flags = f[_QFLAGS]  # q->flags: set at qdisc creation, never changed in a run
    if flags & TCQ_F_NOLOCK:
        return _dev_xmit_skb_nolock(skb, q, dev, txq)
    net = this.net
    if net.defer:
        return _dev_xmit_skb_defer(skb, q, dev, txq)
    locks = this.locks
    root = locks[q.root_lock]
    contended = False
    if net.busylock:
        contended = f[_RUNNING] != 0  # qdisc_is_running (racy, as in the kernel), inlined
        if contended:
            locks[q.busylock].lock()
            this.sd[SOFTNET.busylock_taken] += 1
    root.lock()
    if f[_QSTATE] & _DEACT:
        kfree_skb(skb, "QDISC_DEACTIVATED")
        rc = NET_XMIT_DROP
    elif flags & TCQ_F_CAN_BYPASS and not f[_QLEN] and not f[_RUNNING]:
        # This is a work-conserving queue; there are no old skbs waiting to
        # be sent out; and the qdisc is not running - xmit the skb directly.
        # qdisc_run_begin (the locked qdisc's test-and-set of RUNNING) and
        # qdisc_bstats_update, inlined on this per-packet path
        f[_RUNNING] = this.cpu + 1
        f[_QBYTES] += skb.len
        f[_QPACKETS] += 1
        f[_QBYPASS] += 1
        this.sd[_BYPASS] += 1
        if this.trace is not None:
            this.trace.emit(QDISC_BYPASS, q.id)
        if sch_direct_xmit(skb, q, dev, txq, root):
            if contended:
                locks[q.busylock].unlock()
                contended = False
            __qdisc_run(q)
        else:
            f[_RUNNING] = 0  # qdisc_run_end of a locked qdisc, inlined
        rc = NET_XMIT_SUCCESS
    else:
        rc = qdisc_enqueue(skb, q) & NET_XMIT_MASK
        if qdisc_run_begin(q):
            if contended:
                locks[q.busylock].unlock()
                contended = False
            __qdisc_run(q)
    root.unlock()
    if this.to_free:  # 4.8+: what the enqueue dropped, freed after the lock
        kfree_skb_list_to_free()
    if contended:
        locks[q.busylock].unlock()
    return rc


def _dev_xmit_skb_nolock(skb: SkBuff, q: Qdisc, dev: NetDevice, txq: NetdevQueue) -> int:
    """The TCQ_F_NOLOCK branch of __dev_xmit_skb (4.16+): no root_lock.

    4.19: enqueue, then qdisc_run() (whose run_begin is a trylock of the
    seqlock).  5.14+ (profile with nolock_bypass): an empty qdisc that we
    manage to start running takes the bypass, re-testing emptiness under
    the seqlock (commit ba27b4cdaaa6).  The DEACTIVATED test is 4.19's; 6.x
    relies on synchronize_net() in dev_deactivate instead.
    """
    f = q.f
    if f[_QSTATE] & _DEACT:
        kfree_skb(skb, "QDISC_DEACTIVATED")
        return NET_XMIT_DROP
    if f[_QFLAGS] & TCQ_F_CAN_BYPASS and nolock_qdisc_is_empty(q) and qdisc_run_begin(q):
        if not nolock_qdisc_is_empty(q):
            rc = qdisc_enqueue(skb, q) & NET_XMIT_MASK
            __qdisc_run(q)  # ends with qdisc_run_end
            return rc
        f[QDISC.bytes] += skb.len  # qdisc_bstats_cpu_update (the seqlock is ours)
        f[QDISC.packets] += 1
        f[QDISC.bypass] += 1
        this.sd[SOFTNET.bypass] += 1
        if this.trace is not None:
            this.trace.emit(QDISC_BYPASS, q.id)
        if sch_direct_xmit(skb, q, dev, txq, None) and not nolock_qdisc_is_empty(q):
            __qdisc_run(q)
        else:
            qdisc_run_end(q)
        return NET_XMIT_SUCCESS
    rc = qdisc_enqueue(skb, q) & NET_XMIT_MASK
    qdisc_run(q)
    return rc


# -- 6.19: the lock-free defer_list (commit 100dfa74cad9) ---------------------------------
_NODE_W = DEFER_NODE.words
#: bytes per node: node ``n``'s descriptor (DEFER_NODE.desc, word 0) starts
#: ``n * _NODE_BYTES`` bytes after net.defer_off (the section's byte offset)
_NODE_BYTES = DEFER_NODE.words * WORD
assert DEFER_NODE.desc == 0
_N_NEXT, _N_STATE = DEFER_NODE.next, DEFER_NODE.state
_DFIRST, _DCOUNT, _DLAST = QDISC.defer_first, QDISC.defer_count, QDISC.defer_last_cpu
_DSPLICES, _DSPLICED = QDISC.defer_splices, QDISC.defer_spliced
_PACK8 = struct.Struct("<8q")


def _defer_node_alloc(net: Net) -> int:
    """A free node of this CPU's pool (index).  Nodes are freed by whoever
    splices the list they are on; if all are on lists, wait for a splice."""
    k = net.defer_nodes_per_cpu
    base = this.cpu * k
    nodes = net.defer_nodes
    cur = net.defer_cursor
    spins = 0
    while True:
        for i in range(k):
            idx = base + (cur + i) % k
            if not nodes[idx * _NODE_W + _N_STATE]:
                net.defer_cursor = (cur + i + 1) % k
                return idx
        spins += 1
        os.sched_yield()
        if spins & 63 == 0 and net.runctl[RUNCTL.abort]:
            raise RunAborted("run aborted waiting for a defer_list node")


def _dev_xmit_skb_defer(skb: SkBuff, q: Qdisc, dev: NetDevice, txq: NetdevQueue) -> int:
    """__dev_xmit_skb of 6.19 for a locked qdisc: push the skb on
    q->defer_list with a compare-and-swap (llist_add open-coded, bounded by
    defer_count against net.core.qdisc_max_burst: a push that finds more
    skbs on the list is dropped as QDISC_BURST_DROP); only the sender that found the list
    empty takes root_lock, takes the whole list (llist_del_all), restores
    arrival order (llist_reverse_order), then bypasses a lone skb into an
    idle empty qdisc or enqueues them all and runs the qdisc.  Everyone
    else returns at once: the CPU owning root_lock sends for them.

    The limit is the January 2026 fix of 100dfa74cad9 ("net: add
    net.core.qdisc_max_burst", in 6.19): 100dfa74cad9 itself compared
    defer_count with q->limit and dropped as QDISC_DROP, which dropped
    everything on qdiscs whose q->limit is 0 (htb).

    The nodes live in shared memory (each CPU allocates from its own pool);
    the cmpxchg/xchg are real atomics with the compiled helper, hashed
    semaphores without it (see the setup's atomics backend).
    """
    net = this.net
    at = net.atomics
    f = q.f
    base = q.base
    nodes = net.defer_nodes
    cur = net.defer_cursor
    node = this.cpu * net.defer_nodes_per_cpu + cur
    if nodes[node * _NODE_W + _N_STATE]:
        node = _defer_node_alloc(net)  # the next node is still on a list: look further
    else:
        net.defer_cursor = (cur + 1) % net.defer_nodes_per_cpu
    vt = this.vt
    if vt is not None:  # an atomic on shared state: the virtual-time window first
        vt.window()
        vt.charge(net.costs.atomic_ns)
    last = f[_DLAST]
    if last != this.cpu:
        # the defer_list head's cache line comes from another CPU
        f[_DLAST] = this.cpu
        ndelay(net.lock_policy.bounce_cost(last, this.cpu))
    nb = node * _NODE_W
    _PACK8.pack_into(net.region.mm, net.defer_off + node * _NODE_BYTES, *skb.desc())
    nodes[nb + _N_STATE] = 1
    first = f[_DFIRST]
    defer_count = 0
    while True:
        if first and not defer_count:
            defer_count = at.fetch_add(base + _DCOUNT, 1) + 1
            if defer_count > net.cfg.qdisc_max_burst:
                nodes[nb + _N_STATE] = 0
                kfree_skb(skb, "QDISC_BURST_DROP")
                return NET_XMIT_DROP
        nodes[nb + _N_NEXT] = first
        prev = at.cmpxchg(base + _DFIRST, first, node + 1)
        if prev == first:
            break
        first = prev
    if first:
        # the CPU that queued the first skb will process the whole list
        return NET_XMIT_SUCCESS

    root = this.locks[q.root_lock]
    root.lock()
    ll = at.xchg(base + _DFIRST, 0)  # llist_del_all
    f[_DCOUNT] = 0  # not atomic with the del_all: the list may exceed the limit a little
    batch = []
    mm, off, node_bytes = net.region.mm, net.defer_off, _NODE_BYTES
    while ll:
        i = ll - 1
        nb = i * _NODE_W
        # our own skb is still at hand (the kernel's list links the skbs
        # themselves); the others come back from their shared-memory nodes
        batch.append(
            skb if i == node else skb_from_desc(_PACK8.unpack_from(mm, off + i * node_bytes), net)
        )
        ll = nodes[nb + _N_NEXT]
        nodes[nb + _N_STATE] = 0
    batch.reverse()  # llist_reverse_order: arrival order
    f[_DSPLICES] += 1
    f[_DSPLICED] += len(batch)
    if this.trace is not None:
        this.trace.emit(DEFER_SPLICE, q.id, len(batch))
    for s in batch:
        s.dev = dev
    if f[_QSTATE] & _DEACT:
        for s in batch:
            kfree_skb(s, "QDISC_DEACTIVATED")
        rc = NET_XMIT_DROP
    elif f[_QFLAGS] & TCQ_F_CAN_BYPASS and not f[_QLEN] and len(batch) == 1 and qdisc_run_begin(q):
        s = batch[0]
        qdisc_bstats_update(q, s)
        f[QDISC.bypass] += 1
        this.sd[SOFTNET.bypass] += 1
        if this.trace is not None:
            this.trace.emit(QDISC_BYPASS, q.id)
        if sch_direct_xmit(s, q, dev, dev.txqs[s.queue_mapping], root):
            __qdisc_run(q)
        else:
            qdisc_run_end(q)
        rc = NET_XMIT_SUCCESS
    else:
        rc = NET_XMIT_SUCCESS
        for s in batch:
            rc = qdisc_enqueue(s, q) & NET_XMIT_MASK
        qdisc_run(q)
        if len(batch) != 1:
            rc = NET_XMIT_SUCCESS
    root.unlock()
    if this.to_free:
        kfree_skb_list_to_free()
    return rc


def net_tx_action() -> bool:
    """The NET_TX softirq: run every qdisc on this CPU's output_queue.

    One pass; __do_softirq (:mod:`netq.kernel.softirq`) calls it again
    while it is raised again, up to the profile's restart limits.

    Takes the whole list (with irqs off), then for each locked qdisc: up to
    4.15 (3.13, the seed) trylock its root_lock, on success clear SCHED and
    qdisc_run(), on failure put it back (unless deactivated); from 4.16 take
    root_lock (spin_lock), then clear SCHED and qdisc_run().  A NOLOCK qdisc
    is run directly (its seqlock trylock serialises).  The completion queue
    (freeing skbs) has no counterpart.  Returns whether there was work.
    """
    sd = this.sd
    head = sd[SOFTNET.oq_head]
    if head == sd[SOFTNET.oq_tail]:
        return False
    net = this.net
    sem = net.softnet_sems[this.cpu]
    sem.acquire()
    head = sd[SOFTNET.oq_head]
    tail = sd[SOFTNET.oq_tail]
    oq = net.output_queue[this.cpu]
    n = len(oq)
    batch = [oq[i % n] for i in range(head, tail)]
    sd[SOFTNET.oq_head] = tail
    sem.release()
    sd[SOFTNET.net_tx_action] += 1
    locks = this.locks
    atomics = net.atomics
    trylock = net.profile.tx_action_trylock
    for qid in batch:
        q = net.qdiscs[qid]
        if q.f[_QFLAGS] & TCQ_F_NOLOCK:
            # no root_lock: qdisc_run's trylock of the seqlock serialises
            atomics.clear_bit(q.base + _QSTATE, QDISC_STATE_SCHED)
            if not q.f[_QSTATE] & _DEACT:
                qdisc_run(q)
            continue
        root = locks[q.root_lock]
        if not trylock:
            root.lock()
        elif not root.trylock():
            if not q.f[_QSTATE] & _DEACT:
                sd[SOFTNET.resched_trylock] += 1
                __netif_reschedule(q)
            else:
                atomics.clear_bit(q.base + _QSTATE, QDISC_STATE_SCHED)
            continue
        atomics.clear_bit(q.base + _QSTATE, QDISC_STATE_SCHED)
        qdisc_run(q)
        root.unlock()
    return True


# -- kernel messages ------------------------------------------------------------------------
def net_ratelimit() -> bool:
    """net_ratelimit(): at most NET_MSG_BURST messages per 5 s.  The kernel's
    state is global under a spinlock; netq keeps it per CPU (messages are
    counted per CPU anyway), so a run may print up to burst x CPUs."""
    rl = this.ratelimit
    now = ktime_get_ns()
    if now - rl[0] >= NET_MSG_COST_NS:
        rl[0] = now
        rl[1] = 0
    if rl[1] < NET_MSG_BURST:
        rl[1] += 1
        return True
    return False


def net_crit_ratelimited(msg: int, dev: NetDevice) -> None:
    """Count a kernel message for ``dev``: printed or suppressed."""
    col = MSG_PRINTED if net_ratelimit() else MSG_SUPPRESSED
    this.msgs[(dev.index * 2 + msg) * 2 + col] += 1


# -- configuration (control context, under rtnl) -----------------------------------------
def netif_set_real_num_tx_queues(dev: NetDevice, txq: int) -> None:
    """ethtool -L: change the number of TX queues in use.  Shrinking purges
    the qdiscs of the queues that go away (qdisc_reset_all_tx_gt); sockets
    that cached such a queue re-pick (__netdev_pick_tx's range check)."""
    if not 1 <= txq <= dev.f[NETDEV.num_tx_queues]:
        raise ValueError(f"{dev.name}: real_num_tx_queues must be 1..{dev.f[NETDEV.num_tx_queues]}")
    if txq < dev.f[NETDEV.real_num_tx_queues]:
        net = this.net
        seen = set()
        for q_txq in dev.txqs[txq:]:
            q = net.qdiscs[q_txq.f[NETDEV_QUEUE.qdisc_sleeping]]
            if q.id not in seen:  # a shared root qdisc is reset once (and wholly)
                seen.add(q.id)
                qdisc_reset_purge(q)
    dev.f[NETDEV.real_num_tx_queues] = txq


def dev_close(dev: NetDevice) -> int:
    """ip link set DEV down: dev_deactivate, then clear IFF_UP.  Returns the
    skbs purged from its qdiscs."""
    n = dev_deactivate(dev)
    dev.f[NETDEV.flags] &= ~IFF_UP
    return n


def dev_open(dev: NetDevice) -> None:
    """ip link set DEV up: set IFF_UP, then dev_activate."""
    dev.f[NETDEV.flags] |= IFF_UP
    dev_activate(dev)
