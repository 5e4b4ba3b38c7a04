"""struct net_device and struct netdev_queue, and the inline helpers of
include/linux/netdevice.h that the transmit path uses.

A :class:`NetDevice` / :class:`NetdevQueue` is a process-local handle: the
fields several CPUs share live in shared memory (``f``, see
:data:`netq.kernel.kstructs.NETDEV` and :data:`netq.kernel.kstructs.NETDEV_QUEUE`, which say
which lock protects each field); what never changes after setup (name, kind,
driver) is plain Python, inherited by every forked worker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..kstructs import (
    IFF_UP,
    NETDEV,
    NETDEV_QUEUE,
    NETIF_F_LLTX,
    QDISC,
    QDISC_STATE_SCHED,
    QUEUE_STATE_DRV_XOFF,
    QUEUE_STATE_FROZEN,
    QUEUE_STATE_STACK_XOFF,
    SOFTNET,
)
from ..stddef import NULL
from ..tracepoints import BQL_LIMIT, QUEUE_STOP, QUEUE_WAKE
from .dql import dql_avail, dql_completed
from .percpu import this
from .sock import wake_cpu

if TYPE_CHECKING:
    from shm.ring import Ring

    from ..net_namespace import Net
    from ..sched.sch_generic import Qdisc
    from .skbuff import SkBuff

NETDEV_TX_OK = 0x00
NETDEV_TX_BUSY = 0x10
NET_XMIT_SUCCESS = 0x00
NET_XMIT_DROP = 0x01
NET_XMIT_CN = 0x02
NET_XMIT_MASK = 0x0F
ENETDOWN = 100
ENOMEM = 12

_XOFF = 1 << QUEUE_STATE_DRV_XOFF
_XOFF_ANY = _XOFF | 1 << QUEUE_STATE_STACK_XOFF
_FROZEN_OR_STOPPED = _XOFF_ANY | 1 << QUEUE_STATE_FROZEN

_STATE = NETDEV_QUEUE.state
_OWNER = NETDEV_QUEUE.xmit_lock_owner
_QSTATE = QDISC.state
_WMEM_SLEEPING = SOFTNET.wmem_sleeping


@dataclass(frozen=True)
class NetDeviceOps:
    """struct net_device_ops: the driver's entry points used here."""

    #: (skb, dev) -> NETDEV_TX_*
    ndo_start_xmit: Callable[[SkBuff, NetDevice], int]
    #: (dev, skb) -> queue index, or None: __netdev_pick_tx
    ndo_select_queue: Callable[[NetDevice, SkBuff], int] | None = None


class NetDevice:
    __slots__ = (
        "base",
        "cfg",
        "f",
        "index",
        "kind",
        "lower",
        "name",
        "netdev_ops",
        "num_rx_queues",
        "txqs",
        "xps_rxqs_needed",
    )

    def __init__(
        self, index: int, name: str, kind: str, f: memoryview, base: int, cfg: Any
    ) -> None:
        self.index = index
        self.name = name
        self.kind = kind
        #: shared fields, NETDEV word indices
        self.f = f
        #: absolute word index of the record (for atomics)
        self.base = base
        #: dev->netdev_ops: NULL until the device is built (register_netdevice)
        self.netdev_ops: NetDeviceOps = NULL
        self.txqs: list[NetdevQueue] = []
        #: the real device below a virtual one (vlan, tunnel); NULL for a
        #: physical device (only the virtual drivers read it)
        self.lower: NetDevice = NULL
        #: the machine's configuration of this device, kept for the upper
        #: floors (the kernel model never reads it; Any: it may not import them)
        self.cfg = cfg
        #: dev->num_rx_queues (fixed at registration)
        self.num_rx_queues = 1
        #: some xps_rxqs map of this device is set (the kernel's
        #: xps_rxqs_needed static key, per device here); written at setup
        self.xps_rxqs_needed = False

    @property
    def flags(self) -> int:
        return self.f[NETDEV.flags]

    @property
    def real_num_tx_queues(self) -> int:
        return self.f[NETDEV.real_num_tx_queues]

    @property
    def num_tx_queues(self) -> int:
        return self.f[NETDEV.num_tx_queues]

    @property
    def lltx(self) -> bool:
        return bool(self.f[NETDEV.features] & NETIF_F_LLTX)

    def is_up(self) -> bool:
        return bool(self.f[NETDEV.flags] & IFF_UP)

    def __repr__(self) -> str:
        return f"<net_device {self.name}>"


class NetdevQueue:
    __slots__ = (
        "base",
        "bql",
        "dev",
        "f",
        "index",
        "lltx",
        "qindex",
        "ring",
        "vpost",
        "wake_thresh",
        "xmit_lock",
    )

    def __init__(
        self, index: int, qindex: int, dev: NetDevice, f: memoryview, base: int, xmit_lock: int
    ) -> None:
        #: global index (TX ring, lock_stat row, report)
        self.index = index
        #: index within the device (queue_mapping)
        self.qindex = qindex
        self.dev = dev
        self.f = f
        self.base = base
        #: lock id of txq->_xmit_lock
        self.xmit_lock = xmit_lock
        #: the driver's TX ring; NULL for a virtual device's queue (only the
        #: ethernet driver reads it)
        self.ring: Ring = NULL
        #: virtual clock: the post time (virtual ns) of each ring slot's
        #: descriptor, written by the driver under _xmit_lock before it
        #: publishes the slot, read by the NIC after it sees the slot (the
        #: ring's producer index orders them); None on the wall clock
        self.vpost: Any = None
        self.wake_thresh = 0
        #: NETIF_F_LLTX of its device (features are fixed once registered)
        self.lltx = False
        #: the driver accounts this queue with BQL (CONFIG_BQL, profile 3.3+,
        #: a driver that calls netdev_tx_sent_queue / netdev_tx_completed_queue)
        self.bql = False

    @property
    def name(self) -> str:
        return f"{self.dev.name}:tx-{self.qindex}"

    def __repr__(self) -> str:
        return f"<netdev_queue {self.name}>"


# -- include/linux/netdevice.h ---------------------------------------------------------
def netif_xmit_stopped(txq: NetdevQueue) -> bool:
    return bool(txq.f[_STATE] & _XOFF_ANY)


def netif_xmit_frozen_or_stopped(txq: NetdevQueue) -> bool:
    return bool(txq.f[_STATE] & _FROZEN_OR_STOPPED)


def netif_tx_queue_stopped(txq: NetdevQueue) -> bool:
    """The driver stopped the queue (DRV_XOFF only; BQL's STACK_XOFF is not
    a reason to stop a list dev_hard_start_xmit is sending)."""
    return bool(txq.f[_STATE] & _XOFF)


def netif_tx_stop_queue(txq: NetdevQueue) -> None:
    """set_bit(__QUEUE_STATE_DRV_XOFF)."""
    this.net.atomics.set_bit(txq.base + _STATE, QUEUE_STATE_DRV_XOFF)
    if this.trace is not None:
        this.trace.emit(QUEUE_STOP, txq.index, 0)


def netif_tx_start_queue(txq: NetdevQueue) -> None:
    """clear_bit(__QUEUE_STATE_DRV_XOFF) without scheduling the qdisc."""
    this.net.atomics.clear_bit(txq.base + _STATE, QUEUE_STATE_DRV_XOFF)


def netif_tx_wake_queue(txq: NetdevQueue, net: Net | None = None) -> bool:
    """Clear DRV_XOFF and, if it was set, __netif_schedule(txq->qdisc).

    Mirrors netif_tx_wake_queue(); called from the NIC's completion path,
    which runs "on" txq's interrupt CPU: the qdisc goes on that CPU's
    output_queue.  Returns whether the queue had been stopped.
    """
    net = net or this.net
    if net.atomics.test_and_clear_bit(txq.base + _STATE, QUEUE_STATE_DRV_XOFF):
        netif_schedule_on(net, net.qdiscs[txq.f[NETDEV_QUEUE.qdisc]], txq.f[NETDEV_QUEUE.irq_cpu])
        if this.trace is not None:
            this.trace.emit(QUEUE_WAKE, txq.index, 0)
        return True
    return False


# -- BQL (include/linux/netdevice.h, 3.3+) -----------------------------------------------
def netdev_tx_sent_queue_stop(txq: NetdevQueue) -> None:
    """netdev_tx_sent_queue() past its likely() return: the queue is over
    its limit.  Set STACK_XOFF, then, after the smp_mb(), re-test: a
    completion may have raised the limit meanwhile.  The driver
    (eth_start_xmit) inlines what comes before: dql_queued and the
    dql_avail test, under _xmit_lock and before the doorbell."""
    at = this.net.atomics
    at.set_bit(txq.base + _STATE, QUEUE_STATE_STACK_XOFF)
    if this.trace is not None:
        this.trace.emit(QUEUE_STOP, txq.index, 1)
    txq.f[NETDEV_QUEUE.dql_stack_xoffs] += 1
    if dql_avail(txq.f) >= 0:
        at.clear_bit(txq.base + _STATE, QUEUE_STATE_STACK_XOFF)


def netdev_tx_completed_queue(txq: NetdevQueue, pkts: int, nbytes: int, now: int, net: Net) -> bool:
    """The completion handler freed ``pkts`` skbs of ``nbytes``: dql_completed()
    and, when the queue is under its limit again and BQL had stopped it,
    clear STACK_XOFF and schedule its qdisc (netif_schedule_queue) on the
    queue's interrupt CPU.  Returns whether the queue was woken."""
    if not nbytes:
        return False
    f = txq.f
    limit = f[NETDEV_QUEUE.dql_limit]
    dql_completed(f, nbytes, now)
    if this.trace is not None and f[NETDEV_QUEUE.dql_limit] != limit:
        this.trace.emit(BQL_LIMIT, txq.index, f[NETDEV_QUEUE.dql_limit])
    if dql_avail(f) < 0:
        return False
    if net.atomics.test_and_clear_bit(txq.base + _STATE, QUEUE_STATE_STACK_XOFF):
        # netif_schedule_queue: only if the driver has not stopped it too
        if not f[_STATE] & _XOFF:
            netif_schedule_on(net, net.qdiscs[f[NETDEV_QUEUE.qdisc]], f[NETDEV_QUEUE.irq_cpu])
        if this.trace is not None:
            this.trace.emit(QUEUE_WAKE, txq.index, 1)
        return True
    return False


def qdisc_avail_bulklimit(txq: NetdevQueue) -> int:
    """include/net/sch_generic.h: bytes a qdisc run may dequeue in bulk
    (dql_avail with BQL, else 0: no bulk)."""
    return dql_avail(txq.f) if txq.bql else 0


def txq_trans_update(txq: NetdevQueue, now: int) -> None:
    if txq.f[_OWNER] != -1:
        txq.f[NETDEV_QUEUE.trans_start] = now


def __netif_tx_lock(txq: NetdevQueue, cpu: int) -> None:
    """spin_lock(&txq->_xmit_lock); txq->xmit_lock_owner = cpu."""
    this.locks[txq.xmit_lock].lock()
    txq.f[_OWNER] = cpu


def __netif_tx_unlock(txq: NetdevQueue) -> None:
    txq.f[_OWNER] = -1
    this.locks[txq.xmit_lock].unlock()


def HARD_TX_LOCK(dev: NetDevice, txq: NetdevQueue, cpu: int) -> None:
    """Take the TX queue lock unless the driver is lockless (NETIF_F_LLTX)."""
    if not dev.f[NETDEV.features] & NETIF_F_LLTX:
        __netif_tx_lock(txq, cpu)


def HARD_TX_UNLOCK(dev: NetDevice, txq: NetdevQueue) -> None:
    if not dev.f[NETDEV.features] & NETIF_F_LLTX:
        __netif_tx_unlock(txq)


def dev_xmit_complete(rc: int) -> bool:
    """True if the driver consumed the skb (sent it, or dropped it)."""
    return rc < NET_XMIT_MASK


# -- dev.c functions that netdevice.h declares for sch_generic.c and the drivers --------
def dev_hard_start_xmit(skb: SkBuff, dev: NetDevice, txq: NetdevQueue) -> int:
    """Call the driver's ndo_start_xmit.  GSO segmentation, vlan tag
    insertion and taps (dev_queue_xmit_nit) are not modelled."""
    rc = dev.netdev_ops.ndo_start_xmit(skb, dev)
    if rc == NETDEV_TX_OK:
        txq_trans_update(txq, skb.tstamp)
    return rc


def dev_hard_start_xmit_list(
    skbs: list[SkBuff], dev: NetDevice, txq: NetdevQueue
) -> tuple[int, list[SkBuff] | None]:
    """The loop of dev_hard_start_xmit() over a bulk-dequeued list (the
    caller has sent its first skb): send each skb while the driver takes
    them; stop with NETDEV_TX_BUSY when the driver refuses one or stops the
    queue (DRV_XOFF; BQL's STACK_XOFF does not stop a list).  Each skb but
    the last goes with netdev_xmit_more() true (the driver may hold its
    doorbell).  Returns the rc and the skbs not sent (None if all were)."""
    rc = NETDEV_TX_OK
    last = len(skbs) - 1
    for i, skb in enumerate(skbs):
        if netif_tx_queue_stopped(txq):
            this.xmit_more = False
            return NETDEV_TX_BUSY, skbs[i:]
        this.xmit_more = i < last  # xmit_one(skb, dev, txq, next != NULL)
        rc = dev_hard_start_xmit(skb, dev, txq)
        if not dev_xmit_complete(rc):
            this.xmit_more = False
            return rc, skbs[i:]
    this.xmit_more = False
    return rc, None


# -- declared in netdevice.h, defined in dev.c (sch_generic.c calls them) ----------------
def __netif_schedule(q: Qdisc) -> None:
    """Put q on this CPU's output_queue unless already scheduled (SCHED bit)."""
    netif_schedule_on(this.net, q, this.cpu)


def netif_schedule_on(net: Net, q: Qdisc, cpu: int) -> None:
    """__netif_schedule() as run on ``cpu`` (the NIC's completion interrupt
    runs "on" the queue's irq CPU, so it schedules there)."""
    if not net.atomics.test_and_set_bit(q.base + _QSTATE, QDISC_STATE_SCHED):
        _netif_reschedule_on(net, q, cpu)


def __netif_reschedule(q: Qdisc) -> None:
    """Append q to this CPU's output_queue and raise NET_TX_SOFTIRQ."""
    _netif_reschedule_on(this.net, q, this.cpu)


def _netif_reschedule_on(net: Net, q: Qdisc, cpu: int) -> None:
    sem = net.softnet_sems[cpu]
    sem.acquire()  # local_irq_save
    sd = net.softnet[cpu]
    tail = sd[SOFTNET.oq_tail]
    oq = net.output_queue[cpu]
    oq[tail % len(oq)] = q.id
    sd[SOFTNET.oq_tail] = tail + 1
    sem.release()  # local_irq_restore; raise_softirq_irqoff(NET_TX_SOFTIRQ)
    if sd[_WMEM_SLEEPING]:
        wake_cpu(net, cpu)  # the CPU sleeps for send-buffer space: get it to run NET_TX
