"""fq: Fair Queue packet scheduler, as ``tc qdisc add ... fq nopacing`` runs
(net/sched/sch_fq.c, 3.12+).

One queue per flow (a flow is a connected socket; see :func:`fq_classify`
for orphans and unconnected sockets), served round robin with a byte credit: a flow first seen, or back
after being idle, goes on ``new_flows`` with ``initial_quantum`` (10 MTU) of
credit, or ``quantum`` (2 MTU) when it was idle longer than
``flow_refill_delay``; a flow out of credit gets ``quantum`` more and moves to
the tail of ``old_flows``; an empty flow leaves ``new_flows`` for
``old_flows`` (so new flows cannot starve old ones) and leaves ``old_flows``
detached.  A flow holding ``flow_plimit`` (100) skbs drops the next one
(``FQ_FLOW_LIMIT``); the whole qdisc holds at most ``limit`` (10000).

fq is not work-conserving in general (pacing), so the kernel never sets
TCQ_F_CAN_BYPASS on it: every skb is enqueued and dequeued.  This is the
qdisc of the kernel's defer_list measurements (100dfa74cad9).

Not modelled: pacing and the throttled tree (nopacing), the 6.7 priority
bands and their weights, the internal high-priority flow, flow garbage
collection, ``ce_threshold``, ``horizon``.

State: each flow's skbs are a ring in ``q.bands`` (index = socket id, the
last one for orphans; a hashed flow lives in the ring of the lowest socket
id whose hash falls in its bucket), so the generic accounting and invariants that read
``q.bands`` hold as for the FIFOs; the flow records (``FQ_FLOW``) and the
list heads (QDISC ``fq_*``) are shared memory, under root_lock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.flow_dissector import skb_get_hash
from ..core.netdevice import NET_XMIT_DROP, NET_XMIT_SUCCESS
from ..core.percpu import this
from ..core.skbuff import SkBuff
from ..core.sock import sk_dst_cached
from ..core.timekeeping import ktime_get_ns
from ..kstructs import FQ_FLOW, QDISC
from .sch_generic import Qdisc, Qdisc_ops, register_qdisc

#: psched_mtu() of a 1500-byte Ethernet device: mtu + hard_header_len
PSCHED_MTU = 1514
FQ_QUANTUM = 2 * PSCHED_MTU
FQ_INITIAL_QUANTUM = 10 * PSCHED_MTU
FQ_FLOW_PLIMIT = 100
FQ_LIMIT = 10000
#: flow_refill_delay: 40 ms
FQ_FLOW_REFILL_DELAY_NS = 40_000_000
#: descriptors per flow ring (a power of two >= FQ_FLOW_PLIMIT)
FQ_FLOW_RING = 128
#: orphan_mask: 1024 - 1 (fq_init, 3.13+): hashed flows fall in 1024 buckets
FQ_ORPHAN_MASK = 1024 - 1

if TYPE_CHECKING:
    from ..net_namespace import Net

DETACHED, NEW_FLOW, OLD_FLOW = 0, 1, 2

_NEXT, _CREDIT, _LIST, _AGE = FQ_FLOW.next, FQ_FLOW.credit, FQ_FLOW.list, FQ_FLOW.age
_QLEN, _LIMIT = QDISC.qlen, QDISC.limit
_NEW_H, _NEW_T, _OLD_H, _OLD_T = (
    QDISC.fq_new_head,
    QDISC.fq_new_tail,
    QDISC.fq_old_head,
    QDISC.fq_old_tail,
)

#: why the last fq_enqueue of this process dropped (qdisc_enqueue asks)
_last_drop = "QDISC_DROP"


#: per qdisc id: (the net it was built for, {bucket: flow ring index}); each
#: process builds its own from the run's static sockets
_buckets: dict[int, tuple[Net, dict[int, int]]] = {}


def _hashed(sk_connected: bool) -> bool:
    """Does fq classify this socket's skbs by hash?  An unconnected socket
    (TCP_CLOSE: UDP with sendto) with ``fq_hash_unconnected``."""
    return not sk_connected and this.net.profile.fq_hash_unconnected


def _bucket_flows(q: Qdisc) -> dict[int, int]:
    """bucket (``hash & orphan_mask``) -> the flow ring that holds it: the
    lowest id of the hashed sockets whose ``sk_txhash`` falls in it."""
    net = this.net
    got = _buckets.get(q.id)
    if got is not None and got[0] is net:
        return got[1]
    m: dict[int, int] = {}
    for sk in net.socks:
        if _hashed(sk_dst_cached(sk)):
            m.setdefault(sk.sk_txhash & FQ_ORPHAN_MASK, sk.id)
    _buckets[q.id] = (net, m)
    return m


def fq_classify(skb: SkBuff, q: Qdisc) -> int:
    """fq_classify(): the flow of an skb, as the index of its ring.

    A connected socket is its own flow (the kernel keys flows by the socket
    pointer).  An skb without a socket (3.13+: ``orphan_mask``) and, from
    the 2019 "net_sched: sch_fq: handle non connected flows" on (profile
    ``fq_hash_unconnected``: 6.18, 6.19), an skb of an unconnected socket
    (``sk_state == TCP_CLOSE``) are keyed by ``skb_get_hash(skb) &
    orphan_mask`` instead: up to 1024 flows, each shared by every socket (or
    orphan) whose hash falls in the bucket.  3.13 and 4.19 keep an
    unconnected socket as its own flow.

    netq's flows are fixed rings (one per socket plus one for orphans), so a
    hashed bucket uses the ring of the lowest socket id in it; an orphan
    whose bucket holds no hashed socket goes to the orphan ring, which all
    such orphans share whatever their bucket (the kernel would give each
    bucket its own flow; netq's generators send no orphan skbs).  An skb's
    hash is its socket's sk_txhash (``skb.hash``), which fq reads through
    skb_get_hash as 4.2+ does; 3.13 read ``skb->rxhash`` (skb_get_rxhash),
    which netq also takes from ``skb.hash``.
    """
    sk = skb.sk
    if sk is not None and not _hashed(sk_dst_cached(sk)):
        return sk.id
    fid = _bucket_flows(q).get(skb_get_hash(skb) & FQ_ORPHAN_MASK)
    return fid if fid is not None else len(q.bands) - 1


def _flow_add_tail(q: Qdisc, fid: int, which: int) -> None:
    """fq_flow_add_tail(): append flow ``fid`` to new_flows or old_flows."""
    f = q.f
    head, tail = (_NEW_H, _NEW_T) if which == NEW_FLOW else (_OLD_H, _OLD_T)
    fl = q.flows[fid]
    fl[_NEXT] = 0
    fl[_LIST] = which
    if f[head]:
        q.flows[f[tail] - 1][_NEXT] = fid + 1
    else:
        f[head] = fid + 1
    f[tail] = fid + 1


def fq_enqueue(skb: SkBuff, q: Qdisc) -> int:
    """fq_enqueue(): drop above ``limit`` (QDISC_DROP) or above the flow's
    ``flow_plimit`` (FQ_FLOW_LIMIT); a detached flow joins new_flows, its
    credit topped up to ``quantum`` if it was idle long enough."""
    global _last_drop
    f = q.f
    if f[_QLEN] >= f[_LIMIT]:
        _last_drop = "QDISC_DROP"
        return NET_XMIT_DROP
    fid = fq_classify(skb, q)
    ring = q.bands[fid]
    if ring.used() >= f[QDISC.fq_flow_plimit]:
        f[QDISC.fq_flows_plimit] += 1
        _last_drop = "FQ_FLOW_LIMIT"
        return NET_XMIT_DROP
    fl = q.flows[fid]
    if fl[_LIST] == DETACHED:
        _flow_add_tail(q, fid, NEW_FLOW)
        if ktime_get_ns() - fl[_AGE] > FQ_FLOW_REFILL_DELAY_NS:
            fl[_CREDIT] = max(fl[_CREDIT], f[QDISC.fq_quantum])
    ring.produce_from(skb)
    return NET_XMIT_SUCCESS


def fq_drop_reason(q: Qdisc) -> str:
    return _last_drop


def fq_dequeue(q: Qdisc) -> tuple | None:
    """fq_dequeue() without pacing: the first flow of new_flows, else of
    old_flows; out of credit, it gets ``quantum`` and goes to the tail of
    old_flows; empty, it leaves new_flows for old_flows, or old_flows for
    detached; else its first skb, charged to its credit."""
    f = q.f
    flows = q.flows
    while True:
        head, tail = _NEW_H, _NEW_T
        if not f[head]:
            head, tail = _OLD_H, _OLD_T
            if not f[head]:
                return None
        fid = f[head] - 1
        fl = flows[fid]
        if fl[_CREDIT] <= 0:
            fl[_CREDIT] += f[QDISC.fq_quantum]
            _unlink_first(f, fl, head, tail)
            _flow_add_tail(q, fid, OLD_FLOW)
            continue
        d = q.bands[fid].consume()
        if d is None:
            _unlink_first(f, fl, head, tail)
            if head == _NEW_H:
                _flow_add_tail(q, fid, OLD_FLOW)  # force a pass through old_flows
            else:
                fl[_LIST] = DETACHED
                fl[_AGE] = ktime_get_ns()
            continue
        fl[_CREDIT] -= d[4]
        return d


def _unlink_first(f: memoryview, fl: memoryview, head: int, tail: int) -> None:
    f[head] = fl[_NEXT]
    if not f[head]:
        f[tail] = 0
    fl[_NEXT] = 0


def fq_peek(q: Qdisc) -> tuple | None:
    """The skb fq_dequeue would look at first (credit aside)."""
    f = q.f
    for head in (_NEW_H, _OLD_H):
        fid = f[head]
        while fid:
            ring = q.bands[fid - 1]
            if ring.used():
                return tuple(int(x) for x in ring.peek_batch(1)[0])
            fid = q.flows[fid - 1][_NEXT]
    return None


def fq_reset(q: Qdisc) -> list:
    """fq_reset(): purge every flow; every flow detached, credits back to
    initial_quantum (the kernel frees the flows)."""
    out: list[tuple] = []
    for ring in q.bands:
        out.extend(tuple(int(x) for x in row) for row in ring.consume_batch(ring.size))
    f = q.f
    f[_NEW_H] = f[_NEW_T] = f[_OLD_H] = f[_OLD_T] = 0
    for fl in q.flows:
        fq_flow_init(q, fl)
    return out


def fq_flow_init(q: Qdisc, fl: memoryview) -> None:
    """A flow as fq_classify creates it: detached, initial_quantum of credit,
    old enough to count as idle."""
    fl[_NEXT] = 0
    fl[_LIST] = DETACHED
    fl[_CREDIT] = q.f[QDISC.fq_initial_quantum]
    fl[_AGE] = -FQ_FLOW_REFILL_DELAY_NS - 1


def fq_init(q: Qdisc) -> None:
    """fq_init(): the defaults of ``tc qdisc add ... fq nopacing``."""
    f = q.f
    f[_LIMIT] = FQ_LIMIT
    f[QDISC.fq_flow_plimit] = FQ_FLOW_PLIMIT
    f[QDISC.fq_quantum] = FQ_QUANTUM
    f[QDISC.fq_initial_quantum] = FQ_INITIAL_QUANTUM
    f[_NEW_H] = f[_NEW_T] = f[_OLD_H] = f[_OLD_T] = 0
    for fl in q.flows:
        fq_flow_init(q, fl)


fq_qdisc_ops = register_qdisc(
    Qdisc_ops("fq", fq_enqueue, fq_dequeue, fq_peek, fq_reset, drop_reason=fq_drop_reason)
)
