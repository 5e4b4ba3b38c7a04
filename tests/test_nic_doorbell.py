"""The NIC's doorbell: an idle NIC asks every TX ring for it (RING.wake), the
driver rings it once after publishing a descriptor, and a NIC asleep on it
wakes for the next skb, for a phase change and for an abort."""

from __future__ import annotations

import os
import time

import pytest

from netq.kernel.kstructs import NIC, PHASE_EXIT, RUNCTL
from netq.machine.config import RunConfig, TrafficConfig
from shm.ringrec import RING
from tests.modelutil import config, phys, socks_of, xmit
from tests.shmutil import join_all, start
from workers.nic import Nic, _run
from workers.supervisor import Supervisor

#: a sleep this long only ends by the doorbell in these tests
LONG_S = 30.0


def _wake_words(net) -> list[int]:
    return [t.ring.idx[RING.wake] for t in net.txqs if t.ring is not None]


def test_the_driver_rings_only_when_the_nic_asked(mknet):
    net = mknet(config(devices=[phys(tx_queues=2)]))
    nic = Nic(net)
    sk = socks_of(net, 0)[0]
    xmit(net, 0, sk)
    assert net.nic_doorbell.value == 0  # nobody asked: no post
    nic.poll()
    assert nic.request_doorbell()  # every ring empty: the NIC may sleep
    assert _wake_words(net) == [1, 1]
    xmit(net, 0, sk)
    q = next(i for i, t in enumerate(net.txqs) if len(t.ring))
    assert net.nic_doorbell.value == 1  # rung once ...
    assert _wake_words(net)[q] == 0  # ... and the request taken
    xmit(net, 0, sk)
    assert net.nic_doorbell.value == 1  # not again for the next skb


def test_an_idle_nic_does_not_sleep_on_work_it_has(mknet):
    net = mknet(config(devices=[phys()]))
    nic = Nic(net)
    xmit(net, 0, socks_of(net, 0)[0])
    # the descriptor was published before the request: seen on the re-check
    assert not nic.request_doorbell()
    assert nic.sleep_idle(net.nic_doorbell, LONG_S) is False
    assert _wake_words(net) == [0]  # request withdrawn
    assert nic.poll() == 1


def _send_when_asked(net, deadline_s: float) -> None:
    """A CPU that sends one skb once the NIC has asked for the doorbell."""
    txq = net.txqs[0]
    end = time.monotonic() + deadline_s
    while not txq.ring.idx[RING.wake]:
        if time.monotonic() > end:
            os._exit(2)
        time.sleep(0.001)
    xmit(net, 0, socks_of(net, 0)[0])
    os._exit(0)


@pytest.mark.slow
def test_a_sleeping_nic_wakes_for_the_next_skb(mknet):
    net = mknet(config(devices=[phys()]))
    nic = Nic(net)
    p = start(_send_when_asked, net, LONG_S)
    try:
        assert nic.sleep_idle(net.nic_doorbell, LONG_S) is True  # the doorbell, not the timeout
        assert nic.poll() == 1
    finally:
        assert join_all([p]) == [0]


def _exit_later(net, deadline_s: float) -> None:
    """The supervisor's end of a run: once the NIC sleeps, PHASE_EXIT and a
    ring of the doorbell."""
    txq = net.txqs[0]
    end = time.monotonic() + deadline_s
    while not txq.ring.idx[RING.wake]:
        if time.monotonic() > end:
            os._exit(2)
        time.sleep(0.001)
    net.runctl[RUNCTL.phase] = PHASE_EXIT
    net.nic_doorbell.release()
    os._exit(0)


@pytest.mark.slow
def test_a_sleeping_nic_sees_the_phase_change(mknet):
    net = mknet(config(devices=[phys()]))
    nic = Nic(net)
    p = start(_exit_later, net, LONG_S)
    try:
        t0 = time.process_time_ns()
        _run(nic, net)  # returns only once it saw PHASE_EXIT
        assert net.runctl[RUNCTL.phase] == PHASE_EXIT
        assert net.nic[NIC.cpu_ns] <= time.process_time_ns() - t0
    finally:
        assert join_all([p]) == [0]


@pytest.mark.slow
def test_a_light_load_with_a_sleeping_nic_delivers_everything():
    """A rate-limited sender: the NIC sleeps between skbs and is woken by
    the doorbell for each; every skb is delivered and the run is ok."""
    cfg = RunConfig(
        cpus=2,
        duration=0.6,
        seed=3,
        devices=[phys(tx_queues=2)],
        traffic=[TrafficConfig(sockets_per_cpu=1, rate_pps=400.0)],
    )
    out = Supervisor(cfg).run()
    assert out.status == "ok", out.faults
    r = out.result
    assert r["invariants_ok"]
    assert r["nic"]["delivered"] == r["generated"] > 0


def test_extra_rings_of_the_doorbell_are_taken_on_waking(mknet):
    """Two rings asked, two drivers rang: one post wakes the NIC and the
    other is taken with it, so the next timed sleep is not cut short."""
    net = mknet(config(devices=[phys(tx_queues=2)]))
    nic = Nic(net)
    assert nic.request_doorbell()
    for t in net.txqs:  # what eth_start_xmit does on each ring
        assert t.ring.produce((0, 0, 0, 0, 100, 0, 0, t.index))
        assert t.ring.idx[RING.wake]
        t.ring.cancel_wake()
        net.nic_doorbell.release()
    assert net.nic_doorbell.value == 2
    for t in net.txqs:  # asked again (the rings are empty once more)
        t.ring.consume()
    assert nic.sleep_idle(net.nic_doorbell, LONG_S) is True
    assert net.nic_doorbell.value == 0
