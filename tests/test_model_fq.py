"""fq (net/sched/sch_fq.c, nopacing): per-flow queues served round robin by
byte credit, new flows first, a per-flow limit, and never a bypass.

Packets wait in the qdisc because the queue is stopped by hand; the order in
which the NIC would send them is the order they reach the TX ring once the
queue is woken and NET_TX runs the qdisc.
"""

from __future__ import annotations

import pytest

from netq.kernel.core.dev import dev_close, dev_open, net_tx_action
from netq.kernel.core.netdevice import (
    NET_XMIT_DROP,
    NET_XMIT_SUCCESS,
    netif_tx_stop_queue,
    netif_tx_wake_queue,
)
from netq.kernel.kstructs import FQ_FLOW
from netq.kernel.sched.sch_fq import FQ_FLOW_PLIMIT, FQ_INITIAL_QUANTUM, FQ_QUANTUM, fq_dequeue
from netq.machine.config import ConfigError, CostConfig, DeviceConfig, RunConfig, TrafficConfig
from tests.modelutil import (
    config,
    delivered,
    drain,
    drops,
    phys,
    qdisc_of,
    qf,
    ring_descs,
    sd,
    socks_of,
    traffic,
    xmit,
)
from tests.test_model_invariants import check_identities
from workers.nic import Nic
from workers.supervisor import Supervisor


def _fq_net(mknet, socks: int = 2, ring: int = 256):
    net = mknet(
        config(
            devices=[phys(tx_queues=1, qdisc="fq", ring_size=ring)],
            traffic_=[traffic(sockets_per_cpu=socks, length=1000, sndbuf=0)],
        )
    )
    txq = net.dev_by_name["eth0"].txqs[0]
    return net, txq, qdisc_of(net), socks_of(net, 0)


def _send_order(net, txq) -> list[int]:
    """Wake the queue, run NET_TX; the socket of each skb in ring order."""
    netif_tx_wake_queue(txq)
    while net_tx_action():
        pass
    return [int(r[2]) for r in ring_descs(txq)]


def test_flows_take_turns_by_byte_credit(mknet):
    """20 skbs of 1000 bytes in each of two flows: a new flow's 15140-byte
    initial quantum lets it send 16, then each round's 3028 bytes about 3;
    a flow out of credit goes behind the other (old_flows)."""
    net, txq, q, (a, b) = _fq_net(mknet)
    netif_tx_stop_queue(txq)
    for sk in (a,) * 20 + (b,) * 20:
        assert xmit(net, 0, sk) == NET_XMIT_SUCCESS
    assert qf(q, "qlen") == 40 and qf(q, "bypass") == 0
    order = _send_order(net, txq)
    A, B = a.id, b.id
    assert order == [A] * 16 + [B] * 16 + [A] * 3 + [B] * 3 + [A] + [B]
    assert FQ_INITIAL_QUANTUM == 10 * 1514 and FQ_QUANTUM == 2 * 1514
    # the run stopped when qlen reached 0 (3.13); the next dequeue finds the
    # emptied flows and detaches them
    assert fq_dequeue(q) is None
    assert all(fl[FQ_FLOW.list] == 0 for fl in q.flows)
    check_identities(net, "after the run")


def test_a_new_flow_goes_before_backlogged_old_flows(mknet):
    """Flow A used up its initial credit and sits on old_flows; flow C,
    arriving later, is on new_flows and is served first."""
    net, txq, q, (a, c) = _fq_net(mknet, ring=16)
    netif_tx_stop_queue(txq)
    for _ in range(40):
        xmit(net, 0, a)
    order = _send_order(net, txq)  # the ring (16) fills with A's first 16 and stops
    assert order == [a.id] * 16 and q.flows[a.id][FQ_FLOW.credit] <= 0
    Nic(net).poll()  # the ring empties; its wake is what the next xmit's softirq runs
    netif_tx_stop_queue(txq)
    xmit(net, 0, c)
    order = _send_order(net, txq)
    assert order[0] == c.id


def test_a_full_flow_drops_with_its_own_reason(mknet):
    net, txq, q, (a, b) = _fq_net(mknet)
    netif_tx_stop_queue(txq)
    for _ in range(FQ_FLOW_PLIMIT):
        assert xmit(net, 0, a) == NET_XMIT_SUCCESS
    assert xmit(net, 0, a) == NET_XMIT_DROP
    assert xmit(net, 0, b) == NET_XMIT_SUCCESS  # another flow still gets in
    assert drops(net, "FQ_FLOW_LIMIT") == 1 and drops(net, "QDISC_DROP") == 0
    assert qf(q, "fq_flows_plimit") == 1 and qf(q, "drops") == 1
    check_identities(net, "after the drop")


def test_fq_never_bypasses(mknet):
    """Idle and empty, fq still enqueues: it has no TCQ_F_CAN_BYPASS."""
    net, _txq, q, (a, _b) = _fq_net(mknet)
    for _ in range(5):
        xmit(net, 0, a)
    assert qf(q, "bypass") == 0 and sd(net, 0, "enqueued") == 5
    drain(net, Nic(net))
    assert delivered(net) == 5


def test_dev_close_purges_the_flows_and_dev_open_starts_afresh(mknet):
    net, txq, q, (a, b) = _fq_net(mknet)
    netif_tx_stop_queue(txq)
    for sk in (a, b, a):
        xmit(net, 0, sk)
    net.bind_cpu(net.control_cpu)
    assert dev_close(net.devices[0]) == 3
    assert drops(net, "QDISC_RESET") == 3
    assert all(fl[FQ_FLOW.list] == 0 and fl[FQ_FLOW.credit] == FQ_INITIAL_QUANTUM for fl in q.flows)
    dev_open(net.devices[0])
    net.bind_cpu(0)
    xmit(net, 0, b)
    drain(net, Nic(net))
    assert delivered(net) == 1
    check_identities(net, "after reopen")


def test_fq_needs_a_profile_that_has_it():
    cfg = RunConfig(profile="2.6.37", devices=[DeviceConfig(qdisc="fq")])
    with pytest.raises(ConfigError, match="qdisc"):
        cfg.validate()


@pytest.mark.slow
@pytest.mark.parametrize("strategy,profile", [("busylock", "6.18"), ("defer", "6.19")])
def test_fq_conserves_packets_over_real_processes(strategy, profile):
    """4 CPUs, 2 flows each, a tiny ring and BQL: every skb is delivered or
    dropped for a named reason, and every flow arrives in order."""
    cfg = RunConfig(
        cpus=4,
        packets=4000,
        seed=3,
        profile=profile,
        strategy=strategy,
        costs=CostConfig(dequeue_ns=1000),
        devices=[DeviceConfig(tx_queues=1, ring_size=16, qdisc="fq")],
        traffic=[TrafficConfig(sockets_per_cpu=2, length=1000)],
    )
    cfg.stall_timeout = 5.0
    out = Supervisor(cfg).run()
    res = out.result
    assert out.status == "ok" and res["invariants_ok"], out.faults
    assert res["generated"] == res["delivered"] + sum(res["drops"].values())
    assert res["nic"]["reorders"] == 0
    (q,) = [r for r in res["qdiscs"] if r["kind"] == "fq"]
    assert q["bypass"] == 0 and q["fq"]["flows_plimit"] == res["drops"]["FQ_FLOW_LIMIT"]
