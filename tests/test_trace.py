"""Traces (--trace, --timeline): a traced run's Perfetto trace, read back
with the protobuf classes, agrees with the run's own counters; spans on one
track nest; every delivered skb has its enqueue and wire events; a full log
drops events and says so; tracing off records nothing."""

from __future__ import annotations

import os
from collections import Counter, defaultdict

import pytest

from netq.kernel import tracepoints as tp
from netq.machine.config import (
    CostConfig,
    DeviceConfig,
    RunConfig,
    TrafficConfig,
)
from netq.machine.plan import plan_layout, plan_run
from workers.supervisor import Supervisor

perfetto_pb2 = pytest.importorskip(
    "perfetto.protos.perfetto.trace.perfetto_trace_pb2",
    reason="the trace extra (perfetto) is not installed",
)
from netq.app import perfetto  # noqa: E402  (needs the trace extra)

pytestmark = pytest.mark.slow
TE = perfetto_pb2.TrackEvent


def traced(tmp_path, **kw) -> tuple:
    cfg = RunConfig(
        cpus=kw.pop("cpus", 3),
        duration=kw.pop("duration", 0.3),
        seed=1,
        strategy=kw.pop("strategy", "busylock"),
        devices=[DeviceConfig(tx_queues=1, ring_size=64)],
        traffic=[TrafficConfig(sockets_per_cpu=1, length=[200, 1400])],
        costs=CostConfig(enqueue_ns=500, xmit_ns=1000),
        trace=str(tmp_path / "t.pftrace"),
        **kw,
    )
    cfg.validate()
    out = Supervisor(cfg).run()
    assert out.status == "ok", out.faults
    assert out.trace is not None
    return out.result, out.trace


def parse(t) -> tuple[dict[int, str], list]:
    """(track uuid -> name, event packets) of the serialized trace."""
    trace = perfetto_pb2.Trace()
    trace.ParseFromString(perfetto.build(t))
    names, events = {}, []
    for p in trace.packet:
        if p.HasField("track_descriptor"):
            names[p.track_descriptor.uuid] = p.track_descriptor.name
        elif p.HasField("track_event"):
            events.append(p)
    return names, events


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    # a packet budget, not a duration: the event count must not grow with
    # the host's speed past the logs' capacity (2**17 events each)
    return traced(tmp_path_factory.mktemp("trace"), packets=3000)


def test_qdisc_runs_lock_acquisitions_and_contentions_match_the_run(run):
    res, t = run
    assert t.total_dropped == 0
    _, events = parse(t)
    begins = Counter(
        e.track_event.name for e in events if e.track_event.type == TE.TYPE_SLICE_BEGIN
    )
    runs = sum(n for name, n in begins.items() if name.startswith("qdisc run "))
    assert runs == sum(q["runs"] for q in res["qdiscs"]) > 0
    for row in res["locks"]:
        name = row["name"]
        assert begins[f"hold {name}"] == row["acquisitions"], name
        assert begins[f"wait {name}"] == row["contentions"], name
    assert sum(row["contentions"] for row in res["locks"]) > 0  # contended: the test can fail


def test_every_delivered_skb_has_its_enqueue_and_wire_events_joined_by_a_flow(run):
    res, t = run
    _, events = parse(t)
    queued = [e for e in events if e.track_event.name == "net_dev_queue"]
    wired = [e for e in events if e.track_event.name == "net_dev_xmit"]
    assert len(queued) == res["generated"] and len(wired) == res["delivered"] > 0
    started = {f for e in queued for f in e.track_event.flow_ids}
    ended = {f for e in wired for f in e.track_event.terminating_flow_ids}
    assert len(ended) == len(wired) and ended <= started
    # every skb's wire finish comes after its enqueue
    t_q = {e.track_event.flow_ids[0]: e.timestamp for e in queued}
    assert all(e.timestamp >= t_q[e.track_event.terminating_flow_ids[0]] for e in wired)


def test_slices_on_each_track_nest(run):
    _, t = run
    names, events = parse(t)
    stacks: dict[int, list] = defaultdict(list)
    last: dict[int, int] = {}
    for e in events:
        uid, ts = e.track_event.track_uuid, e.timestamp
        assert ts >= last.get(uid, 0), f"time goes back on {names[uid]}"
        last[uid] = ts
        if e.track_event.type == TE.TYPE_SLICE_BEGIN:
            stacks[uid].append(ts)
        elif e.track_event.type == TE.TYPE_SLICE_END:
            assert stacks[uid], f"an end without a begin on {names[uid]}"
            assert stacks[uid].pop() <= ts
    assert not any(stacks.values())  # every slice ended


def test_one_track_per_cpu_lock_and_the_lock_counters(run):
    _res, t = run
    names, events = parse(t)
    assert {"cpu0", "cpu1", "cpu2", "nic", "locks"} <= set(names.values())
    owners = [
        e.track_event.counter_value
        for e in events
        if e.track_event.type == TE.TYPE_COUNTER
        and names[e.track_event.track_uuid].endswith(" owner")
    ]
    assert owners and set(owners) <= {-1, 0, 1, 2, 3}  # CPUs, the control process, free


def test_a_full_log_drops_events_and_says_how_many(tmp_path):
    _res, t = traced(tmp_path, trace_events=1024, duration=0.2)
    assert t.total_dropped > 0 and all(len(ev) <= 1024 for ev in t.events)
    _names, events = parse(t)
    assert any(f"{t.total_dropped} events dropped" in e.track_event.name for e in events)
    stacks: dict[int, int] = defaultdict(int)
    for e in events:  # still balanced: the slices the logs cut are closed
        if e.track_event.type == TE.TYPE_SLICE_BEGIN:
            stacks[e.track_event.track_uuid] += 1
        elif e.track_event.type == TE.TYPE_SLICE_END:
            stacks[e.track_event.track_uuid] -= 1
            assert stacks[e.track_event.track_uuid] >= 0
    assert not any(stacks.values())


def test_the_kernel_tracepoints_count_what_the_counters_count(run):
    res, t = run
    kinds = Counter()
    for ev in t.events:
        kinds.update(ev[:, 1].tolist())
    assert kinds[tp.NET_DEV_START_XMIT] == kinds[tp.NET_DEV_XMIT] == res["delivered"]
    assert kinds[tp.SOFTIRQ_ENTRY] == kinds[tp.SOFTIRQ_EXIT] == res["mechanism"]["softirq_runs"]
    assert kinds[tp.QDISC_BYPASS] == sum(q["bypass"] for q in res["qdiscs"])


def test_tracing_off_records_nothing():
    cfg = RunConfig(cpus=1)
    assert "trace_events" not in plan_layout(plan_run(cfg)).sections
    cfg.trace = "x.pftrace"
    assert "trace_events" in plan_layout(plan_run(cfg)).sections


def test_the_command_writes_the_trace_and_the_timeline(tmp_path):
    from netq.app import run as cli

    pytest.importorskip("matplotlib")
    trace, png = tmp_path / "b.pftrace", tmp_path / "b.png"
    rc = cli.main(
        [
            "--cpus",
            "2",
            "--duration",
            "0.2",
            "--quiet",
            "--trace",
            str(trace),
            "--timeline",
            str(png),
        ]
    )
    assert rc == 0
    # the default experiment has two variants: a file of each per variant
    files = sorted(os.listdir(tmp_path))
    assert len([f for f in files if f.endswith(".pftrace")]) == 2
    pngs = [f for f in files if f.endswith(".png")]
    assert len(pngs) == 2
    with open(tmp_path / pngs[0], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "args,field",
    [
        (["--trace", "/nonexistent-netq/t.pftrace"], "--trace"),
        (["--timeline", "/nonexistent-netq/t.png"], "--timeline"),
    ],
)
def test_an_unwritable_trace_path_is_refused_before_the_run(tmp_path, capsys, args, field):
    from netq.app import run as cli

    assert cli.main(["--duration", "0.2", *args]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and field in err


def test_the_stress_job_keeps_a_failed_runs_trace_beside_its_reproducer(tmp_path, capsys):
    from netq.app import stress

    junit = tmp_path / "j.xml"
    rc = stress.main(
        [
            "--runs",
            "1",
            "--seed",
            "5",
            "--fault",
            "lose_one",
            "--traces",
            "--quiet",
            "--junit",
            str(junit),
        ]
    )
    out = capsys.readouterr().out
    assert rc == 1
    files = sorted(os.listdir(tmp_path))
    assert "stress-seed5-000.toml" in files and "stress-seed5-000.pftrace" in files
    assert f"trace: {tmp_path / 'stress-seed5-000.pftrace'}" in out
    trace = perfetto_pb2.Trace()
    with open(tmp_path / "stress-seed5-000.pftrace", "rb") as f:
        trace.ParseFromString(f.read())
    assert any(p.HasField("track_event") for p in trace.packet)


def test_a_passing_stress_job_keeps_no_trace(tmp_path):
    from netq.app import stress

    assert (
        stress.main(
            [
                "--runs",
                "1",
                "--seed",
                "3",
                "--traces",
                "--quiet",
                "--junit",
                str(tmp_path / "j.xml"),
            ]
        )
        == 0
    )
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".pftrace")]
