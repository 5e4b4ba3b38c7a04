"""TX queue selection: netdev_pick_tx, __netdev_pick_tx, get_xps_queue, skb_tx_hash.

Every expected queue is computed here from first principles with
netq.kernel.core.jhash, not read back from the model:

* profile "3.13" (the seed): ``((u64)jhash_1word(sk_hash, hashrnd) * n) >> 32``
  with 3.13's jhash_1word (``jhash_1word_legacy``: a, b += JHASH_INITVAL,
  c += initval)
* profile "6.18": ``reciprocal_scale(sk_txhash, n)``
"""

from __future__ import annotations

import pytest

from netq.kernel.core.jhash import jhash_1word_legacy, reciprocal_scale
from netq.kernel.core.netdevice import NetDeviceOps
from netq.kernel.drivers.ethernet import eth_start_xmit
from netq.kernel.kstructs import NETDEV, SOCK
from tests.modelutil import (
    config,
    drain,
    phys,
    pick,
    ring_descs,
    socks_of,
    traffic,
    xmit,
)
from workers.nic import Nic


def hash313(net, sk, n: int) -> int:
    """3.13: __flow_hash_1word(sk->sk_hash) scaled onto n."""
    return (jhash_1word_legacy(sk.sk_hash, net.hashrnd) * n) >> 32


def hash618(sk, n: int) -> int:
    """6.18: reciprocal_scale(skb_get_hash(skb), n), skb->hash = sk_txhash."""
    return reciprocal_scale(sk.sk_txhash, n)


def cached(sk) -> int:
    return sk.f[SOCK.sk_tx_queue_mapping]


# -- XPS ------------------------------------------------------------------------------------
def test_xps_one_to_one_each_cpu_keeps_its_own_queue(mknet):
    """With tx-N/xps_cpus = 1<<N every CPU sends on its own queue, whatever
    the flow hash says, and each queue's completions are local to its CPU."""
    xps = {q: format(1 << q, "x") for q in range(4)}
    net = mknet(
        config(
            cpus=4,
            devices=[phys(tx_queues=4, ring_size=64, xps=xps)],
            traffic_=[traffic(sockets_per_cpu=6)],
        )
    )
    for cpu in range(4):
        for sk in socks_of(net, cpu):
            assert pick(net, cpu, sk) == cpu
            xmit(net, cpu, sk)
    for q, txq in enumerate(net.dev_by_name["eth0"].txqs):
        d = ring_descs(txq)
        assert len(d) == 6 and set(d[:, 0].tolist()) == {q}
    nic = Nic(net)
    drain(net, nic)
    from netq.kernel.kstructs import NETDEV_QUEUE

    for txq in net.dev_by_name["eth0"].txqs:
        assert txq.f[NETDEV_QUEUE.nic_packets] == 6
        assert txq.f[NETDEV_QUEUE.completions_local] == 6
        assert txq.f[NETDEV_QUEUE.completions_remote] == 0


def test_xps_mask_in_sysfs_group_format(mknet):
    """xps_cpus takes comma-separated 32-bit hex groups, as sysfs prints them
    (34 CPUs: two groups)."""
    net = mknet(
        config(
            cpus=34,
            devices=[phys(tx_queues=2, xps={0: "00000002,00000000", 1: "00000000,00000001"})],
            traffic_=[traffic(cpus=[0, 33], sockets_per_cpu=2, connected=False)],
        )
    )
    for sk in socks_of(net, 33):
        assert pick(net, 33, sk) == 0
    for sk in socks_of(net, 0):
        assert pick(net, 0, sk) == 1


@pytest.mark.parametrize("profile", ["3.13", "6.18"])
def test_xps_cpu_in_several_masks_picks_by_flow_hash(mknet, profile):
    """A CPU in the masks of tx-0 and tx-1 chooses between them by the flow
    hash scaled onto the map's length; a flow always gets the same one."""
    net = mknet(
        config(
            cpus=2,
            profile=profile,
            devices=[phys(tx_queues=4, xps={0: "1", 1: "1", 2: "2", 3: "2"})],
            traffic_=[traffic(sockets_per_cpu=12, connected=False)],
        )
    )
    seen = {0: set(), 1: set()}
    for cpu, queues in ((0, [0, 1]), (1, [2, 3])):
        for sk in socks_of(net, cpu):
            i = hash313(net, sk, 2) if profile == "3.13" else hash618(sk, 2)
            want = queues[i]
            assert [pick(net, cpu, sk) for _ in range(3)] == [want] * 3
            seen[cpu].add(want)
    # the seed spreads 12 flows over both queues of each CPU
    assert seen == {0: {0, 1}, 1: {2, 3}}


def test_xps_map_naming_queue_beyond_real_num_tx_queues_falls_back_to_hash(mknet):
    """get_xps_queue returns -1 when the map names a queue >= real_num_tx_queues:
    skb_tx_hash over the real queues decides instead."""
    net = mknet(
        config(
            cpus=2,
            devices=[phys(tx_queues=4, real_tx_queues=2, xps={3: "1", 1: "2"})],
            traffic_=[traffic(sockets_per_cpu=8, connected=False)],
        )
    )
    for sk in socks_of(net, 0):
        assert pick(net, 0, sk) == hash313(net, sk, 2)
    for sk in socks_of(net, 1):  # CPU 1's map (tx-1) is valid
        assert pick(net, 1, sk) == 1


def test_no_xps_hashes_flows_over_all_queues_3_13(mknet):
    net = mknet(
        config(
            cpus=1,
            devices=[phys(tx_queues=4)],
            traffic_=[traffic(sockets_per_cpu=16, connected=False)],
        )
    )
    got = [pick(net, 0, sk) for sk in socks_of(net, 0)]
    assert got == [hash313(net, sk, 4) for sk in socks_of(net, 0)]
    assert len(set(got)) > 1


def test_no_xps_hashes_flows_over_all_queues_6_18(mknet):
    net = mknet(
        config(
            cpus=1,
            profile="6.18",
            devices=[phys(tx_queues=4)],
            traffic_=[traffic(sockets_per_cpu=16, connected=False)],
        )
    )
    got = [pick(net, 0, sk) for sk in socks_of(net, 0)]
    assert got == [hash618(sk, 4) for sk in socks_of(net, 0)]
    assert len(set(got)) > 1


# -- the socket's cached queue ------------------------------------------------------------------
def test_connected_socket_caches_its_queue_and_keeps_it_after_migrating(mknet):
    """sk_tx_queue_set() on a socket with a dst: a UDP socket whose thread
    moves to CPU 1 stays on the queue CPU 0's XPS map chose."""
    net = mknet(
        config(
            cpus=2,
            devices=[phys(tx_queues=2, xps={0: "1", 1: "2"})],
            traffic_=[traffic(cpus=[0], sockets_per_cpu=1, connected=True)],
        )
    )
    (sk,) = socks_of(net, 0)
    assert cached(sk) == -1
    assert pick(net, 0, sk) == 0
    assert cached(sk) == 0
    assert pick(net, 1, sk) == 0  # cached: XPS of CPU 1 is not consulted
    assert cached(sk) == 0
    assert sk.f[SOCK.queue_moves] == 0


def test_unconnected_udp_socket_does_not_cache_and_follows_its_cpu(mknet):
    """No dst, no cache: every skb is picked anew, so it follows the CPU's
    XPS queue."""
    net = mknet(
        config(
            cpus=2,
            devices=[phys(tx_queues=2, xps={0: "1", 1: "2"})],
            traffic_=[traffic(cpus=[0], sockets_per_cpu=1, connected=False)],
        )
    )
    (sk,) = socks_of(net, 0)
    assert [pick(net, c, sk) for c in (0, 1, 0, 1)] == [0, 1, 0, 1]
    assert cached(sk) == -1
    assert sk.f[SOCK.queue_moves] == 0


def test_ooo_okay_lets_tcp_cached_queue_move_once_nothing_is_outstanding(mknet):
    """TCP sets ooo_okay when nothing is in flight: only then may the cached
    queue change (and the move is counted in SOCK.queue_moves)."""
    net = mknet(
        config(
            cpus=2,
            devices=[phys(tx_queues=2, xps={0: "1", 1: "2"})],
            traffic_=[traffic(cpus=[0], sockets_per_cpu=1, proto="tcp")],
        )
    )
    (sk,) = socks_of(net, 0)
    dev = net.dev_by_name["eth0"]
    xmit(net, 0, sk)  # first skb: nothing outstanding, picks CPU 0's queue
    assert cached(sk) == 0
    assert sk.outstanding() == 1
    xmit(net, 1, sk)  # thread migrated; skb 0 still in the ring: ooo_okay false
    assert cached(sk) == 0
    assert len(ring_descs(dev.txqs[0])) == 2
    nic = Nic(net)
    drain(net, nic)
    assert sk.outstanding() == 0
    xmit(net, 1, sk)  # now ooo_okay: CPU 1's XPS queue
    assert cached(sk) == 1
    assert sk.f[SOCK.queue_moves] == 1
    assert len(ring_descs(dev.txqs[1])) == 1
    drain(net, nic)
    from netq.kernel.kstructs import NIC

    assert net.nic[NIC.reorders] == 0 and net.nic[NIC.reorders_moved] == 0
    assert net.nic[NIC.flow_queue_changes] == 1


def test_udp_never_sets_ooo_okay_so_cached_queue_never_moves(mknet):
    net = mknet(
        config(
            cpus=2,
            devices=[phys(tx_queues=2, xps={0: "1", 1: "2"})],
            traffic_=[traffic(cpus=[0], sockets_per_cpu=1, proto="udp")],
        )
    )
    (sk,) = socks_of(net, 0)
    xmit(net, 0, sk)
    drain(net, Nic(net))
    assert sk.outstanding() == 0
    xmit(net, 1, sk)
    assert cached(sk) == 0
    assert sk.f[SOCK.queue_moves] == 0


def test_cached_queue_beyond_real_num_tx_queues_is_repicked(mknet):
    """ethtool -L lowers real_num_tx_queues: a socket's cached queue that no
    longer exists is re-picked (XPS names a gone queue too, so: the hash) and
    the new choice is cached."""
    net = mknet(
        config(
            cpus=1,
            devices=[phys(tx_queues=4, xps={3: "1"})],
            traffic_=[traffic(sockets_per_cpu=4, connected=True)],
        )
    )
    dev = net.dev_by_name["eth0"]
    for sk in socks_of(net, 0):
        assert pick(net, 0, sk) == 3
        assert cached(sk) == 3
    dev.f[NETDEV.real_num_tx_queues] = 2
    for sk in socks_of(net, 0):
        want = hash313(net, sk, 2)
        assert pick(net, 0, sk) == want
        assert cached(sk) == want


# -- traffic classes -------------------------------------------------------------------------
def test_num_tc_keeps_the_hash_within_the_class_queues(mknet):
    """mqprio-like 2 classes: tc0 = queues 0-3, tc1 = queues 4-7; priority 5
    maps to tc1, so its flows hash onto [4, 8) only."""
    prio_tc = [0] * 16
    prio_tc[5] = 1
    net = mknet(
        config(
            cpus=1,
            devices=[phys(tx_queues=8, num_tc=2, tc_to_txq=[[4, 0], [4, 4]], prio_tc_map=prio_tc)],
            traffic_=[
                traffic(sockets_per_cpu=8, connected=False, priority=5),
                traffic(sockets_per_cpu=8, connected=False, priority=0),
            ],
        )
    )
    socks = socks_of(net, 0)
    hi, lo = socks[:8], socks[8:]
    got_hi = [pick(net, 0, sk) for sk in hi]
    got_lo = [pick(net, 0, sk) for sk in lo]
    assert got_hi == [hash313(net, sk, 4) + 4 for sk in hi]
    assert got_lo == [hash313(net, sk, 4) for sk in lo]
    assert all(4 <= q < 8 for q in got_hi) and all(0 <= q < 4 for q in got_lo)


def test_num_tc_class_with_uneven_range_6_18(mknet):
    prio_tc = [0] * 16
    prio_tc[3] = 1
    net = mknet(
        config(
            cpus=1,
            profile="6.18",
            devices=[phys(tx_queues=8, num_tc=2, tc_to_txq=[[5, 0], [3, 5]], prio_tc_map=prio_tc)],
            traffic_=[traffic(sockets_per_cpu=8, connected=False, priority=3)],
        )
    )
    for sk in socks_of(net, 0):
        assert pick(net, 0, sk) == hash618(sk, 3) + 5


# -- forwarded skbs: skb_rx_queue_recorded ---------------------------------------------------------
def test_recorded_rx_queue_is_folded_onto_tx_queues_3_13(mknet):
    """3.13: a forwarded skb's rx queue is the tx queue, folded into range
    (rx 6 on 4 queues -> 2), before and regardless of num_tc."""
    net = mknet(
        config(
            cpus=1,
            devices=[phys(tx_queues=4)],
            traffic_=[traffic(sockets_per_cpu=4, connected=False, rx_queue=6)],
        )
    )
    assert [pick(net, 0, sk) for sk in socks_of(net, 0)] == [2, 2, 2, 2]
    assert [pick(net, 0, sk, rx_queue=1) for sk in socks_of(net, 0)] == [1, 1, 1, 1]


@pytest.mark.parametrize("profile", ["3.13", "4.19"])
def test_recorded_rx_queue_ignores_traffic_class_3_13(mknet, profile):
    """3.13 and 4.19 (no tx_hash_rxq_in_tc): the rx queue is folded over
    every TX queue before the traffic class is looked at."""
    prio_tc = [1] * 16
    net = mknet(
        config(
            cpus=1,
            profile=profile,
            devices=[phys(tx_queues=8, num_tc=2, tc_to_txq=[[4, 0], [4, 4]], prio_tc_map=prio_tc)],
            traffic_=[traffic(sockets_per_cpu=2, connected=False, rx_queue=1)],
        )
    )
    assert [pick(net, 0, sk) for sk in socks_of(net, 0)] == [1, 1]
    # rx 2 stays 2, in tc0's range although the skb is in tc1 (5.x+: 6)
    assert [pick(net, 0, sk, rx_queue=2) for sk in socks_of(net, 0)] == [2, 2]


def test_recorded_rx_queue_within_traffic_class_6_18(mknet):
    """6.18: the rx queue is folded into the class's [offset, offset+count)."""
    prio_tc = [1] * 16
    net = mknet(
        config(
            cpus=1,
            profile="6.18",
            devices=[phys(tx_queues=8, num_tc=2, tc_to_txq=[[4, 0], [2, 4]], prio_tc_map=prio_tc)],
            traffic_=[traffic(sockets_per_cpu=1, connected=False, rx_queue=1)],
        )
    )
    (sk,) = socks_of(net, 0)
    # rx 1 < offset 4: not reduced by the offset; 1 < count 2 -> 1 + 4
    assert pick(net, 0, sk) == 5
    # rx 7 >= 4 -> 3; 3 >= 2 -> 1; + 4
    assert pick(net, 0, sk, rx_queue=7) == 5
    # rx 6 -> 2 -> 0 -> 4
    assert pick(net, 0, sk, rx_queue=6) == 4


def test_recorded_rx_queue_without_tc_6_18(mknet):
    net = mknet(
        config(
            cpus=1,
            profile="6.18",
            devices=[phys(tx_queues=4)],
            traffic_=[traffic(sockets_per_cpu=1, connected=False, rx_queue=9)],
        )
    )
    (sk,) = socks_of(net, 0)
    assert pick(net, 0, sk) == 1


def test_xps_wins_over_recorded_rx_queue(mknet):
    net = mknet(
        config(
            cpus=1,
            devices=[phys(tx_queues=4, xps={3: "1"})],
            traffic_=[traffic(sockets_per_cpu=1, connected=False, rx_queue=1)],
        )
    )
    (sk,) = socks_of(net, 0)
    assert pick(net, 0, sk) == 3


def _rxqs_net(mknet, profile: str, sk_rx_queue: int):
    """4 TX queues, 4 RX queues; CPU 0's xps_cpus map says tx-0, the
    xps_rxqs maps say rx-r -> tx-(3-r); one unconnected socket that
    received on ``sk_rx_queue``."""
    return mknet(
        config(
            cpus=1,
            profile=profile,
            devices=[
                phys(
                    tx_queues=4,
                    rx_queues=4,
                    xps={0: "1"},
                    xps_rxqs={3 - r: format(1 << r, "x") for r in range(4)},
                )
            ],
            traffic_=[traffic(sockets_per_cpu=1, connected=False, sk_rx_queue=sk_rx_queue)],
        )
    )


@pytest.mark.parametrize("rxq", [0, 1, 2, 3])
def test_xps_rxqs_picks_by_the_sockets_rx_queue_before_the_cpu_map_6_18(mknet, rxq):
    """4.18+: get_xps_queue tries the map of the RX queue the socket
    received on (sk_rx_queue_mapping) first."""
    net = _rxqs_net(mknet, "6.18", rxq)
    (sk,) = socks_of(net, 0)
    assert pick(net, 0, sk) == 3 - rxq


def test_xps_rxqs_without_a_recorded_rx_queue_falls_back_to_the_cpu_map(mknet):
    net = _rxqs_net(mknet, "6.18", -1)
    (sk,) = socks_of(net, 0)
    assert pick(net, 0, sk) == 0


def test_xps_rxqs_map_of_a_queue_beyond_real_num_tx_queues_falls_back(mknet):
    """An rxqs map naming a queue >= real_num_tx_queues gives -1, and the CPU
    map decides (__get_xps_queue_idx's range check)."""
    net = mknet(
        config(
            cpus=1,
            profile="6.18",
            devices=[phys(tx_queues=4, real_tx_queues=2, xps={1: "1"}, xps_rxqs={3: "1"})],
            traffic_=[traffic(sockets_per_cpu=1, connected=False, sk_rx_queue=0)],
        )
    )
    (sk,) = socks_of(net, 0)
    assert pick(net, 0, sk) == 1


def test_xps_rxqs_sysfs_format_round_trips(mknet):
    from netq.kernel.core.xps import xps_rxqs_show, xps_rxqs_store

    net = _rxqs_net(mknet, "4.19", 0)
    dev = net.dev_by_name["eth0"]
    assert [xps_rxqs_show(net, dev, q) for q in range(4)] == ["8", "4", "2", "1"]
    (sk,) = socks_of(net, 0)
    assert pick(net, 0, sk) == 3
    xps_rxqs_store(net, dev, 3, "0")  # rx-0's sockets no longer to tx-3
    assert [xps_rxqs_show(net, dev, q) for q in range(4)] == ["8", "4", "2", "0"]
    assert xps_rxqs_show(net, dev, 3) == "0"
    assert pick(net, 0, sk) == 0  # rx-0's map is empty: the CPU's map decides


@pytest.mark.parametrize(
    "profile,device,field",
    [
        ("3.13", {"xps_rxqs": {0: "1"}}, "xps_rxqs"),
        ("6.18", {"xps_rxqs": {0: "10"}}, "xps_rxqs tx-0"),  # rx-4 of 4 RX queues
        ("6.18", {"xps_rxqs": {9: "1"}}, "xps_rxqs"),
        ("6.18", {"rx_queues": 0}, "rx_queues"),
    ],
)
def test_bad_xps_rxqs_is_refused_naming_the_field(profile, device, field):
    from netq.machine.config import ConfigError

    cfg = config(cpus=1, profile=profile, devices=[phys(tx_queues=4, **device)])
    with pytest.raises(ConfigError) as e:
        cfg.validate()
    assert e.value.field.endswith(field)


# -- the driver's ndo_select_queue and dev_cap_txqueue ---------------------------------------------
def test_ndo_select_queue_priority_hook_replaces_xps_and_socket_cache(mknet):
    """A driver hook decides alone: XPS is not consulted and the socket's
    cache is not written."""
    net = mknet(
        config(
            cpus=1,
            devices=[phys(tx_queues=4, select_queue="priority", xps={0: "1"})],
            traffic_=[traffic(sockets_per_cpu=3, connected=True, priority=6)],
        )
    )
    for sk in socks_of(net, 0):
        assert pick(net, 0, sk) == 6 % 4
        assert pick(net, 0, sk, priority=7) == 3
        assert cached(sk) == -1


def test_dev_cap_txqueue_clamps_an_out_of_range_driver_choice_to_zero(mknet):
    net = mknet(
        config(
            cpus=1,
            devices=[phys(tx_queues=4)],
            traffic_=[traffic(sockets_per_cpu=1, connected=False)],
        )
    )
    dev = net.dev_by_name["eth0"]
    (sk,) = socks_of(net, 0)
    dev.netdev_ops = NetDeviceOps(eth_start_xmit, lambda d, skb: 3)
    assert pick(net, 0, sk) == 3  # the last real queue is kept
    dev.netdev_ops = NetDeviceOps(eth_start_xmit, lambda d, skb: 4)
    assert pick(net, 0, sk) == 0
    dev.netdev_ops = NetDeviceOps(eth_start_xmit, lambda d, skb: 7)
    assert pick(net, 0, sk) == 0
    dev.netdev_ops = NetDeviceOps(eth_start_xmit, lambda d, skb: 2)
    dev.f[NETDEV.real_num_tx_queues] = 2
    assert pick(net, 0, sk) == 0


# -- the single-queue shortcut ----------------------------------------------------------------------
def test_single_queue_device_skips_selection(mknet):
    """real_num_tx_queues == 1: queue 0 without consulting a hook, XPS or the
    socket (whose cache stays unset)."""

    def hook(dev, skb):  # pragma: no cover - must not be called
        raise AssertionError("ndo_select_queue called on a single-queue device")

    net = mknet(
        config(
            cpus=1,
            devices=[phys(tx_queues=4, real_tx_queues=1)],
            traffic_=[traffic(sockets_per_cpu=4, connected=True)],
        )
    )
    dev = net.dev_by_name["eth0"]
    dev.netdev_ops = NetDeviceOps(eth_start_xmit, hook)
    for sk in socks_of(net, 0):
        assert pick(net, 0, sk) == 0
        assert cached(sk) == -1


def test_writing_xps_cpus_at_runtime_moves_unconnected_flows(mknet):
    """xps_cpus_store: CPU 0 leaves tx-0's mask and joins tx-3's; removing a
    queue from a CPU's map moves the last entry into the hole."""
    from netq.kernel.core.xps import xps_cpus_show, xps_cpus_store

    net = mknet(
        config(
            cpus=2,
            devices=[phys(tx_queues=4, xps={0: "1", 1: "1", 2: "1"})],
            traffic_=[traffic(cpus=[0], sockets_per_cpu=4, connected=False)],
        )
    )
    dev = net.dev_by_name["eth0"]
    assert [net.xps[0][0][i] for i in range(4)] == [3, 0, 1, 2]  # len, queues...
    xps_cpus_store(net, dev, 0, "0")
    assert [net.xps[0][0][i] for i in range(3)] == [2, 2, 1]
    assert xps_cpus_show(net, dev, 0) == "0"
    xps_cpus_store(net, dev, 1, "2")
    xps_cpus_store(net, dev, 2, "2")
    xps_cpus_store(net, dev, 3, "3")
    assert net.xps[0][0][0] == 1 and net.xps[0][0][1] == 3
    assert xps_cpus_show(net, dev, 3) == "3"
    for sk in socks_of(net, 0):
        assert pick(net, 0, sk) == 3
    for sk in socks_of(net, 0):  # CPU 1's map is now [1, 2, 3]: by hash
        assert pick(net, 1, sk) == [1, 2, 3][hash313(net, sk, 3)]
