"""The model over real processes: after a burst from every CPU, every identity holds.

Each case runs the supervisor with a packet budget (so it ends by itself),
2-4 emulated CPUs, the NIC process, and checks the invariants it reports —
conservation, per-qdisc identities, per-socket accounting, flow order, no lock
held — plus the mechanism counters each configuration must move.
"""

from __future__ import annotations

import pytest

from netq.app.presets import recursion_devices
from netq.machine.config import CostConfig, DeviceConfig, RunConfig, TrafficConfig
from workers.supervisor import Supervisor


def run(cfg: RunConfig) -> dict:
    cfg.stall_timeout = 5.0
    out = Supervisor(cfg).run()
    res = out.result
    bad = [c for c in res["invariants"] if not c["ok"]]
    assert out.status == "ok" and res["invariants_ok"], (out.faults, bad)
    assert res["generated"] == cfg.packets
    assert res["generated"] == res["delivered"] + sum(res["drops"].values())
    return res


@pytest.mark.parametrize(
    "strategy,profile",
    [("rootlock", "3.13"), ("busylock", "3.13"), ("busylock", "6.18"), ("defer", "3.13")],
)
@pytest.mark.parametrize("fairness", ["fifo", "unfair"])
def test_contended_single_queue(strategy, profile, fairness):
    """4 CPUs on one queue with a tiny ring: enqueue, requeue, stop/wake,
    reschedule; 6.18's pfifo_fast is TCQ_F_NOLOCK, the others are locked
    (defer under 3.13 is a what-if: the defer_list on a locked pfifo_fast)."""
    res = run(
        RunConfig(
            cpus=4,
            packets=6000,
            seed=1,
            profile=profile,
            strategy=strategy,
            lock_fairness=fairness,
            devices=[DeviceConfig(tx_queues=1, ring_size=8, tx_queue_len=5000)],
            traffic=[TrafficConfig(sockets_per_cpu=2, proto="tcp")],
        )
    )
    m = res["mechanism"]
    assert m["enqueued"] > 0 and m["qdisc_runs"] > 0
    assert res["nic"]["reorders"] == 0
    (q,) = res["queues"]
    assert q["tx_stops"] > 0 and q["tx_restart"] > 0  # the tiny ring filled and was woken
    if strategy in ("rootlock", "defer") or profile == "6.18":
        assert m["busylock_taken"] == 0  # 6.18: NOLOCK pfifo_fast never meets busylock
    busy = [r for r in res["locks"] if r["name"].endswith("busylock")]
    assert sum(r["acquisitions"] for r in busy) == m["busylock_taken"]


def test_multiqueue_xps_and_virtual_stack():
    """2 CPUs, mq with XPS 1:1, plus traffic through a vlan stack and loops."""
    devs = recursion_devices(stack_depth=3)
    devs[0].xps = {0: "1", 1: "2"}
    res = run(
        RunConfig(
            cpus=2,
            packets=4000,
            seed=2,
            profile="6.18",
            devices=devs,
            traffic=[
                TrafficConfig(device="eth0", sockets_per_cpu=3),
                TrafficConfig(device="stk0", sockets_per_cpu=1, proto="tcp"),
                TrafficConfig(device="loopa", sockets_per_cpu=1),
                TrafficConfig(device="tun0", sockets_per_cpu=1),
            ],
        )
    )
    assert res["drops"]["XMIT_RECURSION"] > 0 and res["drops"]["DEAD_LOOP_OWNER"] > 0
    assert res["mechanism"]["xmit_recursion_cut"] == 9  # 6.18: counter > 8
    loc = sum(q["completions_local"] for q in res["queues"])
    assert loc == sum(q["packets"] for q in res["queues"])  # XPS 1:1, irq cpu = sender


def test_shared_root_qdisc_on_multiqueue_device_with_costs():
    """3 CPUs share one pfifo_fast over 2 queues; emulated costs lengthen holds."""
    run(
        RunConfig(
            cpus=3,
            packets=3000,
            seed=3,
            lock_wait="block",
            costs=CostConfig(enqueue_ns=500, dequeue_ns=500, xmit_ns=500),
            devices=[DeviceConfig(tx_queues=2, qdisc="pfifo_fast", ring_size=16)],
            traffic=[TrafficConfig(sockets_per_cpu=2, length=[64, 1500], priority=6)],
        )
    )


@pytest.mark.parametrize("profile", ["4.19", "6.18"])
def test_nolock_missed_path_leaves_nothing_stuck(profile):
    """TCQ_F_NOLOCK pfifo_fast, with (6.18) and without (4.19) the bypass:
    senders that lose the seqlock trylock set MISSED and leave; the drain
    fails the run if anything stays in a qdisc that nobody will run."""
    res = run(
        RunConfig(
            cpus=4,
            packets=8000,
            seed=4,
            profile=profile,
            costs=CostConfig(xmit_ns=1000),
            devices=[DeviceConfig(tx_queues=1, ring_size=16)],
            traffic=[TrafficConfig(sockets_per_cpu=2)],
        )
    )
    assert res["nic"]["reorders"] == 0
    names = {r["name"].rsplit(" ", 1)[-1] for r in res["locks"]}
    assert "seqlock" in names
    if profile == "4.19":
        assert res["mechanism"]["bypass"] == 0  # no bypass before ba27b4cdaaa6


def test_defer_count_over_the_limit_is_a_counted_drop():
    """defer: with a tiny net.core.qdisc_max_burst, pushes beyond it are
    dropped as QDISC_BURST_DROP - never silently - and every skb is still
    accounted for.  The qdisc's own limit plays no part (6.19's fix of
    100dfa74cad9): pfifo's tx_queue_len is far above what is ever queued."""
    res = run(
        RunConfig(
            cpus=4,
            packets=6000,
            seed=5,
            strategy="defer",
            qdisc_max_burst=1,
            costs=CostConfig(dequeue_ns=2000, xmit_ns=2000),
            devices=[DeviceConfig(tx_queues=1, qdisc="pfifo", tx_queue_len=10000, ring_size=16)],
            traffic=[TrafficConfig(sockets_per_cpu=2, sndbuf=0)],
        )
    )
    assert res["drops"]["QDISC_BURST_DROP"] > 0
    assert res["drops"]["QDISC_DROP"] == 0
    q = next(r for r in res["qdiscs"] if r["kind"] == "pfifo")
    assert q["sent_packets"] == res["delivered"]


def test_a_cpu_without_sockets_only_serves_softirqs():
    res = run(
        RunConfig(
            cpus=2,
            packets=2000,
            seed=6,
            devices=[DeviceConfig(tx_queues=2, irq_cpus=[1, 1])],
            traffic=[TrafficConfig(cpus=[0], sockets_per_cpu=2)],
        )
    )
    assert res["cpus"][1]["generated"] == 0 and res["cpus"][0]["generated"] == 2000


def test_deadlock_cycles_are_named():
    from workers.supervisor import deadlock_cycles

    holders = [
        {"lock": "A", "owner_cpu": 1, "waiters": [0]},
        {"lock": "B", "owner_cpu": 0, "waiters": [1]},
        {"lock": "C", "owner_cpu": 2, "waiters": [3]},
    ]
    (line,) = deadlock_cycles(holders, {0: "A", 1: "B", 3: "C"})
    assert line == "deadlock: cpu0 waits for 'A' held by cpu1; cpu1 waits for 'B' held by cpu0"


def test_waits_on_a_free_lock_are_not_a_cycle():
    from workers.supervisor import deadlock_cycles

    holders = [
        {"lock": "A", "owner_cpu": -1, "waiters": [0]},
        {"lock": "B", "owner_cpu": 0, "waiters": [1]},
    ]
    assert deadlock_cycles(holders, {0: "A", 1: "B"}) == []
