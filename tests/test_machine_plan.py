"""netq.machine.plan: the plan of a run is pure and says what the builder builds.

The tests that take the ``no_shm`` fixture may create no shared memory and
no semaphore; the last two build a Net from a plan."""

from __future__ import annotations

import os

import posix_ipc
import pytest

from netq.kernel.kstructs import (
    FQ_FLOW,
    QDISC_BANDS,
    TCQ_F_BUILTIN,
    TCQ_F_CAN_BYPASS,
    TCQ_F_MQROOT,
    TCQ_F_NOLOCK,
    TCQ_F_ONETXQUEUE,
)
from netq.kernel.sched.sch_fq import FQ_LIMIT
from netq.machine.config import ConfigError, DeviceConfig, RunConfig, TrafficConfig
from netq.machine.net import Net
from netq.machine.plan import (
    LOCKS_PER_QDISC,
    NOOP_QDISC,
    NOQUEUE_QDISC,
    plan_layout,
    plan_run,
    what_if_reasons,
)
from shm.ipc import netq_objects
from shm.ring import DESC_WORDS


@pytest.fixture
def no_shm(monkeypatch):
    """The test may create no POSIX shared memory and no semaphore: both
    constructors raise while it runs, and afterwards no netq object of this
    process is in /dev/shm that was not there before."""

    def refuse(*args, **kw):
        raise AssertionError(f"planning created an IPC object {args[:1]}")

    def mine():
        return {o.entry for o in netq_objects() if o.pid == os.getpid()}

    before = mine()
    monkeypatch.setattr(posix_ipc, "SharedMemory", refuse)
    monkeypatch.setattr(posix_ipc, "Semaphore", refuse)
    yield
    monkeypatch.undo()
    assert mine() == before


def test_no_shm_fixture_catches_an_ipc_object(no_shm, owner):
    with pytest.raises(AssertionError, match="created an IPC object"):
        owner.semaphore("x", 0)


def _two_devices(**kw) -> RunConfig:
    """A 4-queue eth0 (default qdisc: mq) and a vlan on it; two groups."""
    kw.setdefault("seed", 11)
    return RunConfig(
        cpus=3,
        devices=[
            DeviceConfig(tx_queues=4, xps={0: "1", 2: "6"}, irq_cpus=[2, 1, 0, 2]),
            DeviceConfig(name="vlan0", kind="vlan", lower="eth0"),
        ],
        traffic=[
            TrafficConfig(cpus=[0, 2], sockets_per_cpu=2),
            TrafficConfig(device="vlan0", sockets_per_cpu=1, proto="tcp", connected=False),
        ],
        **kw,
    )


def test_single_queue_default_is_builtins_then_pfifo_fast(no_shm):
    p = plan_run(RunConfig(cpus=2, seed=1))
    assert [(q.id, q.kind, q.parent) for q in p.qdiscs] == [
        (NOOP_QDISC, "noop", "builtin"),
        (NOQUEUE_QDISC, "noqueue", "builtin"),
        (2, "pfifo_fast", "root"),
    ]
    assert p.qdiscs[0].flags == p.qdiscs[1].flags == TCQ_F_BUILTIN
    q = p.qdiscs[2]
    assert q.flags == TCQ_F_CAN_BYPASS | TCQ_F_ONETXQUEUE
    assert (q.dev, q.txq, q.limit, q.nrings, q.ring_size) == (0, 0, 1000, QDISC_BANDS, 1024)
    assert p.devices[0].root_qdisc == 2 and p.txqs[0].qdisc == 2
    # lock ids: LOCKS_PER_QDISC per qdisc in qdisc order, then the _xmit_locks
    assert len(p.lock_names) == 3 * LOCKS_PER_QDISC + 1
    assert (q.root_lock, q.busylock, q.seqlock) == (12, 13, 14)
    assert q.band_locks == (15, 16, 17)
    assert p.lock_names[q.root_lock] == "eth0 pfifo_fast root_lock"
    assert p.txqs[0].xmit_lock == 18 and p.lock_names[18] == "eth0:tx-0 _xmit_lock"


def test_multiqueue_device_gets_mq_with_a_child_per_queue(no_shm):
    p = plan_run(_two_devices())
    mq = p.qdiscs[2]
    assert (mq.kind, mq.flags, mq.txq, mq.parent, mq.nrings) == ("mq", TCQ_F_MQROOT, -1, "root", 0)
    kids = p.qdiscs[3:7]
    assert [(c.kind, c.txq, c.parent) for c in kids] == [
        ("pfifo_fast", k, f":{k + 1:x}") for k in range(4)
    ]
    assert [t.qdisc for t in p.txqs] == [3, 4, 5, 6, NOQUEUE_QDISC]
    assert [t.irq_cpu for t in p.txqs[:4]] == [2, 1, 0, 2]
    assert p.devices[0].root_qdisc == 2 and p.devices[1].root_qdisc == NOQUEUE_QDISC
    assert p.devices[0].xps == ((0, 0b1), (2, 0b110))


def test_virtual_device_is_noqueue_lltx_without_ring(no_shm):
    p = plan_run(_two_devices())
    vlan = p.devices[1]
    assert (vlan.kind, vlan.xmit, vlan.lower, vlan.lltx, vlan.txq_base) == (
        "vlan",
        "vlan",
        0,
        True,
        4,
    )
    t = p.txqs[4]
    assert (t.dev, t.qindex, t.ring, t.bql, t.wake_thresh, t.lltx) == (1, 0, False, False, 0, True)
    eth = p.txqs[0]
    assert (eth.ring, eth.bql, eth.wake_thresh, eth.lltx) == (True, True, 64, False)


@pytest.mark.parametrize(
    "profile,nolock,bypass,busylock,defer",
    [
        ("2.6.37", False, True, True, False),
        ("3.13", False, True, True, False),
        ("4.19", True, False, True, False),
        ("6.18", True, True, True, False),
        ("6.19", True, True, False, True),
    ],
)
def test_pfifo_fast_flags_come_from_the_profile_not_the_strategy(
    no_shm, profile, nolock, bypass, busylock, defer
):
    """pfifo_fast's static_flags carry TCQ_F_NOLOCK from 4.16 (c5ad119fb6c0)
    in every kernel after, whatever the strategy; the strategy is what the
    profile's kernel does for locked qdiscs."""
    p = plan_run(RunConfig(cpus=2, profile=profile))
    q = p.qdiscs[2]
    assert bool(q.flags & TCQ_F_NOLOCK) is nolock
    assert bool(q.flags & TCQ_F_CAN_BYPASS) is bypass
    assert (p.nolock, p.busylock, p.defer) == (nolock, busylock, defer)
    assert what_if_reasons(p.cfg) == []
    for strategy in ("rootlock", "busylock", "defer"):
        other = plan_run(RunConfig(cpus=2, profile=profile, strategy=strategy))
        assert other.qdiscs[2].flags == q.flags, strategy


def test_a_mixed_host_runs_each_qdisc_as_the_kernel_does(no_shm):
    """6.18: NOLOCK pfifo_fast mq children on eth0 beside an fq root (locked,
    busylock) on eth1; a what-if pfifo_fast_nolock is said to be one."""
    devs = [
        DeviceConfig(name="eth0", tx_queues=2),
        DeviceConfig(name="eth1", tx_queues=1, qdisc="fq"),
    ]
    p = plan_run(RunConfig(cpus=2, profile="6.18", devices=devs))
    kinds = {q.name: (q.kind, bool(q.flags & TCQ_F_NOLOCK)) for q in p.qdiscs[2:]}
    assert kinds == {
        "eth0 mq": ("mq", False),
        "eth0:tx-0 pfifo_fast": ("pfifo_fast", True),
        "eth0:tx-1 pfifo_fast": ("pfifo_fast", True),
        "eth1 fq": ("fq", False),
    }
    assert p.busylock and what_if_reasons(p.cfg) == []
    locked = RunConfig(cpus=2, profile="6.18", devices=devs, pfifo_fast_nolock=False)
    assert not any(q.flags & TCQ_F_NOLOCK for q in plan_run(locked).qdiscs)
    assert what_if_reasons(locked) == ["pfifo_fast locked under 6.18"]
    assert what_if_reasons(RunConfig(profile="6.19", strategy="busylock")) == [
        "busylock under 6.19 (which has defer)"
    ]


@pytest.mark.parametrize("profile", ["3.13", "6.18"])
def test_strategy_nolock_is_refused_saying_what_to_use(no_shm, profile):
    with pytest.raises(ConfigError, match=r"strategy: 'nolock' is no strategy.*profile 4\.19"):
        plan_run(RunConfig(profile=profile, strategy="nolock"))


def test_fq_root_shared_by_every_queue(no_shm):
    p = plan_run(RunConfig(cpus=2, profile="6.18", devices=[DeviceConfig(tx_queues=2, qdisc="fq")]))
    fq = p.qdiscs[2]
    assert (fq.kind, fq.limit, fq.fq_index, fq.nrings) == ("fq", FQ_LIMIT, 0, p.nsock + 1)
    assert [t.qdisc for t in p.txqs] == [2, 2]
    assert not fq.flags & TCQ_F_ONETXQUEUE
    lay = plan_layout(p)
    assert lay["fq_flows"].count == p.fq_nflows and lay["fq_flows"].record is FQ_FLOW


def test_sockets_in_group_then_cpu_order_with_seeded_hashes(no_shm):
    cfg = _two_devices()
    p = plan_run(cfg)
    assert [(s.id, s.cpu, s.group) for s in p.socks] == [
        (0, 0, 0),
        (1, 0, 0),
        (2, 2, 0),
        (3, 2, 0),
        (4, 0, 1),
        (5, 1, 1),
        (6, 2, 1),
    ]
    assert [s.proto for s in p.socks] == ["udp"] * 4 + ["tcp"] * 3
    assert [s.connected for s in p.socks] == [True] * 4 + [False] * 3
    assert all(s.sk_hash and s.sk_txhash for s in p.socks)
    assert p.sock_group(p.socks[5]) is cfg.traffic[1]
    # the seed decides every random draw: same seed, same plan
    assert plan_run(_two_devices()) == p
    other = plan_run(_two_devices(seed=12))
    assert other.hashrnd != p.hashrnd
    assert [s.sk_hash for s in other.socks] != [s.sk_hash for s in p.socks]


def test_host_map_and_lock_policy_follow_the_host_cores(no_shm):
    p = plan_run(RunConfig(cpus=3), cores=[4, 5])
    assert p.host.cpu_map == (4, 5, 4) and p.host.nic_core == 5
    assert p.host.processes == 4 and p.host.shared_cores
    assert p.lock_policy.yield_spin and p.lock_policy.spin_ns == 5_000
    assert "oversubscribed" in p.lock_wait_reason
    big = plan_run(RunConfig(cpus=3), cores=range(8))
    assert big.host.cpu_map == (0, 1, 2) and big.host.nic_core == 3
    assert not big.host.shared_cores
    assert not big.lock_policy.yield_spin and big.lock_policy.spin_ns == 20_000
    asked = plan_run(RunConfig(cpus=1, lock_wait="spin", spin_ns=7), cores=[0, 1])
    assert (asked.lock_policy.waiting, asked.lock_policy.spin_ns, asked.lock_wait_reason) == (
        "spin",
        7,
        "asked for",
    )


def test_layout_has_rings_for_physical_queues_and_qdisc_bands(no_shm):
    p = plan_run(_two_devices(strategy="defer"))
    lay = plan_layout(p)
    names = set(lay.sections)
    assert "txring0_desc" in names and "txring1_desc" not in names  # the vlan has no ring
    assert lay["txring0_desc"].shape == (4, 256, DESC_WORDS)
    assert {f"qband{q}_desc" for q in range(3, 7)} <= names
    assert "qband2_desc" not in names  # the mq root holds no packets
    assert lay["netdev_queue"].count == 5 and lay["qdisc"].count == len(p.qdiscs)
    assert lay["sock"].count == p.nsock == 7
    assert lay["defer_nodes"].count == 3 * p.defer_nodes_per_cpu > 3
    assert lay["output_queue"].shape == (3, len(p.qdiscs))
    # pure: the same plan gives the same layout
    assert plan_layout(p).digest() == lay.digest()


def test_bad_config_raises_before_planning(no_shm):
    with pytest.raises(ConfigError, match=r"devices\[0\]\.name"):
        plan_run(RunConfig(devices=[DeviceConfig(name="")]))


def test_net_builds_what_the_plan_says(owner):
    cfg = _two_devices(profile="6.18")
    p = plan_run(cfg)
    net = Net(cfg, owner, p)
    try:
        assert net.layout.digest() == plan_layout(p).digest()
        assert [
            (q.id, q.name, q.root_lock, q.busylock, q.seqlock, tuple(q.band_locks))
            for q in net.qdiscs
        ] == [(q.id, q.name, q.root_lock, q.busylock, q.seqlock, q.band_locks) for q in p.qdiscs]
        assert [int(q.flags) for q in net.qdiscs] == [q.flags for q in p.qdiscs]
        assert [(t.index, t.xmit_lock, t.bql, t.wake_thresh) for t in net.txqs] == [
            (t.index, t.xmit_lock, t.bql, t.wake_thresh) for t in p.txqs
        ]
        assert [(s.id, s.cpu, s.sk_hash, s.sk_txhash) for s in net.socks] == [
            (s.id, s.cpu, s.sk_hash, s.sk_txhash) for s in p.socks
        ]
        assert net.devices[1].lower is net.devices[0]
        assert [c.id for c in net.qdiscs[2].children] == [3, 4, 5, 6]
        assert net.hashrnd == p.hashrnd and net.lock_policy == p.lock_policy
    finally:
        net.close()


def test_net_refuses_a_plan_of_another_config(owner):
    p = plan_run(RunConfig(cpus=2))
    with pytest.raises(ValueError, match="plan"):
        Net(RunConfig(cpus=2), owner, p)
