"""The virtual clock (--clock virtual): figures that belong to the emulated
machine, whatever the host does.  Mechanisms only: exact identities with
the cost model, placement on host cores changing nothing, many CPUs on two
cores, repeatability, and what the virtual clock refuses."""

from __future__ import annotations

import os
import signal
import time

import pytest

from netq.kernel.costs import ERAS
from netq.kernel.profiles import PROFILES
from netq.machine.config import ConfigError, DeviceConfig, EventConfig, RunConfig, TrafficConfig
from tests import harness
from workers.supervisor import Supervisor

pytestmark = pytest.mark.slow


def vrun(**kw):
    cfg = RunConfig(
        clock="virtual",
        duration=kw.pop("duration", 0.004),
        seed=kw.pop("seed", 1),
        devices=kw.pop(
            "devices", [DeviceConfig(tx_queues=1, ring_size=1024, bql=False, line_rate_bps=0)]
        ),
        traffic=kw.pop("traffic", [TrafficConfig(sockets_per_cpu=1)]),
        **kw,
    )
    cfg.validate()
    out = Supervisor(cfg).run()
    assert out.status == "ok", out.faults
    return out.result


def test_one_cpu_without_contention_sends_at_the_cost_models_rate():
    """The bypass path charges sendmsg, pick_tx, root_lock twice (taken,
    then re-taken after the driver), _xmit_lock once, the driver's xmit and
    its doorbell (3.13 has no xmit_more): the CPU's throughput is the
    inverse of their sum."""
    res = vrun(cpus=1)
    c = ERAS[PROFILES["3.13"].hardware]
    per_packet = c.sendmsg_ns + c.pick_tx_ns + 3 * c.lock_ns + c.xmit_ns + c.doorbell_ns
    assert res["qdiscs"][0]["bypass"] == res["generated"]  # the path priced above
    assert res["pps"] == pytest.approx(1e9 / per_packet, rel=0.01)
    assert res["cpu_ns_per_packet"] == pytest.approx(per_packet, rel=0.01)
    vt = res["vt"]
    assert vt["order_violations"] == 0 and vt["virtual_s"] == 0.004
    assert res["setup"]["clock"] == "virtual" and res["setup"]["vcosts"]["era"] == "2010"


#: the mechanism counters the host sets (its context switches)
HOST_COUNTERS = ("nvcsw", "nivcsw", "ctx_switches_per_packet")


def _figures(res: dict) -> tuple:
    """What a virtual run measures: packets, rates, CPU time, latency, the
    mechanism counters (the host's context switches aside) and every
    lock's virtual waits and holds."""
    mech = {k: v for k, v in res["mechanism"].items() if k not in HOST_COUNTERS}
    return (
        res["generated"],
        res["delivered"],
        res["pps"],
        res["cpu_ns_per_packet"],
        res["latency"],
        mech,
        res["vt"]["grants"],
        res["vt"]["locks"],
    )


def test_the_same_run_on_one_host_core_or_spread_gives_the_same_figures():
    """Bit for bit: the window orders every shared access by (virtual
    time, participant), so where and when the host runs the processes
    decides nothing (send-buffer sleeps included: 1000-byte skbs fill the
    212992-byte buffers)."""
    cfgs = {"one core": [0, 0, 0, 0], "spread": [0, 1, 0, 1]}
    res = {k: vrun(cpus=4, cpu_map=m, strategy="busylock") for k, m in cfgs.items()}
    a, b = res["one core"], res["spread"]
    assert a["nic"]["write_space_wakes"] > 0  # the senders did sleep
    assert _figures(a) == _figures(b)
    assert a["vt"]["order_violations"] == 0


def test_repeated_runs_agree():
    """Three runs of a contended configuration give the same figures
    (wall-clock runs of it spread by tens of percent on this host)."""
    runs = [_figures(vrun(cpus=4, strategy="rootlock")) for _ in range(3)]
    assert runs[1] == runs[0] and runs[2] == runs[0]


def test_sixty_four_cpus_on_two_cores_complete_within_the_window():
    res = vrun(cpus=64, duration=0.0005)
    vt = res["vt"]
    assert res["invariants_ok"]
    c = ERAS[PROFILES["3.13"].hardware]
    longest = max(c.sendmsg_ns, c.xmit_ns)  # the longest single charge
    assert vt["max_skew_ns"] <= res["setup"]["slack_ns"] + longest
    assert vt["order_violations"] <= 0.01 * vt["grants"]


def _commit_workload(strategy: str):
    """The busylock commit's workload (docs/studies/busylock-commit.toml):
    8 CPUs x 4 UDP sockets on one 1 Gbit/s queue, 2.6.37 ("2007" prices)."""
    return vrun(
        cpus=8,
        duration=0.003,
        profile="2.6.37",
        strategy=strategy,
        devices=[DeviceConfig(tx_queues=1, ring_size=512, line_rate_bps=1e9, wire_overhead=36)],
        traffic=[TrafficConfig(sockets_per_cpu=4, length=48)],
    )


def test_busylock_keeps_the_qdisc_owner_out_of_the_enqueuers_queue():
    """79640a4ca695's mechanism in virtual time: under rootlock the qdisc
    owner queues behind every enqueuer for each re-take of root_lock, under
    busylock behind at most one; so busylock delivers more.  Also: a lock's
    handoff is slowed by the other CPUs spinning at its release (rootlock's
    root_lock has several), and the window counts only skbs the driver
    posted before the end (the NIC starts a frame no earlier than its post:
    the skbs still queued are the drain's)."""
    root, busy = _commit_workload("rootlock"), _commit_workload("busylock")
    wr = root["mechanism"]["owner_wait_ns_per_relock"]
    wb = busy["mechanism"]["owner_wait_ns_per_relock"]
    assert wr > 4 * wb > 0
    assert busy["pps"] > 2 * root["pps"]
    (rl,) = [v for v in root["vt"]["locks"] if v["name"].endswith("root_lock")]
    assert rl["spinners"] > rl["grants"]  # more than one other spinner per grant
    for res in (root, busy):
        m = res["mechanism"]  # each CPU's counters when it passed the end
        assert res["delivered_in_window"] <= m["run_packets"] + m["bypass"]
    # rootlock leaves a full qdisc at the end: the drain is not in the mechanism
    assert root["mechanism"]["run_packets"] < root["qdiscs"][0]["run_packets"]


def test_the_defer_list_beats_busylock_on_fq_with_many_senders():
    """100dfa74cad9's mechanism: 16 senders on one fq queue; with busylock
    every sender spins on busylock and root_lock, with the defer_list all
    but one return at once and the splicer enqueues a batch under one
    root_lock hold.  (docs/studies/defer-list.toml measures it.)"""

    def run(profile: str):
        return vrun(
            cpus=16,
            duration=0.002,
            profile=profile,
            devices=[DeviceConfig(tx_queues=1, ring_size=1024, qdisc="fq", line_rate_bps=100e9)],
            traffic=[TrafficConfig(sockets_per_cpu=1, length=200, sndbuf=65536)],
        )

    busy, defer = run("6.18"), run("6.19")
    assert defer["qdiscs"][0]["defer_splices"] > 0 and busy["mechanism"]["busylock_taken"] > 0
    assert defer["qdiscs"][0]["defer_spliced"] > 2 * defer["qdiscs"][0]["defer_splices"]
    assert defer["pps"] > busy["pps"]
    assert defer["cpu_ns_per_packet"] < busy["cpu_ns_per_packet"]


def test_contention_costs_cpu_time_in_virtual_time():
    """With many senders on one queue the waits are charged as spinning:
    CPU per packet rises above the uncontended path's."""
    one = vrun(cpus=1)
    many = vrun(cpus=8, strategy="rootlock")
    assert many["cpu_ns_per_packet"] > 2 * one["cpu_ns_per_packet"]
    assert sum(v["wait_total_ns"] for v in many["vt"]["locks"]) > 0
    # the qdisc owner's re-takes of root_lock report their virtual wait
    # (the semaphore itself is kept uncontended by the window), and no
    # count of CPUs ahead, which the virtual clock does not keep
    m = many["mechanism"]
    assert m["owner_relocks"] > 0 and m["owner_relock_contended"] > 0
    assert m["owner_wait_ns_per_relock"] > 0 and m["owner_ahead_per_relock"] is None
    assert m["owner_ahead"] == 0


@pytest.mark.parametrize("slack", [0, 1000])
def test_a_nolock_qdiscs_missed_rerun_survives_the_virtual_clock(slack):
    """4.19's lockless pfifo_fast under a driver without _xmit_lock (LLTX):
    nothing orders the seqlock holder's release and MISSED test against a
    trylock earlier in virtual time but later in wall time.  The holder
    now waits at the window before it releases (slack 0), and a trylock
    that failed only in virtual time reschedules the qdisc itself (a
    slack): no skb is left in the qdisc for the drain (the stress job's
    seed 2, run 76, stalled so)."""
    res = vrun(
        cpus=3,
        profile="4.19",
        duration=0.0022,
        slack_ns=slack,
        devices=[DeviceConfig(ring_size=32, tx_queue_len=8, lltx=True)],
        traffic=[TrafficConfig(sockets_per_cpu=2, length=512, rate_pps=30000.0)],
    )
    assert res["setup"]["pfifo_fast_nolock"] and res["invariants_ok"]
    assert res["delivered"] + sum(res["drops"].values()) == res["generated"]
    assert res["qdiscs"][0]["qlen"] == 0


@pytest.mark.parametrize(
    "kw,field",
    [
        ({"clock": "sundial"}, "clock"),
        ({"clock": "virtual", "packets": -1}, "packets"),
        (
            {"clock": "virtual", "events": [EventConfig(at=0.001, action="slow_nic", value=-1)]},
            "events[0].value",
        ),
        ({"clock": "virtual", "slack_ns": -1}, "slack_ns"),
        ({"clock": "virtual", "duration": 60.0}, "duration"),
    ],
)
def test_what_the_virtual_clock_refuses(kw, field):
    with pytest.raises(ConfigError) as e:
        RunConfig(**kw).validate()
    assert e.value.field == field


def test_events_and_a_budget_are_accepted_on_the_virtual_clock():
    """tests/test_virtual_events.py runs them."""
    RunConfig(
        clock="virtual",
        packets=100,
        events=[EventConfig(at=0.001, action="slow_nic", value=10)],
    ).validate()


def _long_virtual(tmp_path) -> str:
    path = tmp_path / "v.toml"
    path.write_text(
        'cpus = 4\nclock = "virtual"\nduration = 5.0\n[[devices]]\ntx_queues = 1\n'
        "[[traffic]]\nsockets_per_cpu = 1\n"
    )
    return str(path)


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_ends_a_virtual_run_cleanly(tmp_path, sig, code):
    p = harness.start_netq("--config", _long_virtual(tmp_path), "--quiet")
    kids = harness.wait_children(p, 5)  # the NIC and 4 CPUs
    time.sleep(0.5)  # well inside the run: 5 virtual seconds take minutes
    os.killpg(p.pid, sig)
    r = harness.finish(p, 60)
    assert r.returncode == code, r.stderr
    assert harness.wait_gone(kids, 5.0) == [] and harness.leftovers(p.pid) == []


def test_a_killed_worker_ends_a_virtual_run_as_a_fault(tmp_path):
    p = harness.start_netq("--config", _long_virtual(tmp_path), "--quiet")
    kids = harness.wait_children(p, 5)
    time.sleep(0.5)
    os.kill(kids[-1], signal.SIGKILL)
    r = harness.finish(p, 60)
    assert r.returncode == 1 and "killed by signal 9" in r.output, r.output
    assert harness.wait_gone(kids, 5.0) == [] and harness.leftovers(p.pid) == []


def test_a_cpu_without_sockets_does_not_hold_the_run():
    """A CPU that never sends never moves its clock to the end of the
    window: it goes straight to serving softirqs, and the run ends ok."""
    res = vrun(cpus=2, traffic=[TrafficConfig(cpus=[0], sockets_per_cpu=1)])
    assert res["pps_by_cpu"][1] == 0 and res["pps_by_cpu"][0] > 0
    assert res["invariants_ok"]
