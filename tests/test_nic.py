"""workers.nic: the per-packet Python path for light loads, the numpy path
for batches and the compiled helper's path (netq_nic_tx) count exactly the
same things."""

from __future__ import annotations

import pstats
import random

import pytest

from netq.kernel.core.dql import dql_queued
from netq.kernel.kstructs import NETDEV_QUEUE, NIC, SOCK
from netq.machine.config import DeviceConfig, RunConfig, TrafficConfig
from netq.machine.net import Net
from shm import native
from workers.nic import Nic
from workers.supervisor import Supervisor


def _descs(seed: int, n: int, nsock: int, queues: int) -> list[list[tuple]]:
    """Per-queue descriptor lists with reorders and flows changing queue."""
    rng = random.Random(seed)
    seq = [0] * nsock
    per_q: list[list[tuple]] = [[] for _ in range(queues)]
    for i in range(n):
        sk = rng.randrange(nsock)
        s = seq[sk]
        seq[sk] += 1
        if rng.random() < 0.05:
            s = max(0, s - rng.randrange(1, 5))  # an out-of-order skb
        q = (sk + (1 if rng.random() < 0.05 else 0)) % queues  # sometimes another queue
        per_q[q].append((sk % 2, i, sk, s, rng.randrange(64, 1500), 0, 1000 + i, q))
    return per_q


PATHS = ["small", "batch"] + (["native"] if native.lib is not None else [])


def _run(owner, path: str, per_q, rate: float, bql: bool = False) -> dict:
    cfg = RunConfig(
        cpus=2,
        seed=1,
        devices=[DeviceConfig(tx_queues=len(per_q), ring_size=1024, line_rate_bps=rate, bql=bql)],
        traffic=[TrafficConfig(sockets_per_cpu=4)],
    )
    net = Net(cfg, owner)
    nic = Nic(net)
    nic.small_path = path == "small"
    nic.native = path == "native"
    now = 10**12
    # feed in small rounds so both paths see the same batches
    for k in range(0, max(len(d) for d in per_q), 8):
        for q, descs in enumerate(per_q):
            for d in descs[k : k + 8]:
                if bql:  # what the driver's netdev_tx_sent_queue does first
                    dql_queued(net.txqs[q].f, d[4])
                assert net.txqs[q].ring.produce(d)
        now += 10**9
        nic.poll(now)
    out = {
        "nic": [
            int(net.nic[getattr(NIC, k)])
            for k in (
                "delivered",
                "delivered_bytes",
                "reorders",
                "reorders_moved",
                "flow_queue_changes",
            )
        ],
        "queues": [
            [
                int(t.f[getattr(NETDEV_QUEUE, k)])
                for k in ("nic_packets", "nic_bytes", "completions_local", "completions_remote")
            ]
            for t in net.txqs
        ],
        "socks": [[int(s.f[SOCK.completed]), int(s.f[SOCK.completed_bytes])] for s in net.socks],
        "by_cpu": list(net.nic_by_cpu),
        "wire_t": nic.wire_t.tolist(),
        "dql": [
            [
                int(t.f[getattr(NETDEV_QUEUE, k)])
                for k in ("dql_num_completed", "dql_limit", "dql_adj_limit", "dql_prev_ovlimit")
            ]
            for t in net.txqs
        ],
    }
    nic.flush_latency()
    out["lat_count"] = nic.hist.get_total_count()
    out["lat_p50"] = nic.hist.get_value_at_percentile(50)
    return out


@pytest.mark.parametrize("rate", [0.0, 1e9])
@pytest.mark.parametrize("bql", [False, True])
def test_small_and_batch_paths_agree(owner, rate, bql):
    per_q = _descs(7, 600, 8, 3)
    small = _run(owner, "small", per_q, rate, bql)
    assert small["nic"][0] == 600
    assert small["nic"][2] > 0 and small["nic"][4] > 0  # the data has reorders and moves
    for path in PATHS[1:]:
        assert _run(owner, path, per_q, rate, bql) == small, path
    done = [q[0] for q in small["dql"]]
    if bql:  # BQL saw every byte completed, and learnt a limit
        assert done == [sum(d[4] for d in descs) for descs in per_q]
        assert all(q[1] > 0 for q in small["dql"])
    else:
        assert done == [0, 0, 0]


@pytest.mark.slow
def test_nic_profile_is_written_on_request(tmp_path):
    """--profile-dir DIR: the NIC process writes its cProfile statistics to
    DIR/nic.prof."""
    path = tmp_path / "nic.prof"
    cfg = RunConfig(
        cpus=1,
        packets=50,
        duration=30,
        seed=1,
        traffic=[TrafficConfig()],
        profile_dir=str(tmp_path),
    )
    out = Supervisor(cfg).run()
    assert out.status == "ok", out.faults
    assert pstats.Stats(str(path)).total_calls > 0


@pytest.mark.parametrize("path", PATHS[1:])
def test_a_busy_wire_holds_its_rings_back(owner, path):
    """A ring whose device's wire is still busy is left for a later round,
    and wait_ns says how long; an empty NIC has nothing to wait for."""
    cfg = RunConfig(
        cpus=1,
        seed=1,
        devices=[DeviceConfig(tx_queues=2, ring_size=64, line_rate_bps=1e9, bql=False)],
        traffic=[TrafficConfig(sockets_per_cpu=2)],
    )
    net = Net(cfg, owner)
    nic = Nic(net)
    nic.native = path == "native"
    now = 10**12
    assert nic.wait_ns(now) is None
    rings = [t.ring for t in net.txqs]
    assert rings[0].produce((0, 0, 0, 0, 1000, 0, now, 0))
    assert nic.wait_ns(now) == 0
    assert nic.poll(now) == 1  # 1000 bytes + overhead at 1 Gb/s: the wire is busy ~8 us
    busy_until = int(nic.wire_t[net.txqs[0].dev.index])
    assert busy_until > now
    assert rings[1].produce((0, 1, 1, 0, 1000, 0, now, 1))
    assert nic.wait_ns(now) == busy_until - now
    assert nic.poll(now) == 0 and len(rings[1]) == 1  # same device: held back
    assert nic.poll(busy_until) == 1
    assert nic.wait_ns(busy_until) is None
