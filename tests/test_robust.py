"""Nothing orphaned, nothing misreported (issue 12): workers die with their
supervisor, --cleanup ends a dead run's leftovers and never a live run's,
signals at every phase give 130/143 and leave nothing, a slow sender is not
a stall, the stall report shows a stopped process as stopped, the fault and
profiler switches are configuration (issue 11)."""

from __future__ import annotations

import json
import mmap
import os
import signal
import subprocess
import sys
import time

import pytest

from netq.app import report
from netq.app import run as cli
from netq.machine.config import DeviceConfig, EventConfig, RunConfig, TrafficConfig
from shm.ipc import (
    IpcOwner,
    child_pids,
    cleanup_stale,
    end_stale_processes,
    pid_alive,
    stale_processes,
)
from workers import supervisor as sup
from workers.platform import die_with_parent, parent_death_signal, proc_state

from .harness import ROOT, finish, kill_all, leftovers, netq, start_netq, wait_children, wait_gone


def _live_children() -> list[int]:
    return [k for k in child_pids(os.getpid()) if pid_alive(k)]


# -- 1: workers die with their supervisor ------------------------------------------------
def test_die_with_parent_sets_sigkill_and_checks_the_forker():
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.close(r)
        die_with_parent(os.getppid())
        os.write(w, str(parent_death_signal()).encode())
        os._exit(0)
    os.close(w)
    got = os.read(r, 16)
    os.close(r)
    os.waitpid(pid, 0)
    assert int(got) == signal.SIGKILL
    # a worker whose forker is already gone (its parent is not that pid) exits at once
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        die_with_parent(os.getppid() + 1_000_000)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 1


def test_sigkill_of_the_supervisor_takes_every_worker_and_cleanup_leaves_nothing():
    p = start_netq("busylock", "--duration", "30", "--quiet")
    workers: list[int] = []
    try:
        workers = wait_children(p, 5)  # NIC + 4 CPUs
        os.kill(p.pid, signal.SIGKILL)
        p.communicate(timeout=30)
        assert wait_gone(workers, 1.0) == []
        r = netq("--cleanup")
        assert r.returncode == 0, r.stderr
        assert leftovers(p.pid) == []
        assert wait_gone(workers, 0.0) == []
    finally:
        kill_all([*workers, p.pid])


_ORPHAN_MAKER = """
import mmap, os, sys, time
from shm.ipc import IpcOwner
o = IpcOwner()
seg = o.segment("net", 4096)
mm = mmap.mmap(seg.fd, 4096)
pid = os.fork()
if pid == 0:
    fd = os.open(os.devnull, os.O_RDWR)
    for k in (0, 1, 2):
        os.dup2(fd, k)  # let the caller's pipes close
    time.sleep(120)
    os._exit(0)
print(pid, flush=True)
os._exit(0)  # the owner dies without cleanup, as a SIGKILLed supervisor does
"""


def test_cleanup_ends_a_dead_runs_worker_and_never_a_live_runs():
    # a worker without a death signal whose run owner is gone (as a netq
    # before this fix left them) ...
    out = subprocess.run(
        [sys.executable, "-c", _ORPHAN_MAKER],
        cwd=ROOT,
        capture_output=True,
        check=True,
        text=True,
        timeout=60,
        env=dict(os.environ, PYTHONPATH=ROOT),
    )
    orphan = int(out.stdout.split()[0])
    # ... and a live run: this process owns a segment, its child maps it
    owner = IpcOwner()
    seg = owner.segment("net", 4096)
    mm = mmap.mmap(seg.fd, 4096)
    live = os.fork()
    if live == 0:  # pragma: no cover - child
        time.sleep(120)
        os._exit(0)
    try:
        assert pid_alive(orphan)
        stale = stale_processes()
        assert orphan in stale and live not in stale and os.getpid() not in stale
        ended = end_stale_processes()
        assert any(line.startswith(f"pid {orphan} ") for line in ended)
        assert not pid_alive(orphan)
        cleanup_stale()
        assert pid_alive(live) and sorted(leftovers(os.getpid())) == sorted(
            n.lstrip("/") for n in owner.names()
        )
    finally:
        kill_all([orphan, live])
        os.waitpid(live, 0)
        mm.close()
        owner.close()


# -- 9: signals at every phase -------------------------------------------------------------
PHASES = {
    "starting": (sup.Supervisor, "_wait_ready"),
    "running": (sup.Supervisor, "_watch_run"),
    "draining": (sup.Supervisor, "_drain"),
    "reporting": (report, "comparison"),
}


@pytest.mark.parametrize("phase", list(PHASES))
@pytest.mark.parametrize(
    "sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 143)]
)
def test_a_signal_at_every_phase_gives_its_code_and_leaves_nothing(
    monkeypatch, capsys, phase, sig, code
):
    owner, name = PHASES[phase]
    original = getattr(owner, name)
    hit = []

    def signalled(*a, **kw):
        hit.append(phase)
        os.kill(os.getpid(), sig)
        time.sleep(0.5)  # the handler runs here, at the latest
        return original(*a, **kw)

    monkeypatch.setattr(owner, name, signalled)
    rc = cli.main(["--cpus", "2", "--tx-queues", "2", "--duration", "0.2", "--quiet"])
    err = capsys.readouterr().err
    assert hit and rc == code, err
    assert "Traceback" not in err
    assert wait_gone(_live_children(), 5.0) == []
    assert leftovers(os.getpid()) == []


def test_ctrl_c_to_the_process_group_while_workers_start():
    p = start_netq("--duration", "5", "--quiet")
    kids: list[int] = []
    try:
        kids = wait_children(p, 1)  # the first worker is forked: starting
        os.killpg(p.pid, signal.SIGINT)
        r = finish(p, 60)
        code, err = r.returncode, r.stderr
        assert code == 130, err
        assert "Traceback" not in err and "AssertionError" not in err
        assert wait_gone(kids, 5.0) == [] and leftovers(p.pid) == []
    finally:
        kill_all(kids)


def test_sighup_is_a_quiet_sigterm():
    p = start_netq("--duration", "20", "--quiet")
    kids: list[int] = []
    try:
        kids = wait_children(p, 3)
        os.killpg(p.pid, signal.SIGHUP)
        r = finish(p, 60)
        code, err = r.returncode, r.stderr
        assert code == 143, err
        assert "Traceback" not in err and len(err.splitlines()) <= 2, err
        assert wait_gone(kids, 5.0) == [] and leftovers(p.pid) == []
    finally:
        kill_all(kids)


# -- 7: the watchdog knows what progress a rate allows ------------------------------------
def test_a_slow_sender_is_not_a_stall():
    cfg = RunConfig(
        cpus=2,
        duration=2.5,
        # below the 2 s between a sender's packets, above a loaded host's
        # scheduling delays (the drain waits for every CPU to see the stop)
        stall_timeout=1.0,
        seed=1,
        devices=[DeviceConfig(tx_queues=2)],
        traffic=[TrafficConfig(sockets_per_cpu=1, rate_pps=0.5)],
    )
    assert sup.cpu_rates(cfg) == [0.5, 0.5]
    out = sup.Supervisor(cfg).run()
    assert out.status == "ok", out.faults
    assert all(1 <= c["generated"] <= 3 for c in out.result["cpus"])


def test_cpu_rates_follow_the_generator():
    cfg = RunConfig(
        cpus=3,
        traffic=[
            TrafficConfig(cpus=[0, 1], rate_pps=10),
            TrafficConfig(cpus=[1], rate_pps=5),
            TrafficConfig(cpus=[2], rate_pps=0),
        ],
    )
    assert sup.cpu_rates(cfg) == [10.0, 15.0, 0.0]


# -- 8: the stall report -------------------------------------------------------------------
class _Locks:
    def __init__(self, reads):
        self.reads = reads

    def holders(self):
        return [dict(h, waiters=list(h["waiters"])) for h in self.reads.pop(0)]


class _Net:
    def __init__(self, reads):
        self.locks = _Locks(reads)


def test_lock_snapshot_reads_until_stable_and_an_owner_is_not_its_own_waiter():
    moving = [{"lock": "root_lock", "owner_cpu": -1, "owner_pid": None, "waiters": [1]}]
    settled = [{"lock": "root_lock", "owner_cpu": 1, "owner_pid": 7, "waiters": [1, 0]}]
    net = _Net([moving, settled, settled])
    holders, stable = sup.lock_snapshot(net)
    assert stable and holders[0]["owner_cpu"] == 1 and holders[0]["waiters"] == [0]
    net = _Net([moving, settled] * 20)
    _, stable = sup.lock_snapshot(net, tries=5)
    assert not stable


def test_a_stopped_process_is_shown_as_stopped():
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        time.sleep(60)
        os._exit(0)
    try:
        os.kill(pid, signal.SIGSTOP)
        deadline = time.monotonic() + 10
        while proc_state(pid) not in ("T", "t") and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sup.process_state(pid) == "stopped"
        os.kill(pid, signal.SIGCONT)
        assert sup.process_state(pid) in ("alive", "stopped")
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert sup.process_state(pid) == "dead"


def test_stall_after_sigstop_reports_the_cpu_stopped():
    cfg = RunConfig(
        cpus=2,
        duration=20,
        stall_timeout=0.5,
        seed=1,
        devices=[DeviceConfig(tx_queues=1)],
        traffic=[TrafficConfig(sockets_per_cpu=1)],
        events=[EventConfig(at=0.1, action="stop", worker="cpu1")],
    )
    out = sup.Supervisor(cfg).run()
    assert out.status == "stalled"
    text = " ".join(out.faults)
    pid = out.result["cpus"][1]["pid"]
    assert f"cpu1 pid {pid} stopped (process)" in text, text
    for h in out.result["lock_holders"]:
        assert h["owner_cpu"] not in h["waiters"]


# -- issue 11: the debug switches are configuration ----------------------------------------
def test_the_lose_one_fault_is_an_event_and_conservation_catches_it():
    cfg = RunConfig(
        cpus=2,
        duration=0.5,
        seed=2,
        devices=[DeviceConfig(tx_queues=2)],
        traffic=[TrafficConfig(sockets_per_cpu=1)],
        events=[EventConfig(at=0.05, action="fault", fault="lose_one")],
    )
    out = sup.Supervisor(cfg).run()
    assert out.status == "invariant"
    assert out.result["generated"] == out.result["delivered"] + 1
    broken = [c["name"] for c in out.result["invariants"] if not c["ok"]]
    assert any("conservation" in b for b in broken), broken
    assert [e["action"] for e in out.result["events"]] == ["fault"]
    assert "lose_one" in out.result["events"][0]["result"]


def test_a_fault_at_zero_is_armed_before_the_first_packet():
    """at = 0: armed before the start gate opens; the very first skb is lost,
    its bytes are never completed, so BQL keeps the queue stopped: the run
    stalls and conservation says why."""
    cfg = RunConfig(
        cpus=2,
        packets=100,
        duration=30,
        seed=2,
        stall_timeout=0.5,
        devices=[DeviceConfig(tx_queues=1)],
        traffic=[TrafficConfig(sockets_per_cpu=1)],
        events=[EventConfig(at=0.0, action="fault", fault="lose_one")],
    )
    out = sup.Supervisor(cfg).run()
    assert out.status in ("stalled", "invariant")
    assert out.result["events"][0]["done_at"] == 0.0
    assert not next(c for c in out.result["invariants"] if c["name"] == "conservation")["ok"]


def test_profile_dir_writes_one_profile_per_cpu(tmp_path, capsys):
    assert "--profile-dir" in cli.build_parser().format_help()
    rc = cli.main(
        [
            "--config",
            _toml(tmp_path, "cpus = 2\npackets = 50\nduration = 30\n"),
            "--profile-dir",
            str(tmp_path),
            "--quiet",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    assert sorted(f for f in os.listdir(tmp_path) if f.endswith(".prof")) == [
        "cpu0.prof",
        "cpu1.prof",
        "nic.prof",
    ]


def test_profile_dir_keeps_one_directory_per_variant(tmp_path, capsys):
    """With variants, each writes its profiles into DIR/LABEL (else each
    variant would overwrite the one before)."""
    exp = _toml(
        tmp_path,
        "cpus = 1\npackets = 30\nduration = 30\n"
        '[[variants]]\nlabel = "a one"\nseed = 1\n[[variants]]\nlabel = "b/two"\nseed = 2\n',
    )
    out = tmp_path / "prof"
    out.mkdir()
    assert cli.main(["--config", exp, "--profile-dir", str(out), "--quiet"]) == 0
    capsys.readouterr()
    assert sorted(os.listdir(out)) == ["a_one", "b_two"]
    assert all(sorted(os.listdir(out / d)) == ["cpu0.prof", "nic.prof"] for d in ("a_one", "b_two"))


def _toml(tmp_path, text: str) -> str:
    path = tmp_path / "exp.toml"
    path.write_text(text)
    return str(path)


# -- 5, 6, 10: dubious inputs are said, the JSON is strict -----------------------------------
def test_an_event_after_the_end_and_identical_variants_are_said(tmp_path, capsys):
    path = _toml(
        tmp_path,
        "cpus = 2\nduration = 0.2\n"
        '[[events]]\nat = 100\naction = "slow_nic"\nvalue = 10\n'
        '[[variants]]\nlabel = "a"\n[[variants]]\nlabel = "b"\n',
    )
    rc = cli.main(["--config", path, "--quiet"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "events[0].at: 100 s is not before the end of the run" in err
    assert "'a' = 'b' are the same configuration" in err


def test_duration_with_packets_is_said(monkeypatch, capsys):
    monkeypatch.setattr(cli, "run_preset", lambda *a, **kw: 0)
    assert cli.main(["--packets", "10", "--duration", "1"]) == 0
    assert "--duration is ignored with --packets" in capsys.readouterr().err


def test_json_is_strict():
    doc = cli.strict_json({"a": float("nan"), "b": [float("inf"), 1.5], "c": {"d": -float("inf")}})
    assert doc == {"a": None, "b": [None, 1.5], "c": {"d": None}}
    json.loads(json.dumps(doc, allow_nan=False))


def test_qdisc_help_names_every_qdisc():
    text = cli.build_parser().format_help()
    for q in ("default", "pfifo_fast", "pfifo", "fq", "mq", "noqueue"):
        assert q in text
