"""TX queue selection: netdev_pick_tx and friends (net/core/flow_dissector.c in
3.13; net/core/dev.c in later kernels), skb_tx_hash (include/linux/netdevice.h).

Two hashing generations, chosen by the profile (:mod:`netq.kernel.profiles`):

* ``jhash_sk_hash`` (2.6.37, 3.13): ``hash = sk->sk_hash``, else (no socket
  hash) ``(__force u16)skb->protocol`` -- the big-endian ETH_P_IP read as a
  little-endian u16, 0x0008 -- in skb_tx_hash, and that value XOR
  ``skb->rxhash`` in get_xps_queue; then ``jhash_1word(hash, hashrnd)``
  with a per-boot random ``hashrnd`` (3.x's seeding,
  :func:`~netq.kernel.core.jhash.jhash_1word_legacy`, for profiles with
  ``jhash_legacy_seed``) and ``((u64)hash * qcount) >> 32``.
* ``skb_get_hash`` (4.2+): ``reciprocal_scale(skb_get_hash(skb), qcount)``;
  a locally generated skb carries its socket's random ``sk_txhash``.

``hashrnd`` and every ``sk_txhash`` come from the run's seed (``--seed``), so
a seeded run picks the same queues every time.

Differences: netq has no flow dissector, so an skb without a socket hashes
its ``skb.hash`` (0 for local traffic, what a test sets for a forwarded
one) where 4.2+ would dissect the headers; 2.6.37's skb_tx_hash also XORed
``skb->rxhash`` into the socketless fallback (dev.c of 2.6.3x) and netq
hashes the protocol alone there, which differs only for an skb with an rx
hash, no socket and no recorded rx queue (netq generates none); 2.6.37 had
no XPS (2.6.38) nor ooo_okay, which netq still gives it.
"""

from __future__ import annotations

from ..kstructs import NETDEV, SOCK
from .delay import ndelay
from .jhash import jhash_1word, jhash_1word_legacy, reciprocal_scale
from .netdevice import NetDevice, NetdevQueue
from .percpu import this
from .skbuff import SkBuff, skb_get_rx_queue, skb_rx_queue_recorded
from .sock import sk_dst_cached, sk_tx_queue_get, sk_tx_queue_set

_REAL = NETDEV.real_num_tx_queues
_NUM_TC = NETDEV.num_tc
_TC_COUNT, _TC_OFFSET, _PRIO_TC = NETDEV.tc_count, NETDEV.tc_offset, NETDEV.prio_tc_map
_M32 = 0xFFFFFFFF
_SK_MAP = SOCK.sk_tx_queue_mapping
#: include/linux/netdevice.h: TC_BITMASK, the mask netdev_get_prio_tc_map applies
TC_BITMASK = 15


def __flow_hash_1word(a: int) -> int:
    """jhash_1word(a, hashrnd) with this boot's (run's) hashrnd, seeded as the
    profile's jhash.h seeds it (3.x's ``a, b += JHASH_INITVAL; c +=
    initval`` for ``jhash_legacy_seed``, else today's __jhash_nwords).

    Memoised per value: the result depends only on ``a``, hashrnd and the
    profile, and jhash in Python costs microseconds.
    """
    net = this.net
    cache = net.flow_hash_cache
    h = cache.get(a)
    if h is None:
        if net.profile.jhash_legacy_seed:
            h = jhash_1word_legacy(a, net.hashrnd)
        else:
            h = jhash_1word(a, net.hashrnd)
        cache[a] = h
    return h


def skb_get_hash(skb: SkBuff) -> int:
    """The skb's flow hash (4.2+): the socket's sk_txhash for local traffic."""
    return skb.hash


def skb_protocol_u16(skb: SkBuff) -> int:
    """``(__force u16)skb->protocol`` on a little-endian CPU: skb->protocol is
    big-endian (htons(ETH_P_IP)), so the u16 the CPU reads is byte-swapped
    (ETH_P_IP 0x0800 reads 0x0008).  netq keeps ``skb.protocol`` in host
    order."""
    p = skb.protocol & 0xFFFF
    return (p >> 8) | ((p & 0xFF) << 8)


def _tx_hash_input(skb: SkBuff) -> int:
    """3.13's __skb_tx_hash: ``sk->sk_hash`` if the skb has a socket with a
    hash, else ``(__force u16)skb->protocol``."""
    sk = skb.sk
    if sk is not None and sk.sk_hash:
        return sk.sk_hash
    return skb_protocol_u16(skb)


def _xps_hash_input(skb: SkBuff) -> int:
    """3.13's get_xps_queue: ``sk->sk_hash``, else ``(__force u16)
    skb->protocol ^ skb->rxhash`` (netq's ``skb.hash`` is 3.13's rxhash)."""
    sk = skb.sk
    if sk is not None and sk.sk_hash:
        return sk.sk_hash
    return skb_protocol_u16(skb) ^ (skb.hash & _M32)


def get_xps_queue(dev: NetDevice, skb: SkBuff) -> int:
    """The queue this CPU's XPS map picks, or -1 (no map for this CPU, or it
    names a queue >= real_num_tx_queues).  A CPU in several queues' masks
    picks among them by flow hash, as the kernel does: 3.13 by
    ``jhash_1word(sk_hash or protocol ^ rxhash)`` scaled with ``((u64)hash *
    len) >> 32``, 4.2+ by ``reciprocal_scale(skb_get_hash(skb), len)``.

    4.10+ (profile ``xps_tc``, commit 184c449f91fe) keeps one map per CPU and
    traffic class: with ``dev->num_tc`` set, ``tci = cpu * num_tc +
    netdev_get_prio_tc_map(dev, skb->priority)`` and the map holds only that
    class's queues.  netq keeps one list per CPU (``xps[dev][cpu]``, in the
    order queues were added) and takes the sub-list of the skb's class's
    queues ``[offset, offset + count)``; after a queue was removed from a
    CPU's map (``remove_xps_queue`` moves the last entry into the hole) the
    sub-list's order can differ from the kernel's per-class map, so a CPU
    with several queues of one class may hash a flow to another of them.
    Before 4.10 the map ignores the class: a CPU may pick a queue outside
    the skb's class.

    4.18+ (profile ``xps_rxqs``, commit fc9bab24e93b) first tries the
    xps_rxqs map of the RX queue the skb's socket received on
    (``sk_rx_queue_get``, if below ``dev->num_rx_queues``), and the CPU's map
    only if that gives no queue.
    """
    net = this.net
    if dev.xps_rxqs_needed and net.profile.xps_rxqs:
        sk = skb.sk
        if sk is not None and 0 <= sk.rx_queue < dev.num_rx_queues:
            queue_index = __get_xps_queue_idx(dev, skb, net.xps_rxqs[dev.index][sk.rx_queue])
            if queue_index >= 0:
                return queue_index
    return __get_xps_queue_idx(dev, skb, net.xps[dev.index][this.cpu])


def __get_xps_queue_idx(dev: NetDevice, skb: SkBuff, m: memoryview) -> int:
    """The queue one XPS map ``m`` ([len, queue, ...]) picks for ``skb``, or
    -1 (empty, none of the skb's class, or beyond real_num_tx_queues)."""
    n = m[0]
    if n == 0:
        return -1
    profile = this.net.profile
    f = dev.f
    if profile.xps_tc and f[_NUM_TC]:
        tc = f[_PRIO_TC + (skb.priority & TC_BITMASK)]
        lo = f[_TC_OFFSET + tc]
        hi = lo + f[_TC_COUNT + tc]
        queues = [q for q in (m[1 + i] for i in range(n)) if lo <= q < hi]
        n = len(queues)
        if n == 0:
            return -1
    else:
        queues = [m[1 + i] for i in range(n)] if n > 1 else [m[1]]
    if n == 1:
        queue_index = queues[0]
    elif profile.tx_hash == "jhash_sk_hash":
        h = __flow_hash_1word(_xps_hash_input(skb))
        queue_index = queues[(h * n) >> 32]
    else:
        queue_index = queues[reciprocal_scale(skb_get_hash(skb), n)]
    if queue_index >= f[_REAL]:
        return -1
    return queue_index


def __skb_tx_hash(dev: NetDevice, skb: SkBuff, num_tx_queues: int) -> int:
    """Hash the flow onto [qoffset, qoffset + qcount) of its traffic class.

    3.13 and 4.19 (profiles without ``tx_hash_rxq_in_tc``): a forwarded skb
    keeps its recorded rx queue, folded onto ``[0, num_tx_queues)`` whatever
    its class (``while (hash >= num_tx_queues) hash -= num_tx_queues``); the
    4.x form read is 4.4-4.14's exported ``__skb_tx_hash``, which 4.19 is
    taken to share.  5.x and later (``tx_hash_rxq_in_tc``): the class comes
    first and the rx queue is folded into it (``if (hash >= qoffset) hash -=
    qoffset; while (hash >= qcount) hash -= qcount; return hash +
    qoffset``), and with ``tx_hash_qcount_fallback`` a class without queues
    hashes over every queue (the kernel also warns, ratelimited; netq does
    not count that message).  Without the fallback a class of no queues
    gives ``qoffset`` (reciprocal_scale by 0); config never builds one.
    """
    f = dev.f
    profile = this.net.profile
    if not profile.tx_hash_rxq_in_tc and skb_rx_queue_recorded(skb):
        h = skb_get_rx_queue(skb)
        while h >= num_tx_queues:
            h -= num_tx_queues
        return h
    qoffset = 0
    qcount = num_tx_queues
    if f[_NUM_TC]:
        tc = f[_PRIO_TC + (skb.priority & TC_BITMASK)]
        qoffset = f[_TC_OFFSET + tc]
        qcount = f[_TC_COUNT + tc]
        if not qcount and profile.tx_hash_qcount_fallback:
            qoffset, qcount = 0, num_tx_queues
    if skb_rx_queue_recorded(skb):  # tx_hash_rxq_in_tc
        h = skb_get_rx_queue(skb)
        if h >= qoffset:
            h -= qoffset
        while h >= qcount:
            h -= qcount
        return h + qoffset
    if profile.tx_hash != "jhash_sk_hash":
        return reciprocal_scale(skb_get_hash(skb), qcount) + qoffset
    h = __flow_hash_1word(_tx_hash_input(skb))
    return ((h * qcount) >> 32) + qoffset


def skb_tx_hash(dev: NetDevice, skb: SkBuff) -> int:
    return __skb_tx_hash(dev, skb, dev.f[_REAL])


def __netdev_pick_tx(dev: NetDevice, skb: SkBuff) -> int:
    """The socket's cached queue if still valid and reordering is not
    allowed; otherwise XPS, else the hash -- cached on the socket only if it
    has a dst (sk_tx_queue_set).

    Up to 6.18 a re-pick stores the new queue only when it differs; 6.19
    (``txq_reselection``) calls sk_tx_queue_set whenever the socket is a full
    socket with a dst, so that a re-pick of the same queue refreshes its
    time stamp (see :func:`~netq.kernel.core.sock.sk_tx_queue_set`).  A
    change of the cached queue is counted in the socket's ``queue_moves``."""
    sk = skb.sk
    net = this.net
    if sk is not None and not net.profile.txq_reselection:
        queue_index = sk.f[_SK_MAP]  # sk_tx_queue_get, inlined: no expiry before 6.19
    else:
        queue_index = sk_tx_queue_get(sk)
    if queue_index < 0 or skb.ooo_okay or queue_index >= dev.f[_REAL]:
        new_index = get_xps_queue(dev, skb)
        if new_index < 0:
            new_index = skb_tx_hash(dev, skb)
        if sk is not None and sk_dst_cached(sk):
            old = sk.f[_SK_MAP]  # the mapping itself, even if it expired
            if old != new_index:
                if old >= 0:
                    sk.f[SOCK.queue_moves] += 1
                sk_tx_queue_set(sk, new_index)
            elif net.profile.txq_reselection:
                sk_tx_queue_set(sk, new_index)
        queue_index = new_index
    return queue_index


def netdev_pick_tx(dev: NetDevice, skb: SkBuff) -> NetdevQueue:
    """Pick the TX queue: the single-queue shortcut, a driver's
    ndo_select_queue, else __netdev_pick_tx; clamp with dev_cap_txqueue."""
    c = this.net.costs.pick_tx_ns
    if c:
        ndelay(c)
    queue_index = 0
    real = dev.f[_REAL]  # read once (nothing orders the kernel's two reads either)
    if real != 1:
        ops = dev.netdev_ops
        if ops.ndo_select_queue is not None:
            queue_index = ops.ndo_select_queue(dev, skb)
        else:
            queue_index = __netdev_pick_tx(dev, skb)
        if queue_index >= real:
            # dev_cap_txqueue (net/core/dev.c), inlined; the kernel also
            # warns "%s selects TX queue %d, but real number of TX queues
            # is %d" (net_warn_ratelimited), netq does not
            queue_index = 0
    # skb_set_queue_mapping and netdev_get_tx_queue, inlined
    skb.queue_mapping = queue_index
    return dev.txqs[queue_index]
