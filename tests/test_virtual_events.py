"""``--packets`` on the virtual clock (docs/virtual-time.md).  Mechanisms
only: a budget is exact and its window ends at its last wire finish."""

from __future__ import annotations

import pytest

from netq.kernel.costs import ERAS
from netq.kernel.profiles import PROFILES
from netq.machine.config import DeviceConfig, RunConfig, TrafficConfig
from workers.supervisor import Supervisor

pytestmark = pytest.mark.slow

#: the 2010 prices' cost of one skb on the uncontended bypass path (as
#: tests/test_virtual_time.py derives it): the one-CPU run's packet interval
C = ERAS[PROFILES["3.13"].hardware]
PER_PACKET = C.sendmsg_ns + C.pick_tx_ns + 3 * C.lock_ns + C.xmit_ns


def vrun(status="ok", **kw):
    """One CPU flooding one socket on an unpaced device, slack 0 (the
    window in lockstep), unless told otherwise."""
    cfg = RunConfig(
        clock="virtual",
        cpus=kw.pop("cpus", 1),
        duration=kw.pop("duration", 0.005),
        seed=1,
        slack_ns=kw.pop("slack_ns", 0),
        devices=kw.pop(
            "devices", [DeviceConfig(tx_queues=1, ring_size=4096, bql=False, line_rate_bps=0)]
        ),
        traffic=kw.pop("traffic", [TrafficConfig(sockets_per_cpu=1, sndbuf=0)]),
        **kw,
    )
    cfg.validate()
    out = Supervisor(cfg).run()
    assert out.status == status, out.faults
    return out.result


def test_a_budget_on_the_virtual_clock_is_exact_and_timed_to_its_last_wire_finish():
    res = vrun(packets=1000, duration=2.0)
    assert res["generated"] == res["delivered"] == res["delivered_in_window"] == 1000
    vt = res["vt"]
    assert vt["window"] == "packets" and vt["virtual_s"] == res["window_s"]
    # one CPU sends one per PER_PACKET, the unpaced wire takes each as posted
    assert res["window_s"] == pytest.approx(1000 * PER_PACKET / 1e9, rel=0.01)
    assert res["pps"] == pytest.approx(1e9 / PER_PACKET, rel=0.01)
    assert res["cpu_ns_per_packet"] == pytest.approx(PER_PACKET, rel=0.01)
    assert res["setup"]["packets"] == 1000


@pytest.mark.parametrize("cpus,packets", [(3, 1001), (4, 2)])
def test_a_budget_shared_by_several_cpus_is_exact(cpus, packets):
    """Split over the senders (2 packets over 4 CPUs: two send nothing), on
    a paced wire with a default send buffer, contended."""
    res = vrun(
        cpus=cpus,
        packets=packets,
        slack_ns=20,
        devices=[DeviceConfig(tx_queues=1)],
        traffic=[TrafficConfig(sockets_per_cpu=1)],
    )
    assert res["generated"] == packets
    dropped = sum(res["drops"].values())
    assert res["delivered"] + dropped == packets and res["invariants_ok"]
    assert res["vt"]["window"] == "packets" and res["window_s"] > 0
