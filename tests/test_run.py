"""python -m netq.run: the default experiment, JSON, faults, Ctrl-C, stalls, bad input.

Each test runs the tool as a user would, in a subprocess with a hard timeout,
and checks exit codes, what the report names, and that /dev/shm is clean.
"""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from netq.machine.result import RESULT_VERSION
from tests.harness import children, finish, leftovers, netq, start_netq, wait_children

KEYS = (
    "version",
    "setup",
    "pps",
    "cpu_ns_per_packet",
    "queues",
    "qdiscs",
    "locks",
    "drops",
    "latency",
    "invariants_ok",
)


def test_default_experiment_conserves_packets(tmp_path):
    path = tmp_path / "out.json"
    r = netq("--duration", "0.5", "--json", str(path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "side by side" in r.stdout and "xps 1:1" in r.stdout
    doc = json.loads(path.read_text())
    for k in KEYS:
        assert k in doc, k
    assert doc["version"] == RESULT_VERSION and len(doc["variants"]) == 2
    for v in doc["variants"]:
        assert v["invariants_ok"] and v["status"] == "ok"
        assert v["generated"] == v["delivered"] + sum(v["drops"].values())
        assert {"device", "queue", "packets", "bytes"} <= set(v["queues"][0])
        assert v["setup"]["cpus"] == 2 and len(v["queues"]) == 4


def test_json_of_a_single_run_has_every_documented_key(tmp_path):
    path = tmp_path / "one.json"
    r = netq(
        "--config",
        str(
            _toml(
                tmp_path,
                'cpus = 1\nduration = 0.3\n[[devices]]\nname = "eth0"\n'
                'tx_queues = 2\nxps = {0 = "1"}\n',
            )
        ),
        "--json",
        str(path),
        "--quiet",
    )
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(path.read_text())
    for k in KEYS:
        assert k in doc, k
    assert doc["setup"]["devices"][0]["xps"]["0"] == "1"
    assert all(q["device"] == "eth0" for q in doc["queues"])


def _toml(tmp_path, text: str):
    p = tmp_path / "exp.toml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("victim", ["cpu", "nic"])
def test_killed_worker_ends_run_with_report_and_clean_shm(victim):
    p = start_netq("--duration", "20", "--cpus", "2", "--stall-timeout", "5")
    kids = wait_children(p, 3)
    time.sleep(1.0)
    # the NIC is started first (lowest pid), the CPUs after it
    target = kids[0] if victim == "nic" else kids[-1]
    os.kill(target, signal.SIGKILL)
    r = finish(p)
    code, out = r.returncode, r.output
    assert code == 1, out
    assert f"(pid {target}) died: killed by signal 9" in out
    assert not leftovers(p.pid)


def test_ctrl_c_gives_partial_report_exit_130_and_clean_shm():
    p = start_netq("--duration", "20", "--cpus", "2")
    wait_children(p, 3)
    time.sleep(1.0)
    p.send_signal(signal.SIGINT)
    r = finish(p)
    code, out = r.returncode, r.output
    assert code == 130, out
    assert "INTERRUPTED" in out and "tc -s qdisc show" in out
    assert not leftovers(p.pid)
    assert not children(p.pid)


def test_stopped_worker_is_reported_as_a_stall():
    p = start_netq("--duration", "30", "--cpus", "2", "--stall-timeout", "1")
    kids = wait_children(p, 3)
    time.sleep(1.0)
    os.kill(kids[-1], signal.SIGSTOP)
    r = finish(p)
    code, out = r.returncode, r.output
    assert code == 1, out
    assert "STALLED" in out and "no progress" in out
    assert not leftovers(p.pid)


BAD = [
    (["--cpus", "0"], "cpus"),
    (["--tx-queues", "0"], "tx_queues"),
    (["--ring-size", "1000"], "ring_size"),
    (["--xps", "0=4", "--cpus", "2", "--tx-queues", "2"], "(CPU 2)"),
    (["--xps", "0=zz", "--tx-queues", "2"], "xps"),
    (["--xps", "7=1", "--tx-queues", "2"], "queue 7"),
    (["--rate", "-5"], "rate_pps"),
    (["--strategy", "spinny"], "strategy"),
    (["--profile", "9.9"], "profile"),
    (["--lock-fairness", "ticket"], "lock_fairness"),
    (["--duration", "0"], "duration"),
    (["nosuchpreset"], "unknown preset"),
    (["--cpu-map", "0,x"], "--cpu-map"),
    (["--bogus"], "unrecognized"),
]


@pytest.mark.parametrize("args,needle", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_one_line_exit_2_nothing_created(args, needle):
    r = netq(*args, timeout=60)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], r.stderr
    assert r.stdout == ""
    assert not leftovers(r.pid)


@pytest.mark.parametrize(
    "text,needle",
    [
        ("cpus = 2\nwibble = 3\n", "wibble: unknown key"),
        ('[[devices]]\nname = "eth0"\nring_size = 300\n', "ring_size"),
        ("cpus = [\n", "not valid TOML"),
        ('[[devices]]\nname = "v0"\nkind = "vlan"\n', "lower"),
        ('[[traffic]]\ndevice = "nope"\n', "traffic[0].device"),
    ],
)
def test_bad_experiment_file(tmp_path, text, needle):
    r = netq("--config", str(_toml(tmp_path, text)), timeout=60)
    assert r.returncode == 2 and needle in r.stderr, r.stderr


def test_list_and_help():
    r = netq("--list", timeout=60)
    assert r.returncode == 0 and "busylock" in r.stdout and "recursion" in r.stdout
    r = netq("--help", timeout=60)
    assert r.returncode == 0 and "--xps QUEUE=MASK" in r.stdout


def test_events_change_a_running_experiment(tmp_path):
    """ethtool -L, ip link down/up and a slow NIC mid-run: every skb still accounted."""
    path = tmp_path / "ev.json"
    text = (
        'cpus = 2\nduration = 1.6\n[[devices]]\nname = "eth0"\ntx_queues = 4\n'
        '[[events]]\nat = 0.3\naction = "set_real_num_tx_queues"\ndevice = "eth0"\nvalue = 2\n'
        '[[events]]\nat = 0.6\naction = "dev_close"\ndevice = "eth0"\n'
        '[[events]]\nat = 0.9\naction = "dev_open"\ndevice = "eth0"\n'
        '[[events]]\nat = 1.2\naction = "slow_nic"\nvalue = 5000\n'
    )
    r = netq("--config", str(_toml(tmp_path, text)), "--json", str(path), "--quiet")
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(path.read_text())
    assert [e["action"] for e in doc["events"]] == [
        "set_real_num_tx_queues",
        "dev_close",
        "dev_open",
        "slow_nic",
    ]
    assert doc["invariants_ok"]
    assert doc["drops"]["NOOP_QDISC"] > 0  # senders met noop_qdisc while down
    assert doc["setup"]["devices"][0]["real_num_tx_queues"] == 2


def test_projection_replaces_measured_handoffs_by_kernel_like_ones():
    """result.projection: the lock that lost most time to handoffs; its
    handoffs at 200 ns instead of their measured mean shorten the window."""
    from netq.machine.result import projection

    lock = {
        "name": "eth0 pfifo_fast root_lock",
        "handoffs": 1000,
        "handoff_total_ns": 500_000_000,
        "holdtime_total_ns": 400_000_000,
    }
    other = {
        "name": "eth0 pfifo_fast busylock",
        "handoffs": 10,
        "handoff_total_ns": 1_000_000,
        "holdtime_total_ns": 0,
    }
    res = {
        "locks": [other, lock],
        "window_s": 1.0,
        "delivered_in_window": 10_000,
        "delivered": 10_000,
    }
    pj = projection(res)
    assert pj["lock"] == lock["name"] and pj["mean_handoff_ns"] == 500_000
    assert pj["saved_s"] == pytest.approx(0.5 - 1000 * 200e-9)
    assert pj["measured_pps"] == 10_000
    assert pj["projected_pps"] == pytest.approx(10_000 / (1.0 - pj["saved_s"]))
    assert pj["busy_share"] == pytest.approx(0.9)
    # unfair locks have no handoffs: nothing to project
    assert projection({**res, "locks": [dict(lock, handoffs=0)]}) is None
