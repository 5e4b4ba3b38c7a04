"""TX queue selection: netdev_pick_tx and friends (net/core/flow_dissector.c in
3.13; net/core/dev.c in later kernels), skb_tx_hash (include/linux/netdevice.h).

Two hashing generations, chosen by the profile (:mod:`netq.kernel.profiles`):

* ``jhash_sk_hash`` (3.13, the seed): ``hash = sk->sk_hash`` (else the
  protocol), ``__flow_hash_1word(hash) = jhash_1word(hash, hashrnd)`` with a
  per-boot random ``hashrnd``, then ``((u64)hash * qcount) >> 32``.
* ``skb_get_hash`` (4.2+): ``reciprocal_scale(skb_get_hash(skb), qcount)``;
  a locally generated skb carries its socket's random ``sk_txhash``.

``hashrnd`` and every ``sk_txhash`` come from the run's seed (``--seed``), so
a seeded run picks the same queues every time.
"""

from __future__ import annotations

from ..kstructs import NETDEV, SOCK
from .jhash import jhash_1word, reciprocal_scale
from .netdevice import NetDevice, NetdevQueue, dev_cap_txqueue, netdev_get_tx_queue
from .percpu import this
from .skbuff import SkBuff, skb_get_rx_queue, skb_rx_queue_recorded, skb_set_queue_mapping
from .sock import sk_dst_cached, sk_tx_queue_get, sk_tx_queue_set

_REAL = NETDEV.real_num_tx_queues
_NUM_TC = NETDEV.num_tc
_M32 = 0xFFFFFFFF


def __flow_hash_1word(a: int) -> int:
    """jhash_1word(a, hashrnd) with this boot's (run's) hashrnd.

    Memoised per value: the result depends only on ``a`` and hashrnd, and
    jhash in Python costs microseconds.
    """
    cache = this.net.flow_hash_cache
    h = cache.get(a)
    if h is None:
        h = jhash_1word(a, this.net.hashrnd)
        cache[a] = h
    return h


def skb_get_hash(skb: SkBuff) -> int:
    """The skb's flow hash (4.2+): the socket's sk_txhash for local traffic."""
    return skb.hash


def _tx_hash_input(skb: SkBuff) -> int:
    sk = skb.sk
    if sk is not None and sk.sk_hash:
        return sk.sk_hash
    return skb.protocol


def get_xps_queue(dev: NetDevice, skb: SkBuff) -> int:
    """The queue this CPU's XPS map picks, or -1 (no map for this CPU, or it
    names a queue >= real_num_tx_queues).  A CPU in several queues' masks
    picks among them by flow hash, as the kernel does.  4.x+ also keys maps by
    traffic class and by receive queue (xps_rxqs); netq models xps_cpus maps
    only."""
    net = this.net
    m = net.xps[dev.index][this.cpu]
    n = m[0]
    if n == 0:
        return -1
    if n == 1:
        queue_index = m[1]
    elif net.profile.tx_hash == "jhash_sk_hash":
        h = __flow_hash_1word(_tx_hash_input(skb))
        queue_index = m[1 + ((h * n) >> 32)]
    else:
        queue_index = m[1 + reciprocal_scale(skb_get_hash(skb), n)]
    if queue_index >= dev.f[_REAL]:
        return -1
    return queue_index


def __skb_tx_hash(dev: NetDevice, skb: SkBuff, num_tx_queues: int) -> int:
    """Hash the flow onto [qoffset, qoffset + qcount) of its traffic class."""
    f = dev.f
    qoffset = 0
    qcount = num_tx_queues
    modern = this.net.profile.tx_hash != "jhash_sk_hash"
    if not modern and skb_rx_queue_recorded(skb):
        # 3.13: a forwarded skb keeps its rx queue number, folded into range
        h = skb_get_rx_queue(skb)
        while h >= num_tx_queues:
            h -= num_tx_queues
        return h
    if f[_NUM_TC]:
        tc = f[NETDEV.prio_tc_map + (skb.priority & 15)]
        qoffset = f[NETDEV.tc_offset + tc]
        qcount = f[NETDEV.tc_count + tc]
        if modern and not qcount:
            qoffset, qcount = 0, num_tx_queues
    if modern:
        if skb_rx_queue_recorded(skb):
            h = skb_get_rx_queue(skb)
            if h >= qoffset:
                h -= qoffset
            while h >= qcount:
                h -= qcount
            return h + qoffset
        return reciprocal_scale(skb_get_hash(skb), qcount) + qoffset
    h = __flow_hash_1word(_tx_hash_input(skb))
    return ((h * qcount) >> 32) + qoffset


def skb_tx_hash(dev: NetDevice, skb: SkBuff) -> int:
    return __skb_tx_hash(dev, skb, dev.f[_REAL])


def __netdev_pick_tx(dev: NetDevice, skb: SkBuff) -> int:
    """The socket's cached queue if still valid and reordering is not
    allowed; otherwise XPS, else the hash — cached on the socket only if it
    has a dst (sk_tx_queue_set)."""
    sk = skb.sk
    queue_index = sk_tx_queue_get(sk)
    if queue_index < 0 or skb.ooo_okay or queue_index >= dev.f[_REAL]:
        new_index = get_xps_queue(dev, skb)
        if new_index < 0:
            new_index = skb_tx_hash(dev, skb)
        if queue_index != new_index and sk is not None and sk_dst_cached(sk):
            if queue_index >= 0:
                sk.f[SOCK.queue_moves] += 1
            sk_tx_queue_set(sk, new_index)
        queue_index = new_index
    return queue_index


def netdev_pick_tx(dev: NetDevice, skb: SkBuff) -> NetdevQueue:
    """Pick the TX queue: the single-queue shortcut, a driver's
    ndo_select_queue, else __netdev_pick_tx; clamp with dev_cap_txqueue."""
    queue_index = 0
    if dev.f[_REAL] != 1:
        ops = dev.netdev_ops
        if ops.ndo_select_queue is not None:
            queue_index = ops.ndo_select_queue(dev, skb)
        else:
            queue_index = __netdev_pick_tx(dev, skb)
        queue_index = dev_cap_txqueue(dev, queue_index)
    skb_set_queue_mapping(skb, queue_index)
    return netdev_get_tx_queue(dev, queue_index)
