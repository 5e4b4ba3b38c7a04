"""Every bad input is exit 2, one line on stderr naming the field, nothing
created, no traceback (issue 12).  The table is run in-process (main() with
argv, a temporary working directory, the run itself replaced by a failure
so that an accepted input cannot pass); a handful also as real processes.
"""

from __future__ import annotations

import os

import pytest

from netq.app import run as cli
from netq.app import stress
from shm.ipc import netq_objects

from .harness import netq as run_netq

# (argv, text the one line must contain): flags
FLAGS = [
    (["--cpus", "0"], "cpus"),
    (["--cpus", "-1"], "cpus"),
    (["--cpus", "65"], "cpus"),
    (["--cpus", "x"], "--cpus"),
    (["--cpus", "1.5"], "--cpus"),
    (["--cpus"], "--cpus"),
    (["--cpu-map", "x"], "--cpu-map"),
    (["--cpu-map", ""], "--cpu-map"),
    (["--cpu-map", "0,0,0"], "cpu_map"),
    (["--cpu-map", "9999,9999"], "cpu_map"),
    (["--cpu-map", "-1"], "cpu_map"),
    (["--tx-queues", "0"], "tx_queues"),
    (["--tx-queues", "65"], "tx_queues"),
    (["--tx-queues", "x"], "--tx-queues"),
    (["--ring-size", "3"], "ring_size"),
    (["--ring-size", "0"], "ring_size"),
    (["--ring-size", "131072"], "ring_size"),
    (["--ring-size", "x"], "--ring-size"),
    (["--ring-size", "100"], "ring_size"),
    (["--qdisc", "cake"], "qdisc"),
    (["--qdisc", ""], "qdisc"),
    (["--qdisc", "mq", "--tx-queues", "1"], "qdisc"),
    (["--qdisc", "fq", "--profile", "2.6.37"], "qdisc"),
    (["--strategy", "spinny"], "strategy"),
    (["--strategy", "nolock"], "use profile 4.19 or 6.18"),
    (["--strategy", ""], "strategy"),
    (["--profile", "9.9"], "profile"),
    (["--profile", ""], "profile"),
    (["--xps", "junk"], "--xps"),
    (["--xps", "=1"], "--xps"),
    (["--xps", "-1=1"], "--xps"),
    (["--xps", "0=zz", "--tx-queues", "2"], "xps"),
    (["--xps", "7=1", "--tx-queues", "2"], "queue 7"),
    (["--xps", "0=4", "--cpus", "2", "--tx-queues", "2"], "xps"),
    (["--xps", "0=1", "--xps", "0=2", "--tx-queues", "2"], "--xps"),
    (["--xps", "0=", "--tx-queues", "2"], "xps"),
    (["--rate", "-1"], "rate_pps"),
    (["--rate", "nan"], "--rate"),
    (["--rate", "inf"], "--rate"),
    (["--rate", "-inf"], "--rate"),
    (["--rate", "x"], "--rate"),
    (["--sockets", "0"], "sockets_per_cpu"),
    (["--sockets", "-1"], "sockets_per_cpu"),
    (["--sockets", "5000"], "sockets_per_cpu"),
    (["--sockets", "x"], "--sockets"),
    (["--duration", "0"], "duration"),
    (["--duration", "-1"], "duration"),
    (["--duration", "3601"], "duration"),
    (["--duration", "nan"], "--duration"),
    (["--duration", "inf"], "--duration"),
    (["--clock", "virtual", "--packets", "-1"], "packets"),
    (["--clock", "virtual", "--duration", "11"], "duration"),
    (["--duration", "x"], "--duration"),
    (["--packets", "-1"], "packets"),
    (["--packets", "x"], "--packets"),
    (["--packets", "1.5"], "--packets"),
    (["--seed", "-1"], "seed"),
    (["--seed", "4294967296"], "seed"),
    (["--seed", "x"], "--seed"),
    (["--lock-fairness", "ticket"], "lock_fairness"),
    (["--lock-fairness", "unfair", "--clock", "virtual"], "'unfair' needs the wall clock"),
    (["--lock-wait", "nap"], "lock_wait"),
    (["--stall-timeout", "0"], "stall_timeout"),
    (["--stall-timeout", "0.05"], "stall_timeout"),
    (["--stall-timeout", "601"], "stall_timeout"),
    (["--stall-timeout", "nan"], "--stall-timeout"),
    (["--stall-timeout", "x"], "--stall-timeout"),
    (["--json", "/nonexistent-netq-dir/x.json"], "--json"),
    (["--json", "."], "--json"),
    (["--json", "/proc/netq-x.json"], "--json"),
    (["--json", "{file}/x.json"], "--json"),
    (["--profile-dir", "/nonexistent-netq-dir"], "--profile-dir"),
    (["--profile-dir", "{file}"], "--profile-dir"),
    (["--profile-dir", "/proc"], "--profile-dir"),
    (["--cleanup", "busylock"], "--cleanup"),
    (["--cleanup", "--cpus", "2"], "--cleanup"),
    (["--cleanup", "--json", "x.json"], "--cleanup"),
    (["--list", "--cpus", "0"], "--list"),
    (["--list", "busylock"], "--list"),
    (["nosuchpreset"], "preset"),
    (["busylock", "--config", "{toml}"], "--config"),
    (["--config", "/nonexistent-netq.toml"], "--config"),
    (["--config", "."], "--config"),
    (["--bogus"], "--bogus"),
    (["busylock", "extra"], "extra"),
    (["busylock", "--strategy", "defer"], "strategy"),
    (["busylock", "--lock-fairness", "fifo"], "lock_fairness"),
    (["--xps", "0=1", "--tx-queues", "4"], "devices[0].xps"),
    (["generations", "--profile", "6.18"], "profile"),
    (["generations", "--qdisc", "fq"], "qdisc"),
    (["--tx-queues", "2", "--xps", "2=1"], "queue 2"),
    (["--cpus", "2", "--cpu-map", "0"], "cpu_map"),
]

# (TOML text or bytes, text the one line must contain): experiment files
TOML = [
    (b"\x00\x01\x02\xff\xfe garbage \x80\x81", "--config"),
    ("\ufeffcpus = 2\n".encode("utf-16"), "UTF-8"),
    ("x = " + "{a = " * 5000 + "1" + "}" * 5000 + "\n", "deeply"),
    ("x = " + "[" * 100000 + "]" * 100000 + "\n", "deeply"),
    ("cpus = \n", "not valid TOML"),
    ("cpus = 2\ncpus = 3\n", "not valid TOML"),
    ("[devices\n", "not valid TOML"),
    ("name = 5", "name"),
    ('duration = "1"', "duration"),
    ('stall_timeout = "3"', "stall_timeout"),
    ("profile = []", "profile"),
    ("explain = 5", "explain"),
    ('cpus = "2"', "cpus"),
    ("cpus = 1.5", "cpus"),
    ("cpus = true", "cpus"),
    ("cpus = 0", "cpus"),
    ("cpu_map = 3", "cpu_map"),
    ('cpu_map = ["a"]', "cpu_map[0]"),
    ("profile = 3", "profile"),
    ("strategy = 1", "strategy"),
    ('strategy = "x"', "strategy"),
    ('strategy = "nolock"', "pfifo_fast_nolock = true"),
    ("lock_fairness = 1", "lock_fairness"),
    ("lock_wait = []", "lock_wait"),
    ('spin_ns = "x"', "spin_ns"),
    ("spin_ns = -1", "spin_ns"),
    ("duration = true", "duration"),
    ("duration = nan", "duration"),
    ("duration = inf", "duration"),
    ("packets = 1.5", "packets"),
    ('packets = "1"', "packets"),
    ('seed = "x"', "seed"),
    ("seed = -1", "seed"),
    ("stall_timeout = -inf", "stall_timeout"),
    ('nic_batch = "x"', "nic_batch"),
    ("nic_batch = 0", "nic_batch"),
    ("nic_coalesce_us = 1.5", "nic_coalesce_us"),
    ("profile_dir = 5", "profile_dir"),
    ('profile_dir = "/nonexistent-netq-dir"', "profile_dir"),
    ("bogus = 1", "bogus"),
    ("devices = []", "devices"),
    ("devices = 3", "devices"),
    ("devices = [3]", "devices[0]"),
    ("traffic = []", "traffic"),
    ("traffic = 5", "traffic"),
    ("events = 5", "events"),
    ("costs = 5", "costs"),
    ('costs = {enqueue_ns = "x"}', "costs.enqueue_ns"),
    ("costs = {bogus = 1}", "costs.bogus"),
    ('costs = {era = "1999"}', "costs.era"),
    ("costs = {spinner_ns = -1}", "costs.spinner_ns"),
    ("costs = {doorbell_ns = 1e12}", "costs.doorbell_ns"),
    ("costs = {numa_nodes = 0}", "numa_nodes"),
    ("costs = {xmit_ns = -1}", "xmit_ns"),
    ("[[devices]]\nname = 5", "devices[0].name"),
    ('[[devices]]\nname = ""', "devices[0].name"),
    ('[[devices]]\nname = "a-very-long-device-name"', "devices[0].name"),
    ("[[devices]]\n[[devices]]", "devices[1].name"),
    ("[[devices]]\nkind = 1", "devices[0].kind"),
    ('[[devices]]\nkind = "wifi"', "kind"),
    ("[[devices]]\nlower = 5", "devices[0].lower"),
    ('[[devices]]\nlower = "eth1"', "lower"),
    ('[[devices]]\ntx_queues = "4"', "tx_queues"),
    ("[[devices]]\ntx_queues = 0", "tx_queues"),
    ('[[devices]]\nreal_tx_queues = "x"', "real_tx_queues"),
    ("[[devices]]\nreal_tx_queues = 2", "real_tx_queues"),
    ("[[devices]]\nring_size = 100", "ring_size"),
    ('[[devices]]\nring_size = "x"', "ring_size"),
    ("[[devices]]\ntx_queue_len = 0", "tx_queue_len"),
    ("[[devices]]\nqdisc = 5", "qdisc"),
    ('[[devices]]\nqdisc = "cake"', "qdisc"),
    ('[[devices]]\nlltx = "yes"', "lltx"),
    ("[[devices]]\nxps = 3", "xps"),
    ('[[devices]]\nxps = {a = "1"}', "xps"),
    ("[[devices]]\nxps = {0 = 1}", "xps.0"),
    ('[[devices]]\nxps = {0 = "zz"}', "xps"),
    ('[[devices]]\nxps = {5 = "1"}', "xps"),
    ('[[devices]]\nnum_tc = "x"', "num_tc"),
    ("[[devices]]\ntc_to_txq = [1]", "tc_to_txq[0]"),
    ("[[devices]]\ntc_to_txq = 3", "tc_to_txq"),
    ("[[devices]]\nprio_tc_map = 3", "prio_tc_map"),
    ("[[devices]]\nprio_tc_map = [0]", "prio_tc_map"),
    ("[[devices]]\nirq_cpus = 3", "irq_cpus"),
    ("[[devices]]\nirq_cpus = [9]", "irq_cpus"),
    ('[[devices]]\nselect_queue = "x"', "select_queue"),
    ('[[devices]]\nline_rate_bps = "fast"', "line_rate_bps"),
    ("[[devices]]\nline_rate_bps = -1.0", "line_rate"),
    ('[[devices]]\nline_rate_pps = "x"', "line_rate_pps"),
    ("[[devices]]\nline_rate_pps = nan", "line_rate_pps"),
    ('[[devices]]\nwire_overhead = "x"', "wire_overhead"),
    ('[[devices]]\nwake_thresh = "x"', "wake_thresh"),
    ("[[devices]]\nwake_thresh = 0", "wake_thresh"),
    ('[[devices]]\nbql = "yes"', "bql"),
    ("[[devices]]\nbogus = 1", "devices[0].bogus"),
    ('[[devices]]\nname = "v"\nkind = "vlan"\nlower = "v"\ntx_queues = 2', "tx_queues"),
    ("[[traffic]]\ndevice = 5", "traffic[0].device"),
    ('[[traffic]]\ndevice = "nope"', "traffic[0].device"),
    ("[[traffic]]\ncpus = 1", "traffic[0].cpus"),
    ("[[traffic]]\ncpus = [9]", "traffic[0].cpus"),
    ("[[traffic]]\ncpus = []", "traffic[0].cpus"),
    ('[[traffic]]\nsockets_per_cpu = "x"', "sockets_per_cpu"),
    ('[[traffic]]\nproto = "sctp"', "proto"),
    ("[[traffic]]\nproto = 1", "proto"),
    ('[[traffic]]\nconnected = "no"', "traffic[0].connected"),
    ('[[traffic]]\npriority = "x"', "priority"),
    ("[[traffic]]\ntos = 300", "tos"),
    ('[[traffic]]\ntos = "x"', "tos"),
    ('[[traffic]]\nlength = "big"', "traffic[0].length"),
    ("[[traffic]]\nlength = []", "length"),
    ("[[traffic]]\nlength = [1, 2, 3]", "length"),
    ("[[traffic]]\nlength = [5, 1]", "length"),
    ("[[traffic]]\nlength = 0", "length"),
    ('[[traffic]]\nlength = [1, "x"]', "length[1]"),
    ('[[traffic]]\nrate_pps = "fast"', "traffic[0].rate_pps"),
    ("[[traffic]]\nrate_pps = -1", "rate_pps"),
    ("[[traffic]]\nrate_pps = inf", "rate_pps"),
    ('[[traffic]]\nsndbuf = "x"', "sndbuf"),
    ("[[traffic]]\nrx_queue = -2", "rx_queue"),
    ('[[traffic]]\nrx_queue = "x"', "rx_queue"),
    ("[[traffic]]\nbogus = 1", "traffic[0].bogus"),
    ('[[events]]\nat = "x"', "events[0].at"),
    ('[[events]]\nat = -1\naction = "slow_nic"', "events[0].at"),
    ('[[events]]\naction = "explode"', "events[0].action"),
    ("[[events]]\naction = 5", "events[0].action"),
    ('[[events]]\naction = "dev_close"\ndevice = "nope"', "events[0].device"),
    ('[[events]]\naction = "kill"\nworker = "cpu9"', "events[0].worker"),
    ('[[events]]\naction = "slow_nic"\nvalue = "x"', "events[0].value"),
    ('[[events]]\naction = "fault"\nfault = "nope"', "events[0].fault"),
    ('[[events]]\naction = "fault"', "events[0].fault"),
    ('[[events]]\naction = "fault"\nfault = 5', "events[0].fault"),
    ('[[events]]\naction = "slow_nic"\nfault = "lose_one"', "events[0].fault"),
    ('clock = "virtual"\n[[events]]\naction = "dev_close"\ndevice = "nope"', "events[0].device"),
    ('clock = "virtual"\n[[events]]\nat = -0.001\naction = "slow_nic"', "events[0].at"),
    ('clock = "virtual"\npackets = -1', "packets"),
    ("[[events]]\nbogus = 1", "events[0].bogus"),
    (
        '[[events]]\naction = "set_real_num_tx_queues"\ndevice = "eth0"\nvalue = 9',
        "events[0].value",
    ),
    ("variants = []", "variants"),
    ("variants = 3", "variants"),
    ("variants = [3]", "variants[0]"),
    ("[[variants]]\nlabel = 5", "variants[0].label"),
    ('[[variants]]\nlabel = "a"\ncpus = "x"', "variants[0] ('a'): cpus"),
    (
        '[[variants]]\nlabel = "a"\n[[variants]]\nlabel = "b"\n[[variants.devices]]\nqdisc = 1',
        "variants[1] ('b'): devices[0].qdisc",
    ),
    (
        '[[variants]]\nlabel = "a"\n[[variants]]\nlabel = "b"\nstall_timeout = 0',
        "variants[1] ('b')",
    ),
    ("[[variants]]\n[[variants]]\nconnected = 1", "variants[1]"),
]

CASES = [
    pytest.param(argv, None, want, id=f"flag{i}:{' '.join(argv)[:40]}")
    for i, (argv, want) in enumerate(FLAGS)
] + [
    pytest.param(None, text, want, id=f"toml{i}:{str(text[:30])!r}")
    for i, (text, want) in enumerate(TOML)
]


def test_the_table_is_large_and_covers_the_issue():
    assert len(FLAGS) >= 75 and len(TOML) >= 75 and len(CASES) >= 150


def _files(root) -> set[str]:
    out = set()
    for d, _, fs in os.walk(root):
        out |= {os.path.join(d, f) for f in fs}
    return out


def _argv(tmp_path, argv, text):
    (tmp_path / "afile").write_text("x")
    toml = tmp_path / "exp.toml"
    toml.write_bytes(text.encode() if isinstance(text, str) else (text or b"cpus = 2\n"))
    subst = {"{file}": str(tmp_path / "afile"), "{toml}": str(toml)}
    if argv is None:
        return ["--config", str(toml)]
    return [subst.get(a, a.replace("{file}", str(tmp_path / "afile"))) for a in argv]


@pytest.mark.parametrize("argv,text,want", CASES)
def test_bad_input_is_exit_2_one_line_nothing_created(
    tmp_path, monkeypatch, capsys, argv, text, want
):
    def accepted(*a, **kw):
        raise AssertionError("a bad input was accepted and would run")

    monkeypatch.setattr(cli, "run_preset", accepted)
    monkeypatch.chdir(tmp_path)
    args = _argv(tmp_path, argv, text)
    before = _files(tmp_path)
    shm_before = {o.entry for o in netq_objects() if o.pid == os.getpid()}
    try:
        code = cli.main(args)
    except SystemExit as e:
        code = e.code
    _out, err = capsys.readouterr()
    assert code == 2, (args, err)
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert want in lines[0], lines[0]
    assert _files(tmp_path) == before
    assert {o.entry for o in netq_objects() if o.pid == os.getpid()} == shm_before


@pytest.mark.slow
@pytest.mark.parametrize(
    "argv,text,want",
    [
        (None, b"\x00\x01\x02\xff\xfe garbage", "--config"),
        (None, "x = " + "[" * 100000 + "]" * 100000 + "\n", "deeply"),
        (["--rate", "nan"], None, "--rate"),
        (["busylock", "--strategy", "defer"], None, "strategy"),
        (["--json", "/nonexistent-netq-dir/x.json"], None, "--json"),
        (["--xps", "-1=1"], None, "--xps"),
    ],
)
def test_bad_input_as_a_real_process(tmp_path, argv, text, want):
    args = _argv(tmp_path, argv, text)
    before = _files(tmp_path)
    r = run_netq(*args, timeout=60, cwd=str(tmp_path))
    code, err = r.returncode, r.stderr
    assert code == 2 and len(err.splitlines()) == 1 and want in err, err
    assert "Traceback" not in err and _files(tmp_path) == before


@pytest.mark.parametrize(
    "argv",
    [["--junit", "/nonexistent-netq-dir/j.xml"], ["--json", "."], ["--json", "/proc/netq-s.json"]],
)
def test_stress_output_paths_are_checked_before_any_run(tmp_path, monkeypatch, capsys, argv):
    monkeypatch.setattr(stress.Job, "run", lambda self: pytest.fail("the job ran"))
    monkeypatch.chdir(tmp_path)
    assert stress.main(["--budget", "1", "--seed", "1", *argv]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and argv[0] in err and "Traceback" not in err, err
    assert os.listdir(tmp_path) == []
