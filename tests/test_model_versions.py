"""Each kernel generation as that kernel runs it: queue selection, hashing,
fq's flow keys, pfifo_fast's NOLOCK bands, the 6.19 queue re-selection.

Expected values are computed from the kernel's C, never read back from the
model: the 3.13 hash vectors below were printed by the throwaway C program
described in tests/test_jhash.py (3.13's jhash_3words/1word transcribed,
``jhash_1word((u32)(__force u16)htons(ETH_P_IP), hashrnd)`` and
``((u64)hash * n) >> 32`` on x86-64); the rest are counts and orders.
"""

from __future__ import annotations

import pytest

from netq.kernel.core import sock as sock_mod
from netq.kernel.core.flow_dissector import netdev_pick_tx, skb_protocol_u16
from netq.kernel.core.jhash import jhash_1word_legacy, reciprocal_scale
from netq.kernel.core.netdevice import (
    NET_XMIT_DROP,
    NET_XMIT_SUCCESS,
    netif_tx_stop_queue,
)
from netq.kernel.core.skbuff import SkBuff
from netq.kernel.kstructs import NETDEV, QDISC, SOCK, TCQ_F_NOLOCK
from netq.kernel.profiles import PROFILES
from netq.kernel.sched.sch_fq import FQ_ORPHAN_MASK, fq_classify
from netq.machine.config import ConfigError
from tests.modelutil import config, drain, drops, phys, qdisc_of, qf, socks_of, traffic, xmit
from workers.nic import Nic


def _socketless(net, dev, cpu: int = 0, rxhash: int = 0, priority: int = 0) -> SkBuff:
    """An skb without a socket (forwarded, or a kernel skb) made on ``cpu``."""
    net.bind_cpu(cpu)
    skb = SkBuff(cpu, 0, None, 0, 100, priority, 0, dev)
    skb.hash = rxhash
    return skb


def _set_hashrnd(net, rnd: int) -> None:
    net.hashrnd = rnd
    net.flow_hash_cache.clear()


# -- 3.13's hashes ---------------------------------------------------------------------------
#: (hashrnd, queue on 4 queues, queue on 8 queues) for jhash_1word(0x0008, hashrnd)
SKB_TX_HASH_313 = [(0x00000000, 3, 7), (0x12345678, 1, 2), (0xDEADBEEF, 3, 7)]


@pytest.mark.parametrize(("rnd", "on4", "on8"), SKB_TX_HASH_313)
def test_socketless_skb_hashes_its_protocol_as_a_little_endian_u16_3_13(mknet, rnd, on4, on8):
    """3.13's __skb_tx_hash: no socket hash, so ``(__force u16)skb->protocol``
    (ETH_P_IP, big-endian in the skb, reads 0x0008), through 3.13's
    jhash_1word, scaled by ``((u64)hash * qcount) >> 32``."""
    net = mknet(config(cpus=1, profile="3.13", devices=[phys(tx_queues=8)]))
    dev = net.dev_by_name["eth0"]
    _set_hashrnd(net, rnd)
    skb = _socketless(net, dev)
    assert skb_protocol_u16(skb) == 0x0008
    assert netdev_pick_tx(dev, skb).qindex == on8
    assert on8 == (jhash_1word_legacy(0x0008, rnd) * 8) >> 32
    dev.f[NETDEV.real_num_tx_queues] = 4
    assert netdev_pick_tx(dev, _socketless(net, dev)).qindex == on4


#: (hashrnd, index into a 4-queue XPS map) for jhash_1word(0x0008 ^ 0x9E3779B9, hashrnd)
XPS_RXHASH_313 = [(0x00000000, 2), (0x12345678, 2), (0xDEADBEEF, 0)]


@pytest.mark.parametrize(("rnd", "index"), XPS_RXHASH_313)
def test_xps_hashes_protocol_xor_rxhash_3_13(mknet, rnd, index):
    """3.13's get_xps_queue: a CPU in four queues' masks picks by
    ``jhash_1word((__force u16)skb->protocol ^ skb->rxhash, hashrnd)``; the
    skb_tx_hash fallback (no XPS) does not XOR the rxhash."""
    net = mknet(
        config(
            cpus=1,
            profile="3.13",
            devices=[phys(tx_queues=4, xps={0: "1", 1: "1", 2: "1", 3: "1"})],
        )
    )
    dev = net.dev_by_name["eth0"]
    _set_hashrnd(net, rnd)
    assert netdev_pick_tx(dev, _socketless(net, dev, rxhash=0x9E3779B9)).qindex == index
    # rxhash 0: the protocol alone, as in the skb_tx_hash vectors above
    on4 = {r: q for r, q, _ in SKB_TX_HASH_313}[rnd]
    assert netdev_pick_tx(dev, _socketless(net, dev)).qindex == on4


def test_the_3_13_profiles_use_the_3_x_jhash_seeding():
    assert PROFILES["3.13"].jhash_legacy_seed and PROFILES["2.6.37"].jhash_legacy_seed
    assert not any(PROFILES[p].jhash_legacy_seed for p in ("4.19", "6.18", "6.19"))


# -- XPS by traffic class (4.10+) --------------------------------------------------------------
@pytest.mark.parametrize("profile", ["3.13", "4.19", "6.18"])
def test_xps_map_is_per_traffic_class_from_4_10(mknet, profile):
    """CPU 0 is in every queue's mask; priority 5 is tc1 = queues 2-3.  From
    4.10 the CPU's map for tc1 holds queues 2 and 3 only; 3.13's one map per
    CPU holds all four, so its flows may leave their class."""
    prio_tc = [0] * 16
    prio_tc[5] = 1
    net = mknet(
        config(
            cpus=1,
            profile=profile,
            devices=[
                phys(
                    tx_queues=4,
                    num_tc=2,
                    tc_to_txq=[[2, 0], [2, 2]],
                    prio_tc_map=prio_tc,
                    xps={0: "1", 1: "1", 2: "1", 3: "1"},
                )
            ],
            traffic_=[traffic(sockets_per_cpu=12, connected=False, priority=5)],
        )
    )
    socks = socks_of(net, 0)
    got = [netdev_pick_tx(sk_dev(net), skb_of(net, sk)).qindex for sk in socks]
    if profile == "3.13":
        want = [(jhash_1word_legacy(sk.sk_hash, net.hashrnd) * 4) >> 32 for sk in socks]
        assert got == want
        assert any(q < 2 for q in got)  # the seed sends some flows out of tc1
    else:
        assert got == [2 + reciprocal_scale(sk.sk_txhash, 2) for sk in socks]
        assert set(got) == {2, 3}


def sk_dev(net):
    return net.dev_by_name["eth0"]


def skb_of(net, sk) -> SkBuff:
    net.bind_cpu(sk.cpu)
    return SkBuff(sk.cpu, 0, sk, 0, 100, 5, 0, sk_dev(net))


# -- 6.19: ooo_okay for every protocol, queue re-selection after txq_reselection_ms ----------
def _udp_connected(mknet, profile: str, resel: int):
    net = mknet(
        config(
            cpus=2,
            profile=profile,
            txq_reselection_ms=resel,
            devices=[phys(tx_queues=2, xps={0: "1", 1: "2"})],
            traffic_=[traffic(cpus=[0], sockets_per_cpu=1, proto="udp", connected=True)],
        )
    )
    (sk,) = socks_of(net, 0)
    return net, sk


@pytest.mark.parametrize(("profile", "moves"), [("6.18", 0), ("6.19", 1)])
def test_udp_sets_ooo_okay_from_skb_set_owner_w_6_19(mknet, profile, moves):
    """6.19's skb_set_owner_w sets ooo_okay for every protocol when nothing
    of the socket is in a host queue: a connected UDP flow whose sender moved
    to CPU 1 follows CPU 1's XPS queue once its skbs are sent; 6.18 keeps
    the queue cached by the first skb (only TCP sets ooo_okay)."""
    net, sk = _udp_connected(mknet, profile, resel=0)  # no re-selection by age
    xmit(net, 0, sk)
    assert sk.f[SOCK.sk_tx_queue_mapping] == 0
    xmit(net, 1, sk)  # skb 0 still in the ring: not ooo_okay in either
    assert sk.f[SOCK.sk_tx_queue_mapping] == 0
    drain(net, Nic(net))
    xmit(net, 1, sk)
    assert sk.f[SOCK.sk_tx_queue_mapping] == moves
    assert sk.f[SOCK.queue_moves] == moves


def test_cached_queue_expires_after_txq_reselection_ms_6_19(mknet, monkeypatch):
    """6.19's sk_tx_queue_get forgets a mapping older than txq_reselection_ms
    (500 ms here) even with skbs in flight; sk_tx_queue_set re-stamps a
    re-picked same queue only once the stamp is older than HZ.  The run's
    clock is replaced by a counter (ktime_get_ns), so no wall time passes."""
    clock = [10 * 10**9]
    monkeypatch.setattr(sock_mod, "ktime_get_ns", lambda: clock[0])
    net, sk = _udp_connected(mknet, "6.19", resel=500)
    ms = 10**6
    xmit(net, 0, sk)
    assert sk.f[SOCK.sk_tx_queue_mapping] == 0
    assert sk.f[SOCK.sk_tx_queue_mapping_ns] == clock[0]
    clock[0] += 400 * ms
    xmit(net, 1, sk)  # migrated, skbs in flight, mapping 400 ms old: kept
    assert sk.f[SOCK.sk_tx_queue_mapping] == 0 and sk.f[SOCK.txq_expired] == 0
    clock[0] += 200 * ms
    xmit(net, 1, sk)  # 600 ms old: expired, CPU 1's XPS queue
    assert sk.f[SOCK.sk_tx_queue_mapping] == 1
    assert sk.f[SOCK.txq_expired] == 1 and sk.f[SOCK.queue_moves] == 1
    stamp = clock[0]
    assert sk.f[SOCK.sk_tx_queue_mapping_ns] == stamp
    clock[0] += 600 * ms
    xmit(net, 1, sk)  # expired again, same queue: stamp 600 ms < HZ, kept
    assert sk.f[SOCK.txq_expired] == 2 and sk.f[SOCK.sk_tx_queue_mapping_ns] == stamp
    clock[0] += 500 * ms
    xmit(net, 1, sk)  # expired, same queue, stamp 1.1 s old: refreshed
    assert sk.f[SOCK.txq_expired] == 3 and sk.f[SOCK.sk_tx_queue_mapping_ns] == clock[0]
    clock[0] += 100 * ms
    xmit(net, 1, sk)
    assert sk.f[SOCK.txq_expired] == 3 and sk.f[SOCK.queue_moves] == 1
    assert sk.outstanding() == 6


@pytest.mark.parametrize(("profile", "resel"), [("6.18", 500), ("6.19", 0)])
def test_no_queue_reselection_before_6_19_or_at_zero(mknet, monkeypatch, profile, resel):
    clock = [10 * 10**9]
    monkeypatch.setattr(sock_mod, "ktime_get_ns", lambda: clock[0])
    net, sk = _udp_connected(mknet, profile, resel=resel)
    xmit(net, 0, sk)
    clock[0] += 5 * 10**9
    xmit(net, 1, sk)
    assert sk.f[SOCK.sk_tx_queue_mapping] == 0
    assert sk.f[SOCK.txq_expired] == 0 and sk.f[SOCK.queue_moves] == 0


def test_sysctls_have_the_kernel_defaults_and_are_checked():
    cfg = config()
    assert (cfg.qdisc_max_burst, cfg.txq_reselection_ms) == (1000, 1000)
    with pytest.raises(ConfigError, match="qdisc_max_burst"):
        config(qdisc_max_burst=0).validate()
    with pytest.raises(ConfigError, match="txq_reselection_ms"):
        config(txq_reselection_ms=-1).validate()


# -- fq: orphans and unconnected sockets by hash -------------------------------------------
def _fq_unconnected(mknet, profile: str):
    net = mknet(
        config(
            cpus=1,
            profile=profile,
            devices=[phys(tx_queues=1, qdisc="fq")],
            traffic_=[traffic(sockets_per_cpu=3, connected=False, length=1000, sndbuf=0)],
        )
    )
    a, b, c = socks_of(net, 0)
    # a and b share bucket 5 (hash & 1023); c is alone in bucket 7
    a.sk_txhash, b.sk_txhash, c.sk_txhash = 0x10005, 0x20005, 0x7
    return net, qdisc_of(net), (a, b, c)


@pytest.mark.parametrize(("profile", "merged"), [("3.13", False), ("4.19", False), ("6.18", True)])
def test_fq_keys_unconnected_sockets_by_hash_bucket(mknet, profile, merged):
    """6.18: unconnected sockets are flows by ``skb_get_hash & orphan_mask``:
    two sockets in one bucket share one flow, its flow_plimit and its
    credit; 3.13 and 4.19 keep one flow per socket."""
    net, q, (a, b, c) = _fq_unconnected(mknet, profile)
    q.f[QDISC.fq_flow_plimit] = 4
    netif_tx_stop_queue(net.dev_by_name["eth0"].txqs[0])
    rcs = [xmit(net, 0, sk) for sk in (a, b, c) * 3]
    if merged:
        assert [len(q.bands[s.id]) for s in (a, b, c)] == [4, 0, 3]
        assert rcs.count(NET_XMIT_DROP) == 2 and drops(net, "FQ_FLOW_LIMIT") == 2
        assert qf(q, "fq_flows_plimit") == 2
    else:
        assert [len(q.bands[s.id]) for s in (a, b, c)] == [3, 3, 3]
        assert rcs == [NET_XMIT_SUCCESS] * 9 and drops(net, "FQ_FLOW_LIMIT") == 0


@pytest.mark.parametrize("profile", ["3.13", "6.18"])
def test_fq_orphans_join_the_flow_of_their_hash_bucket(mknet, profile):
    """An skb without a socket is keyed by its hash & 1023: in 6.18 bucket 5
    is the flow the unconnected sockets a and b use; in 3.13 (sockets are
    their own flows) and for a bucket no socket uses, the orphan flow."""
    net, q, (a, _b, _c) = _fq_unconnected(mknet, profile)
    dev = net.dev_by_name["eth0"]
    orphan = len(q.bands) - 1
    in5 = fq_classify(_socketless(net, dev, rxhash=0x30005), q)
    assert in5 == (a.id if profile == "6.18" else orphan)
    assert fq_classify(_socketless(net, dev, rxhash=0x30009), q) == orphan
    assert FQ_ORPHAN_MASK == 1023


# -- pfifo_fast with TCQ_F_NOLOCK: a tx_queue_len skb_array per band ----------------------------
@pytest.mark.parametrize("profile", ["3.13", "4.19"])
def test_nolock_pfifo_fast_limits_each_band_not_the_qdisc(mknet, profile):
    """tx_queue_len 4, the queue stopped: 4.19's NOLOCK pfifo_fast takes 4
    skbs in each of its three bands (12) and drops the 5th of a band; 3.13's
    locked pfifo_fast drops once 4 skbs are queued in all."""
    net = mknet(
        config(
            cpus=1,
            profile=profile,
            devices=[phys(tx_queues=1, tx_queue_len=4)],
            traffic_=[traffic(sockets_per_cpu=1, sndbuf=0)],
        )
    )
    (sk,) = socks_of(net, 0)
    q = qdisc_of(net)
    netif_tx_stop_queue(net.dev_by_name["eth0"].txqs[0])
    # priority 6 -> band 0, 0 -> band 1, 1 -> band 2 (prio2band)
    rcs = [xmit(net, 0, sk, priority=p) for p in (6, 0, 1) * 5]
    nolock = bool(q.f[QDISC.flags] & TCQ_F_NOLOCK)
    assert nolock == (profile == "4.19")
    if nolock:
        assert [len(r) for r in q.bands] == [4, 4, 4]
        assert rcs[-3:] == [NET_XMIT_DROP] * 3 and drops(net, "QDISC_DROP") == 3
    else:
        assert qf(q, "qlen") == 4  # the first one requeued by the bypass
        assert drops(net, "QDISC_DROP") == 11


# -- a traffic class without queues (the race with an mqprio reconfiguration) -------------------
@pytest.mark.parametrize("profile", ["4.19", "6.18"])
def test_class_without_queues_falls_back_to_every_queue_from_5_x(mknet, profile):
    """dev->num_tc set but tc1's count still 0: 6.18's skb_tx_hash hashes
    over every real queue (the !qcount fallback); 4.19 has no fallback and
    reciprocal_scale(hash, 0) gives tc1's offset."""
    prio_tc = [1] * 16
    net = mknet(
        config(
            cpus=1,
            profile=profile,
            devices=[phys(tx_queues=8, num_tc=2, tc_to_txq=[[4, 0], [4, 4]], prio_tc_map=prio_tc)],
            traffic_=[traffic(sockets_per_cpu=8, connected=False)],
        )
    )
    dev = sk_dev(net)
    dev.f[NETDEV.tc_count + 1] = 0
    socks = socks_of(net, 0)
    got = [netdev_pick_tx(dev, skb_of(net, sk)).qindex for sk in socks]
    if profile == "6.18":
        assert got == [reciprocal_scale(sk.sk_txhash, 8) for sk in socks]
    else:
        assert got == [4] * len(socks)
