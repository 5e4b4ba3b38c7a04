"""The kernel model's send-buffer rules, TOS map and the driver's TX clean,
called directly (the workers call them; tests/test_nic.py and
tests/test_model_bql.py cover them through the NIC).

- sock_wmem_room: sock_alloc_send_pskb's admission, never past SO_SNDBUF;
- sock_def_write_space: wakes a sleeping CPU once one of its sockets is at
  most half full, and only a sleeping one; a drop in another context
  (sk_dropped -> sk_write_space) does the same;
- eth_tx_clean: frees the ring's oldest descriptors and reports them to BQL;
- eth_tx_wake_queues: wakes a queue the driver stopped once wake_thresh
  descriptors are free, counting tx_restart;
- rt_tos2priority: ip_tos2prio of net/ipv4/route.c.
"""

from __future__ import annotations

from netq.kernel.core.dql import dql_queued
from netq.kernel.core.netdevice import netif_tx_stop_queue
from netq.kernel.core.sock import (
    SKB_TRUESIZE_OVERHEAD,
    sk_dropped,
    sk_wmem_alloc,
    sock_def_write_space,
    sock_wmem_room,
)
from netq.kernel.drivers.ethernet import eth_tx_clean, eth_tx_wake_queues
from netq.kernel.ipv4.route import IP_TOS2PRIO, rt_tos2priority
from netq.kernel.kstructs import NETDEV_QUEUE, QUEUE_STATE_DRV_XOFF, SOCK, SOFTNET
from netq.machine.config import TrafficConfig
from tests.modelutil import config, phys, socks_of

XOFF = 1 << QUEUE_STATE_DRV_XOFF


def _charge(sk, nbytes: int) -> None:
    """What send_one charges: sent skbs' truesize."""
    sk.f[SOCK.sent] += 1
    sk.f[SOCK.sent_bytes] += nbytes


def test_sock_wmem_room_admits_up_to_sndbuf_and_not_a_byte_more(mknet):
    net = mknet(config())
    sk = net.socks[0]
    sndbuf = 4000
    _charge(sk, 1000)
    room = sndbuf - 1000 - SKB_TRUESIZE_OVERHEAD  # the largest skb that still fits
    assert sock_wmem_room(sk, sndbuf, room)
    assert not sock_wmem_room(sk, sndbuf, room + 1)
    assert sock_wmem_room(sk, 0, 10**6)  # netq's "unlimited"
    # the charge freed by a completion makes room again
    sk.f[SOCK.completed] += 1
    sk.f[SOCK.completed_bytes] += 1000
    assert sk_wmem_alloc(sk) == 0 and sock_wmem_room(sk, sndbuf, room + 1000)


def test_sock_def_write_space_wakes_a_sleeper_once_a_socket_is_half_empty(mknet):
    net = mknet(config(cpus=2))
    sk = net.socks[0]
    sndbuf = 4000
    limited = [(0, [(sk, sndbuf)])]
    _charge(sk, 2001)  # more than half full
    net.softnet[0][SOFTNET.wmem_sleeping] = 1
    assert sock_def_write_space(net, limited) == 0
    assert net.softnet[0][SOFTNET.wmem_sleeping] == 1
    sk.f[SOCK.completed_bytes] += 1  # exactly half: sock_writeable
    assert sock_def_write_space(net, limited) == 1
    assert net.softnet[0][SOFTNET.wmem_sleeping] == 0
    assert net.cpu_wake[0].value == 1  # the wait semaphore was posted once
    # nobody sleeps now: no second post
    assert sock_def_write_space(net, limited) == 0 and net.cpu_wake[0].value == 1


def test_a_drop_in_another_context_wakes_the_sockets_sleeping_owner(mknet):
    """kfree_skb -> sock_wfree -> sk_write_space: a free by another CPU or
    by control (qdisc_reset) wakes the owner once its socket is half
    empty; the owner's own drops wake nobody (it runs)."""
    net = mknet(config(cpus=2, traffic_=[TrafficConfig(sockets_per_cpu=1, sndbuf=4000)]))
    sk = socks_of(net, 0)[0]
    assert sk.sndbuf == 4000
    for _ in range(3):
        _charge(sk, 1000)
    net.softnet[0][SOFTNET.wmem_sleeping] = 1
    net.bind_cpu(1)
    sk_dropped(sk, 1000 - SKB_TRUESIZE_OVERHEAD)  # 2000 left: exactly half
    assert net.softnet[0][SOFTNET.wmem_sleeping] == 0 and net.cpu_wake[0].value == 1
    assert sk.f[SOCK.dropped_ctl] == 1 and sk_wmem_alloc(sk) == 2000
    net.bind_cpu(0)
    net.softnet[0][SOFTNET.wmem_sleeping] = 1
    sk_dropped(sk, 1000 - SKB_TRUESIZE_OVERHEAD)
    assert net.softnet[0][SOFTNET.wmem_sleeping] == 1 and net.cpu_wake[0].value == 1
    assert sk.f[SOCK.dropped] == 1


def test_eth_tx_clean_frees_descriptors_and_reports_them_to_bql(mknet):
    net = mknet(config(devices=[phys(ring_size=16, bql=True)]))
    txq = net.txqs[0]
    assert txq.bql
    for i in range(5):
        dql_queued(txq.f, 100)
        txq.ring.produce((0, i, 0, i, 100, 0, 0, 0))
    eth_tx_clean(txq, 3, 300, 10**12, net)
    assert len(txq.ring) == 2 and txq.ring.free() == 14
    assert txq.f[NETDEV_QUEUE.dql_num_completed] == 300


def test_eth_tx_clean_without_bql_only_frees(mknet):
    net = mknet(config(devices=[phys(ring_size=16, bql=False)]))
    txq = net.txqs[0]
    txq.ring.produce((0, 0, 0, 0, 100, 0, 0, 0))
    assert eth_tx_clean(txq, 1, 100, 10**12, net) is False
    assert len(txq.ring) == 0 and txq.f[NETDEV_QUEUE.dql_num_completed] == 0


def test_eth_tx_wake_queues_wakes_a_stopped_queue_with_room(mknet):
    net = mknet(config(devices=[phys(tx_queues=2, ring_size=16, wake_thresh=8)]))
    stopped, running = net.txqs
    for _ in range(9):  # 7 free: below the wake threshold
        stopped.ring.produce((0, 0, 0, 0, 100, 0, 0, 0))
    netif_tx_stop_queue(stopped)
    assert eth_tx_wake_queues(net.txqs, net) == 0
    assert stopped.f[NETDEV_QUEUE.state] & XOFF
    eth_tx_clean(stopped, 1, 100, 10**12, net)  # 8 free
    assert eth_tx_wake_queues(net.txqs, net) == 1
    assert not stopped.f[NETDEV_QUEUE.state] & XOFF
    assert stopped.f[NETDEV_QUEUE.tx_restart] == 1 and running.f[NETDEV_QUEUE.tx_restart] == 0
    assert eth_tx_wake_queues(net.txqs, net) == 0  # a running queue is not woken again


def test_rt_tos2priority_maps_the_tos_bits_through_ip_tos2prio():
    assert len(IP_TOS2PRIO) == 16
    # IPTOS_LOWDELAY 0x10 -> INTERACTIVE, IPTOS_THROUGHPUT 0x08 -> BULK,
    # IPTOS_RELIABILITY 0x04 -> BESTEFFORT, both 0x18 -> INTERACTIVE_BULK
    assert [rt_tos2priority(t) for t in (0x00, 0x10, 0x08, 0x04, 0x18)] == [0, 6, 2, 0, 4]
    # the precedence bits and ECN bits do not change the priority
    assert rt_tos2priority(0xE0 | 0x10 | 0x01) == 6
