"""``[[events]]`` and ``--packets`` on the virtual clock (docs/virtual-time.md,
"Events and budgets in virtual time").  Mechanisms only: an event happens at
its virtual time whatever the host does (the packets that got through before
it are the ones sent before it), a slow NIC charges virtual wire time from
the event on, a budget is exact and its window ends at its last wire finish,
and faults end the run with a report, an exit code and nothing left."""

from __future__ import annotations

import time

import pytest

from netq.kernel.costs import ERAS
from netq.kernel.profiles import PROFILES
from netq.machine.config import DeviceConfig, EventConfig, RunConfig, TrafficConfig
from tests import harness
from tests.test_machine_result import run_json, validator
from workers.supervisor import Supervisor

pytestmark = pytest.mark.slow

#: the 2010 prices' cost of one skb on the uncontended bypass path (as
#: tests/test_virtual_time.py derives it): the one-CPU run's packet interval
C = ERAS[PROFILES["3.13"].hardware]
PER_PACKET = C.sendmsg_ns + C.pick_tx_ns + 3 * C.lock_ns + C.xmit_ns + C.doorbell_ns
MS = 1_000_000


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


def test_dev_close_at_a_virtual_time_lets_through_exactly_what_was_sent_before():
    """dev_close at virtual 2 ms of a 5 ms run: the packets on the wire are
    those sent before 2 ms (one per PER_PACKET), every later one meets the
    noop qdisc; the event row carries its virtual time."""
    at = 2 * MS
    res = vrun(events=[EventConfig(at=at / 1e9, action="dev_close", device="eth0")])
    (ev,) = res["events"]
    assert ev["vt_at_ns"] == at and ev["vt_done_ns"] >= at
    assert abs(res["delivered"] - at / PER_PACKET) <= 1, (res["delivered"], at / PER_PACKET)
    assert res["generated"] > 2 * res["delivered"]  # the CPU went on sending after it
    assert res["drops"]["NOOP_QDISC"] == res["generated"] - res["delivered"]
    assert res["invariants_ok"]


def test_dev_close_then_dev_open_in_virtual_time():
    """Closed from 1 to 3 ms of a 5 ms run: what is delivered is what was
    sent in the 3 ms the device was up."""
    res = vrun(
        events=[
            EventConfig(at=0.003, action="dev_open", device="eth0"),
            EventConfig(at=0.001, action="dev_close", device="eth0"),
        ]
    )
    assert [e["action"] for e in res["events"]] == ["dev_close", "dev_open"]
    assert [e["vt_at_ns"] for e in res["events"]] == [1 * MS, 3 * MS]
    assert abs(res["delivered_in_window"] - 3 * MS / PER_PACKET) <= 3
    assert res["invariants_ok"]


def test_slow_nic_charges_virtual_wire_time_from_the_event_on():
    """slow_nic 2000 ns at virtual 2 ms: before it the unpaced wire takes
    each packet as it is posted (one per PER_PACKET); from it on the wire
    needs 2 us per packet, slower than the CPU, so the window's 3 ms left
    carry exactly 1500 packets more; packets whose wire started before 2 ms
    are not slowed."""
    at = 2 * MS
    res = vrun(events=[EventConfig(at=at / 1e9, action="slow_nic", value=2000)])
    assert res["events"][0]["vt_at_ns"] == at
    want = at / PER_PACKET + (5 * MS - at) / 2000
    assert abs(res["delivered_in_window"] - want) <= 2, (res["delivered_in_window"], want)
    assert res["invariants_ok"]


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


def test_events_and_a_budget_together():
    """A budget run with events: each event happens at its virtual time
    while the budget is being sent; the budget stays exact."""
    res = vrun(
        cpus=2,
        packets=3000,
        slack_ns=20,
        devices=[DeviceConfig(tx_queues=2, ring_size=256)],
        traffic=[TrafficConfig(sockets_per_cpu=1)],
        events=[
            EventConfig(at=0.0005, action="set_real_num_tx_queues", device="eth0", value=1),
            EventConfig(at=0.001, action="slow_nic", value=500),
        ],
    )
    assert res["generated"] == 3000 and res["invariants_ok"]
    assert [e["vt_at_ns"] for e in res["events"]] == [MS // 2, MS]
    assert res["setup"]["devices"][0]["real_num_tx_queues"] == 1


def test_a_fault_on_the_virtual_clock_breaks_conservation():
    res = vrun(
        status="invariant",
        duration=0.002,
        events=[EventConfig(at=0.001, action="fault", fault="lose_one")],
    )
    assert not res["invariants_ok"] and res["events"][0]["vt_at_ns"] == MS


def _faulty(tmp_path, action: str) -> str:
    path = tmp_path / f"{action}.toml"
    path.write_text(
        'cpus = 2\nclock = "virtual"\nduration = 0.005\nstall_timeout = 1.0\n'
        "[[devices]]\ntx_queues = 1\n[[traffic]]\nsockets_per_cpu = 1\n"
        f'[[events]]\nat = 0.001\naction = "{action}"\nworker = "cpu1"\n'
    )
    return str(path)


@pytest.mark.parametrize(
    "action,says",
    [("kill", "killed by signal 9"), ("stop", "RUN STALLED")],
)
def test_kill_and_stop_on_the_virtual_clock_end_cleanly(tmp_path, action, says):
    """A worker killed or stopped at virtual 1 ms: the run ends with a
    report and exit 1 (a stopped participant holds GVT, so the machine
    stops with it and the watchdog calls it stalled), every process and
    IPC object gone."""
    p = harness.start_netq("--config", _faulty(tmp_path, action), "--quiet")
    kids: set[int] = set()  # a killed worker's run may be over in a few ms
    deadline = time.monotonic() + 60
    while p.poll() is None and time.monotonic() < deadline:
        kids |= set(harness.children(p.pid))
        time.sleep(0.002)
    r = harness.finish(p, 60)
    assert r.returncode == 1 and says in r.output, r.output
    assert "event at virtual 1.000000 ms" in r.output, r.output
    assert harness.wait_gone(sorted(kids), 5.0) == [] and harness.leftovers(p.pid) == []


def test_a_virtual_run_with_events_and_a_budget_validates(tmp_path):
    """The JSON of such a run (event rows with their virtual times, the
    window a budget's) validates against the shipped schema."""
    exp = tmp_path / "exp.toml"
    exp.write_text(
        'cpus = 2\nclock = "virtual"\npackets = 500\n[[devices]]\ntx_queues = 2\n'
        "[[traffic]]\nsockets_per_cpu = 1\n"
        '[[events]]\nat = 0.0001\naction = "slow_nic"\nvalue = 100\n'
        '[[events]]\nat = 0.0002\naction = "dev_close"\ndevice = "eth0"\n'
        '[[events]]\nat = 0.0002\naction = "dev_open"\ndevice = "eth0"\n'
    )
    doc = run_json(tmp_path, "--config", str(exp))
    validator().validate(doc)
    assert doc["generated"] == 500 and doc["vt"]["window"] == "packets"
    rows = doc["events"]
    assert [e["action"] for e in rows] == ["slow_nic", "dev_close", "dev_open"]
    assert rows[0]["vt_at_ns"] == 100_000 and rows[1]["vt_at_ns"] == 200_000
    # dev_open, due at the same time, is done once dev_close's work is
    assert rows[2]["vt_at_ns"] == rows[1]["vt_done_ns"] >= 200_000
