"""A packet budget is exact, even when it is smaller than the number of
sending CPUs (issue 12, item 2): a CPU whose share is 0 sends nothing; it
is never read as "no limit"."""

from __future__ import annotations

from netq.machine.config import DeviceConfig, RunConfig, TrafficConfig
from workers.supervisor import Supervisor, _split


def test_split_gives_zero_not_unlimited_to_cpus_beyond_the_budget():
    assert _split(1, [True, True]) == [1, 0]
    assert _split(7, [True] * 8) == [1] * 7 + [0]
    assert _split(5, [True, False, True]) == [3, 0, 2]
    assert _split(0, [True, True]) == [None, None]  # a timed run has no quota


def _cfg(cpus: int, packets: int) -> RunConfig:
    return RunConfig(
        cpus=cpus,
        packets=packets,
        duration=30,
        seed=3,
        stall_timeout=10,
        devices=[DeviceConfig(tx_queues=2)],
        traffic=[TrafficConfig(sockets_per_cpu=1)],
    )


def test_budget_smaller_than_the_senders_is_exact():
    for cpus, packets in ((2, 1), (4, 3)):
        out = Supervisor(_cfg(cpus, packets)).run()
        res = out.result
        assert out.status == "ok", res["faults"]
        assert res["generated"] == packets
        assert [c["generated"] for c in res["cpus"]] == [1] * packets + [0] * (cpus - packets)
        assert res["delivered"] == packets
