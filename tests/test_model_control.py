"""Configuration changes while traffic flows: ip link set down/up, ethtool -L.

Acting as the control process (rtnl), netq deactivates a device's qdiscs as
dev_deactivate does and changes real_num_tx_queues as netif_set_real_num_tx_queues
does.  Every skb still ends up delivered or dropped for a named reason.
"""

from __future__ import annotations

from netq.kernel.core.dev import dev_close, dev_open, netif_set_real_num_tx_queues
from netq.kernel.core.netdevice import netif_tx_start_queue, netif_tx_stop_queue
from netq.kernel.kstructs import NETDEV_QUEUE, NIC, QDISC, SOCK
from netq.kernel.sched.sch_generic import qdisc_state_deactivated
from netq.machine.invariants import check_all
from tests.modelutil import config, drain, drops, phys, socks_of, traffic, xmit
from workers.nic import Nic


def _ok(net):
    bad = [c for c in check_all(net, final=True) if not c.ok]
    assert not bad, bad


def test_dev_close_purges_deactivates_and_drops_later_skbs(mknet):
    net = mknet(config(cpus=1, devices=[phys(tx_queues=1)], traffic_=[traffic(sockets_per_cpu=1)]))
    dev = net.devices[0]
    (sk,) = socks_of(net, 0)
    txq = dev.txqs[0]
    q = net.qdiscs[txq.f[NETDEV_QUEUE.qdisc]]
    netif_tx_stop_queue(txq)  # the queue is stopped: skbs wait in the qdisc
    for _ in range(5):
        xmit(net, 0, sk)
    assert q.f[QDISC.qlen] == 5
    net.bind_cpu(net.control_cpu)
    assert dev_close(dev) == 5
    assert qdisc_state_deactivated(q) and not dev.is_up()
    assert drops(net, "QDISC_RESET") == 5
    assert sk.f[SOCK.dropped_ctl] == 5
    # later skbs meet noop_qdisc
    xmit(net, 0, sk)
    assert drops(net, "NOOP_QDISC") == 1
    net.bind_cpu(net.control_cpu)
    dev_open(dev)
    assert not qdisc_state_deactivated(q)
    net.bind_cpu(0)
    netif_tx_start_queue(txq)
    xmit(net, 0, sk)
    drain(net, Nic(net))
    assert net.nic[NIC.delivered] == 1
    _ok(net)


def test_ethtool_L_shrink_purges_vanished_queues_and_sockets_repick(mknet):
    net = mknet(
        config(
            cpus=1,
            devices=[phys(tx_queues=4)],
            traffic_=[traffic(sockets_per_cpu=8, connected=True)],
        )
    )
    dev = net.devices[0]
    socks = socks_of(net, 0)
    for txq in dev.txqs:
        netif_tx_stop_queue(txq)
    for sk in socks:
        xmit(net, 0, sk)
    cached = {sk.id: sk.f[SOCK.sk_tx_queue_mapping] for sk in socks}
    high = [sk for sk in socks if cached[sk.id] >= 2]
    assert high, "the seed should hash some sockets onto queues 2-3"
    net.bind_cpu(net.control_cpu)
    netif_set_real_num_tx_queues(dev, 2)
    assert dev.real_num_tx_queues == 2
    assert drops(net, "QDISC_RESET") == len(high)
    net.bind_cpu(0)
    for txq in dev.txqs:
        netif_tx_start_queue(txq)
    for sk in socks:
        xmit(net, 0, sk)
    assert all(sk.f[SOCK.sk_tx_queue_mapping] < 2 for sk in socks)
    assert all(sk.f[SOCK.queue_moves] == 1 for sk in high)
    drain(net, Nic(net))
    _ok(net)
