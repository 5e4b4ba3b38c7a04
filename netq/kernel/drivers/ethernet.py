"""The driver of a physical device: ndo_start_xmit writes a TX descriptor.

Modelled on tg3_start_xmit / ixgbe_xmit_frame_ring: called with the TX
queue's _xmit_lock held (HARD_TX_LOCK), it posts one descriptor to the
queue's ring (the doorbell is the ring's producer index) and stops the queue
when the ring is full, then re-checks after the stop, because the NIC may have
freed descriptors in between (the smp_mb() dance of every real driver):

    if (unlikely(tg3_tx_avail(tnapi) <= (MAX_SKB_FRAGS + 1))) {
            netif_tx_stop_queue(txq);
            smp_mb();
            if (tg3_tx_avail(tnapi) > TG3_TX_WAKEUP_THRESH(tnapi))
                    netif_tx_wake_queue(txq);
    }

An skb is one descriptor here (no fragments), so the stop threshold is "no
free descriptor".  With BQL (profile 3.3+ and the device's ``bql``) it
reports the bytes posted with netdev_tx_sent_queue() before the doorbell, as
tg3_start_xmit does.  Called on a full ring (the stack should not do that while
the queue is stopped) it returns NETDEV_TX_BUSY, as drivers do after logging
"BUG! Tx Ring full when queue awake!".

The doorbell.  A driver tells the NIC about new descriptors by writing the
ring's tail index to a device register (``writel(i, tx_ring->tail)`` in
ixgbe_tx_map, ``tw32_tx_mbox`` in tg3), and skips that write while the stack
says more skbs follow and the queue is not stopped (``skb->xmit_more`` in
3.18, ``netdev_xmit_more()`` since 5.2).  Here the producer index in shared
memory is the tail register, and writing it is free; what costs is waking
the NIC process, which sleeps when it has nothing to send.
So the NIC, before it sleeps, sets the ring's ``RING.wake`` word (as a virtio
device clears VRING_USED_F_NO_NOTIFY to ask for kicks, and
``virtqueue_kick_prepare`` tests it), and the driver posts the NIC's
doorbell semaphore only when it finds the word set after publishing a
descriptor: one word test per skb on the hot path, one post per NIC sleep.
The register write's *price* follows ``xmit_more``: ``doorbell_ns`` is
charged (virtual clock; a busy-wait with a wall-clock ``[costs]``) only when
no more skbs follow or the queue was stopped, as
``if (!netdev_xmit_more() || netif_xmit_stopped(txq))`` guards the write in
ixgbe and tg3.  The NIC process's wake-up is not batched so: while it has
work it looks at every ring each round (every tx-usecs), so batching its
semaphore post would save nothing.  The word test after the publish
needs a full barrier on both sides (the NIC sets the word with an atomic
xchg; the compiled ring publishes ``prod`` with a seq_cst store); the
pure-Python ring (NETQ_NATIVE=0) has no such barrier, so a request set at
that very instant can be missed, and the NIC's bounded sleep (50 ms) picks
the descriptor up instead.

The other half of the driver is the TX-completion handler (tg3_tx,
ixgbe_clean_tx_irq), run here by the NIC process: :func:`eth_tx_clean` frees
the descriptors the hardware finished and reports them to BQL;
:func:`eth_tx_wake_queues` wakes a queue the driver stopped once enough
descriptors are free.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shm.ring import RING

from ..core.delay import ndelay
from ..core.netdevice import (
    NETDEV_TX_BUSY,
    NETDEV_TX_OK,
    NetDevice,
    NetdevQueue,
    netdev_tx_completed_queue,
    netdev_tx_sent_queue_stop,
    netif_tx_start_queue,
    netif_tx_stop_queue,
    netif_tx_wake_queue,
)
from ..core.percpu import this
from ..core.skbuff import SkBuff
from ..kstructs import NETDEV_QUEUE, QUEUE_STATE_DRV_XOFF, QUEUE_STATE_STACK_XOFF
from ..tracepoints import NET_DEV_START_XMIT, NIC_IRQ, SOCK_MASK, TXQ_SHIFT

if TYPE_CHECKING:
    from ..net_namespace import Net

_PKTS, _BYTES = NETDEV_QUEUE.tx_packets, NETDEV_QUEUE.tx_bytes
_STATE, _RESTART = NETDEV_QUEUE.state, NETDEV_QUEUE.tx_restart
_XOFF = 1 << QUEUE_STATE_DRV_XOFF
#: netif_xmit_stopped(): the driver or BQL stopped the queue
_STOPPED = _XOFF | 1 << QUEUE_STATE_STACK_XOFF
_WAKE, _PROD = RING.wake, RING.prod
_DQL_LAST, _DQL_QUEUED = NETDEV_QUEUE.dql_last_obj_cnt, NETDEV_QUEUE.dql_num_queued
_DQL_ADJ = NETDEV_QUEUE.dql_adj_limit


def eth_start_xmit(skb: SkBuff, dev: NetDevice) -> int:
    """ndo_start_xmit of a physical device.  Called under HARD_TX_LOCK."""
    txq = dev.txqs[skb.queue_mapping]
    ring = txq.ring
    c = this.net.costs.xmit_ns
    if c:
        ndelay(c)
    if not ring.free():
        txq.f[NETDEV_QUEUE.tx_busy] += 1
        netif_tx_stop_queue(txq)
        return NETDEV_TX_BUSY
    f = txq.f
    if txq.bql:
        # netdev_tx_sent_queue (a static inline of netdevice.h), before the
        # doorbell, as the NIC may complete the descriptor at once: its
        # dql_queued and likely() dql_avail >= 0 test inlined on this
        # per-packet path, the rest in netdev_tx_sent_queue_stop
        n = skb.len
        f[_DQL_LAST] = n
        queued = f[_DQL_QUEUED] + n
        f[_DQL_QUEUED] = queued
        if f[_DQL_ADJ] - queued < 0:
            netdev_tx_sent_queue_stop(txq)
    vt = this.vt
    if vt is not None:
        # the post's virtual time, with the slot: the NIC's wire starts the
        # frame no earlier (skb->tstamp is when it was sent, for latency)
        txq.vpost[ring.idx[_PROD] & ring.mask] = vt.now
    ring.produce_from(skb)  # produce(skb.desc()); this CPU is the ring's only producer (_xmit_lock)
    tr = this.trace
    if tr is not None:  # net:net_dev_start_xmit
        sk = skb.sk
        tr.emit(
            NET_DEV_START_XMIT,
            txq.index << TXQ_SHIFT | (sk.id if sk is not None else SOCK_MASK),
            skb.sk_seq,
        )
    if ring.idx[_WAKE]:
        # the doorbell (writel to the TX tail register): the NIC is asleep and
        # asked to be told; see the module docstring
        ring.cancel_wake()
        if vt is not None:  # the NIC wakes at this post's virtual time
            vt.wake_other(vt.clock_base(this.net.ncpus))
        this.net.nic_doorbell.release()
    f[_PKTS] += 1
    f[_BYTES] += skb.len
    if ring.free() == 0:
        netif_tx_stop_queue(txq)
        f[NETDEV_QUEUE.tx_stops] += 1
        # smp_mb(): the NIC may have completed descriptors since we looked
        if ring.free() >= txq.wake_thresh:
            netif_tx_start_queue(txq)
    c = this.net.costs.doorbell_ns
    if c and (not this.xmit_more or f[_STATE] & _STOPPED):
        # if (!netdev_xmit_more() || netif_xmit_stopped(txq)) writel(tail)
        ndelay(c)
    return NETDEV_TX_OK


def eth_tx_clean(txq: NetdevQueue, pkts: int, nbytes: int, now: int, net: Net) -> bool:
    """The TX-completion handler for one ring (tg3_tx, ixgbe_clean_tx_irq):
    the hardware finished the ``pkts`` oldest descriptors (``nbytes`` bytes).

    Frees them (the ring's consumer index is the clean index; the skbs' send-
    buffer charges were freed by the caller while it looked at them, as
    sock_wfree does from dev_consume_skb_any) and, with BQL, reports them
    with netdev_tx_completed_queue(), which restarts a queue BQL stopped.
    Returns whether BQL restarted the queue.  Runs in the NIC process, which
    is the ring's only consumer; netq takes no lock here, as the driver's
    NAPI poll takes none.  The wake of a queue the driver stopped is
    :func:`eth_tx_wake_queues`, done once per round over every ring.
    """
    txq.ring.advance(pkts)
    if this.trace is not None:
        this.trace.emit(NIC_IRQ, txq.index, pkts)
    if txq.bql:
        return netdev_tx_completed_queue(txq, pkts, nbytes, now, net)
    return False


def eth_tx_wake_queues(txqs: list[NetdevQueue], net: Net) -> int:
    """The driver's wake test at the end of its TX clean (tg3_tx):

        if (unlikely(netif_tx_queue_stopped(txq) &&
                     (tg3_tx_avail(tnapi) > TG3_TX_WAKEUP_THRESH(tnapi))))
                netif_tx_wake_queue(txq);

    for every ring in ``txqs`` (``wake_thresh`` is the threshold; a wake
    counts ``tx_restart``, written by the NIC only).  netq differs in that
    it tests every ring once per NIC round, not only the rings that just
    completed descriptors.  Returns the queues woken.
    """
    woken = 0
    for txq in txqs:
        if (
            txq.f[_STATE] & _XOFF
            and txq.ring.free() >= txq.wake_thresh
            and netif_tx_wake_queue(txq, net)
        ):
            txq.f[_RESTART] += 1
            woken += 1
    return woken
