"""Helpers for single-process tests of the kernel model (tests/test_model_*.py).

One process plays every emulated CPU in turn (``net.bind_cpu(cpu)``) and the
NIC (``Nic(net).poll()``).  Nothing here changes the model: the helpers only
build a :class:`~netq.machine.net.Net`, make and send skbs with the CPU
worker's own ``workers.cpu.Generator`` (aimed at the socket a test names), and
read counters.

The :func:`mknet` fixture builds nets through the test's ``owner`` (so every
IPC name is unlinked at the end) and, on teardown, drops this process's
references to them before trying ``Net.close()``.
"""

from __future__ import annotations

import time

from netq.kernel.core.dev import net_tx_action
from netq.kernel.core.flow_dissector import netdev_pick_tx
from netq.kernel.core.percpu import this
from netq.kernel.core.skbuff import SkBuff
from netq.kernel.kstructs import (
    DROP,
    MSG_PRINTED,
    MSG_SUPPRESSED,
    NETDEV_QUEUE,
    NIC,
    QDISC,
    SOFTNET,
)
from netq.machine.config import DeviceConfig, RunConfig, TrafficConfig
from netq.machine.net import Net
from workers.cpu import Generator

SEED = 1


# -- configuration --------------------------------------------------------------------------
def phys(name: str = "eth0", **kw) -> DeviceConfig:
    """A physical device with an unlimited wire (deterministic NIC polls) and,
    unless asked, no BQL: most model tests look at the qdisc and the ring
    without a NIC completing in between (BQL has its own tests)."""
    kw.setdefault("bql", False)
    kw.setdefault("line_rate_bps", 0.0)
    kw.setdefault("line_rate_pps", 0.0)
    return DeviceConfig(name=name, kind="phys", **kw)


def vlan(name: str, lower: str, **kw) -> DeviceConfig:
    return DeviceConfig(name=name, kind="vlan", lower=lower, **kw)


def tunnel(name: str, lower: str, **kw) -> DeviceConfig:
    return DeviceConfig(name=name, kind="tunnel", lower=lower, **kw)


def traffic(**kw) -> TrafficConfig:
    return TrafficConfig(**kw)


def config(cpus: int = 1, devices=None, traffic_=None, **kw) -> RunConfig:
    kw.setdefault("seed", SEED)
    return RunConfig(
        cpus=cpus,
        devices=devices if devices is not None else [phys()],
        traffic=traffic_ if traffic_ is not None else [TrafficConfig(sockets_per_cpu=1)],
        **kw,
    )


# -- making and sending skbs ----------------------------------------------------------------
def socks_of(net: Net, cpu: int) -> list:
    """The sockets whose owner CPU is ``cpu`` (in creation order)."""
    return [net.socks[sid] for sid, c, _ in net.sock_groups if c == cpu]


def group_of(net: Net, sk):
    return net.sock_groups[sk.id][2]


class Sender(Generator):
    """The CPU worker's own :class:`workers.cpu.Generator`, aimed: the next
    skb is of the socket the test names, with the test's overrides applied
    after the Generator made it (length, priority from the socket's priority
    or TOS, ooo_okay, rx_queue, the device).

    Aiming sets the Generator's round-robin cursor (``next``) to the socket's
    place in ``socks`` (a socket of another CPU, a sender that migrated, is
    added to it first); if that socket's send buffer is full the Generator
    moves on to another one, which a test must not mistake for its own, so
    :meth:`make_skb` fails then.
    """

    def __init__(self, net: Net, cpu: int) -> None:
        super().__init__(net, cpu, net.cfg.seed)
        self._aim = None
        self._over: dict = {}

    def aim(self, sk, **over) -> None:
        where = [i for i, s in enumerate(self.socks) if s[0] is sk]
        if not where:
            # a sender that migrated here from the socket's owner CPU: the
            # socket joins this CPU's list, as its owner's Generator made it
            owner = sender(self.net, sk.cpu)
            self.socks.append(next(s for s in owner.socks if s[0] is sk))
            where = [len(self.socks) - 1]
        self.next = where[0]
        self._aim = sk
        self._over = {k: v for k, v in over.items() if v is not None}

    def make_skb(self, now: int) -> SkBuff | None:
        skb = super().make_skb(now)
        if self._aim is not None:
            if skb is None or skb.sk is not self._aim:
                raise AssertionError(
                    f"the send buffer of {self._aim} is full "
                    f"(sndbuf {group_of(self.net, self._aim).sndbuf})"
                )
            for k, v in self._over.items():
                setattr(skb, "len" if k == "length" else k, v)
            self._aim, self._over = None, {}
        return skb


def sender(net: Net, cpu: int) -> Sender:
    """``cpu``'s Generator in this net (one per CPU, as each CPU worker has)."""
    gens = net.__dict__.setdefault("_test_senders", {})
    if cpu not in gens:
        gens[cpu] = Sender(net, cpu)
    return gens[cpu]


def make_skb(
    net: Net,
    sk,
    dev=None,
    *,
    priority: int | None = None,
    ooo_okay: bool | None = None,
    rx_queue: int | None = None,
    length: int | None = None,
) -> SkBuff:
    """An skb of socket ``sk`` made on the current CPU (``this.cpu``) by that
    CPU's Generator; keyword overrides."""
    gen = sender(net, this.cpu)
    gen.aim(sk, dev=dev, priority=priority, ooo_okay=ooo_okay, rx_queue=rx_queue, length=length)
    return gen.make_skb(time.perf_counter_ns())


def xmit(net: Net, cpu: int, sk, dev=None, *, softirq: bool = True, **kw) -> int:
    """Act as ``cpu``: its Generator sends one skb of ``sk`` (send_one: make
    it, count it, dev_queue_xmit it); then, like the CPU worker, run NET_TX if
    something is pending (``softirq``)."""
    if this.cpu != cpu or this.net is not net:
        net.bind_cpu(cpu)
    gen = sender(net, cpu)
    gen.aim(sk, dev=dev, **kw)
    rc = gen.send_one(net.softnet[cpu])
    assert rc is not None  # make_skb raised if the socket could not send
    if softirq and softirq_pending(net, cpu):
        net_tx_action()
    return rc


def pick(net: Net, cpu: int, sk, dev=None, **kw) -> int:
    """The queue netdev_pick_tx chooses for a new skb of ``sk`` sent on ``cpu``
    (updates the socket's cache as the kernel would; transmits nothing)."""
    if this.cpu != cpu or this.net is not net:
        net.bind_cpu(cpu)
    skb = make_skb(net, sk, dev, **kw)
    txq = netdev_pick_tx(skb.dev, skb)
    assert skb.queue_mapping == txq.qindex
    return txq.qindex


def softirq_pending(net: Net, cpu: int) -> bool:
    sd = net.softnet[cpu]
    return sd[SOFTNET.oq_head] != sd[SOFTNET.oq_tail]


def output_queue(net: Net, cpu: int) -> list[int]:
    """Qdisc ids pending on ``cpu``'s output_queue, in order."""
    sd = net.softnet[cpu]
    oq = net.output_queue[cpu]
    return [oq[i % len(oq)] for i in range(sd[SOFTNET.oq_head], sd[SOFTNET.oq_tail])]


def run_softirq(net: Net, cpu: int) -> bool:
    net.bind_cpu(cpu)
    return net_tx_action()


def drain(net: Net, nic, rounds: int = 1000) -> None:
    """Poll the NIC and run every CPU's NET_TX until nothing is left."""
    for _ in range(rounds):
        moved = nic.poll()
        for c in range(net.ncpus):
            if softirq_pending(net, c):
                run_softirq(net, c)
                moved += 1
        if not moved and not in_flight(net):
            return
    raise AssertionError(f"not drained: {in_flight(net)} in flight")


# -- reading counters -----------------------------------------------------------------------
def drops(net: Net, reason: str | None = None) -> int:
    """Drops by reason summed over every CPU (and the control row)."""
    if reason is None:
        return sum(sum(row) for row in net.drops)
    return sum(row[DROP[reason]] for row in net.drops)


def msgs(net: Net, dev_name: str, msg: int, cpu: int = 0) -> tuple[int, int]:
    """(printed, suppressed) kernel messages ``msg`` for a device on ``cpu``."""
    dev = net.dev_by_name[dev_name]
    row = net.msgs[cpu]
    base = (dev.index * 2 + msg) * 2
    return row[base + MSG_PRINTED], row[base + MSG_SUPPRESSED]


def sd(net: Net, cpu: int, field: str) -> int:
    return net.softnet[cpu][getattr(SOFTNET, field)]


def qf(q, field: str) -> int:
    return q.f[getattr(QDISC, field)]


def leaf_qdiscs(net: Net) -> list:
    """Qdiscs that hold packets (pfifo_fast / pfifo)."""
    return [q for q in net.qdiscs if q.bands]


def qdisc_of(net: Net, dev_name: str = "eth0", queue: int = 0):
    txq = net.dev_by_name[dev_name].txqs[queue]
    return net.qdiscs[txq.f[NETDEV_QUEUE.qdisc]]


def in_flight(net: Net) -> int:
    """Skbs inside the machine: in qdiscs (gso_skb included) and TX rings."""
    return sum(q.f[QDISC.qlen] for q in leaf_qdiscs(net)) + sum(
        len(t.ring) for t in net.txqs if t.ring is not None
    )


def generated(net: Net) -> int:
    return sum(net.softnet[c][SOFTNET.generated] for c in range(net.ncpus))


def delivered(net: Net) -> int:
    return net.nic[NIC.delivered]


def ring_descs(txq):
    """The descriptors waiting in a TX ring, in the order the NIC sends them."""
    return txq.ring.peek_batch(txq.ring.size)
