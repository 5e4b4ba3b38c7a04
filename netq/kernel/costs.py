"""What each kernel operation costs on the emulated machine, in ns: the
virtual clock's price list (docs/virtual-time.md).

One table per hardware era, each kernel profile naming the era of the
machines its kernel ran on.  The numbers are orders of magnitude from
public measurements, each with its source, not a fit to any figure netq
reproduces; ``[costs]`` in an experiment file overrides any of them.

* ``sendmsg_ns``   udp_sendmsg through ip_output to dev_queue_xmit: socket
                   lookup, skb allocation and copy, IP and UDP headers.
                   A 2010-era core sends ~600-800 kpps of small UDP per core
                   through the whole stack (the busylock commit's and
                   pktgen-less netperf UDP_STREAM reports): ~1.2-1.6 us a
                   packet in all, about half of it above dev_queue_xmit.
* ``pick_tx_ns``   netdev_pick_tx with a cached queue: a few loads.
* ``enqueue_ns`` / ``dequeue_ns``   pfifo_fast / fq enqueue and dequeue:
                   tens of ns (sch_fq's own rb-tree work included).
* ``xmit_ns``      the driver's ndo_start_xmit without its doorbell: DMA
                   mapping and the descriptor write (ixgbe/tg3 xmit paths
                   take ~0.3-0.6 us in all, doorbell included).
* ``doorbell_ns``  the doorbell: an uncached MMIO write of the ring's tail
                   register, 0.1-0.5 us, skipped while netdev_xmit_more()
                   says more skbs of a bulk list follow (3.18+, commit
                   0b725a2ca61b "net: Remove ndo_xmit_flush netdev
                   operation, use signalling instead": the write was the
                   cost that bulk dequeue set out to amortise).
* ``completion_ns``   the TX clean of one skb (unmap, free, BQL accounting),
                   charged to the NIC's clock.
* ``lock_ns``      an uncontended spin_lock + spin_unlock: two atomic
                   read-modify-writes on a line the CPU owns, ~10-20 ns.
* ``atomic_ns``    one atomic RMW (cmpxchg on the defer_list head).
* ``bounce_ns``    a cache line moving between cores of one socket:
                   ~60-100 ns (Intel's and AMD's published latencies for a
                   modified line in another core's L1/L2).
* ``remote_ns``    extra when it comes from the other socket: ~100-150 ns
                   more.
* ``handoff_ns``   a spinning waiter seeing the release and taking the
                   line: about one transfer.
* ``spinner_ns``   what each *other* CPU spinning on a lock's line at its
                   release adds to the handoff: the release invalidates
                   every spinner's copy, their re-reads are served one after
                   another, and the next ticket holder's read is on average
                   half way through them, so half a transfer each.  This is
                   why a ticket spinlock's handoff grows with its waiters
                   and throughput collapses under contention (Boyd-Wickizer,
                   Kaashoek, Morris, Zeldovich, "Non-scalable locks are
                   dangerous", Linux Symposium 2012: acquire cost linear in
                   the number of waiting cores on 48-core AMD and 80-core
                   Intel machines).
* ``softirq_ns``   entering and leaving __do_softirq.
* ``free_ns``      kfree_skb of a dropped skb: dst_release (an atomic on the
                   route's refcount, which every sender of the flow shares:
                   about one line transfer), sock_wfree (an atomic on the
                   socket's own line) and two slab frees (~50 ns).  Up to
                   4.7 a qdisc frees what it drops under the root lock;
                   520ac30f4551 (4.8, "net_sched: drop packets after root
                   qdisc lock is released") moved it after, measuring up
                   to 12% more.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class HardwareCosts:
    """The price of each operation on one era's machines, in ns."""

    era: str
    sendmsg_ns: int
    pick_tx_ns: int
    enqueue_ns: int
    dequeue_ns: int
    xmit_ns: int
    doorbell_ns: int
    completion_ns: int
    lock_ns: int
    atomic_ns: int
    bounce_ns: int
    remote_ns: int
    handoff_ns: int
    softirq_ns: int
    spinner_ns: int
    free_ns: int

    def with_overrides(self, **ns: int) -> HardwareCosts:
        """This table with the fields named in ``ns`` replaced (those > 0)."""
        known = {f.name for f in fields(self)} - {"era"}
        changes: dict[str, Any] = {k: v for k, v in ns.items() if k in known and v > 0}
        return replace(self, **changes)


ERAS: dict[str, HardwareCosts] = {
    c.era: c
    for c in (
        # Core 2 Xeon 5400 "Harpertown" (2007-2009), the busylock commit's
        # box (dual quad-core E5450 @ 3.00GHz, tg3): each package holds two
        # dual-core dies with a shared L2 each and no link between dies, so a
        # line modified on another die crosses the front-side bus (a snooped
        # bus transaction, ~150-250 ns; same-die L2 hits ~15 ns serve 1 of a
        # CPU's 7 peers); both sockets share one memory hub (UMA: no remote
        # premium beyond the bus).  sendmsg: the commit's one netperf flow
        # reaches ~800 kpps on that box, ~1.25 us a packet for the whole
        # path; with this table's other prices that leaves ~650 ns above
        # dev_queue_xmit (the one price set from a figure of that commit,
        # its uncontended one).  tg3's xmit writes its mailbox over PCIe.
        HardwareCosts("2007", 650, 30, 60, 60, 250, 250, 150, 25, 25, 200, 20, 200, 120, 100, 300),
        # Nehalem/Westmere (2009-2011): 2.6.3x and 3.x kernels; QPI remote
        # line ~+150 ns
        HardwareCosts("2010", 700, 30, 60, 60, 300, 200, 150, 25, 20, 90, 150, 90, 120, 45, 170),
        # Skylake-SP (2017-2019): 4.x kernels; mesh, UPI remote ~+130 ns
        HardwareCosts("2018", 550, 25, 50, 50, 200, 200, 120, 20, 15, 80, 130, 80, 100, 40, 150),
        # Sapphire Rapids / Zen 4 (2023-2025): 6.x kernels
        HardwareCosts("2025", 450, 20, 40, 40, 170, 180, 100, 15, 12, 70, 120, 70, 80, 35, 120),
    )
}
