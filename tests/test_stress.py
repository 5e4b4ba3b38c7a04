"""python -m netq.run stress: the CI stress job.

The generator is tested in process (deterministic, every configuration
validates, its TOML round-trips); the job itself is run as CI runs it, in a
subprocess with a hard timeout, and must leave nothing behind: no /dev/shm
object of its pid, no child process.  Total run time is kept to ~30 s.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
import xml.etree.ElementTree as ET

import pytest

from netq.app.stress import (
    CHAOS_EXPECT,
    CHAOS_KINDS,
    case_kind,
    generate,
    path_verdict,
    to_toml,
)
from netq.app.stress.generate import VIRTUAL_BUDGET_PER_CPU, VIRTUAL_SLACKS, cpu_rates
from netq.kernel.profiles import PROFILES
from netq.machine.config import CostConfig, EventConfig, from_dict
from tests.harness import (
    ROOT,
    Ran,
    children,
    finish,
    leftovers,
    run_cmd,
    start_netq,
    wait_until,
)
from tests.harness import env as run_env
from tests.harness import netq as run_netq

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]


def run(args: list[str], env_: dict | None = None, timeout: float = 120) -> Ran:
    return run_netq(*args, env_=env_, timeout=timeout)


def stress(*args: str, env: dict | None = None, timeout: float = 120) -> Ran:
    return run(["stress", *args], env, timeout)


def junit_cases(path) -> tuple[ET.Element, list[ET.Element]]:
    root = ET.parse(path).getroot()
    return root, root.findall("./testsuite/testcase")


# -- the generator ---------------------------------------------------------------------
def test_generator_is_deterministic_and_every_config_validates():
    descs = set()
    for seed in range(200):
        for index in (0, 1, 2 + 3 * (seed % len(CHAOS_KINDS))):
            a = generate(seed, index, chaos=True)  # validates, or raises GeneratorBug
            b = generate(seed, index, chaos=True)
            assert a.cfg == b.cfg and a.desc == b.desc and a.kind == b.kind
            assert a.expect == CHAOS_EXPECT.get(a.kind, "ok")
            # the TOML a failure writes gives the same configuration back
            assert from_dict(tomllib.loads(to_toml(a.cfg, ["a comment"]))) == a.cfg
            descs.add(a.desc)
            limit = PROFILES[a.cfg.profile].recursion_limit
            by_name = {d.name: d for d in a.cfg.devices}
            assert path_verdict(by_name, a.cfg.traffic[0].device, limit) == "delivers"
    assert len(descs) > 550  # seeds give different configurations


def test_generator_covers_the_space():
    cases = [generate(seed, i, chaos=True) for seed in range(20) for i in range(15)]
    cfgs = [c.cfg for c in cases]
    devs = [d for c in cfgs for d in c.devices]
    assert {c.cpus for c in cfgs} == {1, 2, 3, 4}
    assert {d.tx_queues for d in devs if not d.is_virtual} >= {1, 2, 4, 8}
    assert {d.qdisc for d in devs if not d.is_virtual} >= {
        "default",
        "pfifo_fast",
        "pfifo",
        "mq",
        "fq",
    }
    assert {d.bql for d in devs if not d.is_virtual} == {True, False}
    assert {c.strategy for c in cfgs} == {None, "rootlock", "busylock"}
    assert {c.lock_fairness for c in cfgs} == {"fifo", "unfair"}
    assert {d.kind for d in devs} == {"phys", "vlan", "tunnel"}
    assert {d.lltx for d in devs if d.is_virtual} == {None, True, False}
    assert any(d.name == d.lower for d in devs)  # a self-loop
    assert all(4 <= d.ring_size <= 256 for d in devs if not d.is_virtual)
    assert any(d.xps for d in devs) and any(c.costs != CostConfig() for c in cfgs)
    # about one random configuration in five keeps virtual time; chaos never does
    virtual = [c for c in cases if c.cfg.virtual]
    randoms = [c for c in cases if c.kind == "random"]
    assert 0.1 < len(virtual) / len(randoms) < 0.3
    assert all(c.kind == "random" for c in virtual)
    budget = [c for c in virtual if c.cfg.packets]  # only flooding CPUs keep a budget
    assert budget and len(budget) < len(virtual)
    assert all(c.cfg.packets <= VIRTUAL_BUDGET_PER_CPU * c.cfg.cpus for c in budget)
    assert all(not any(cpu_rates(c.cfg)) for c in budget)
    assert all(0.002 <= c.cfg.duration <= 0.006 and "virtual" in c.desc for c in virtual)
    assert {c.cfg.slack_ns for c in virtual} == set(VIRTUAL_SLACKS)
    assert not any("virtual" in c.desc for c in cases if not c.cfg.virtual)
    ts = [t for c in cfgs for t in c.traffic]
    assert {t.proto for t in ts} == {"udp", "tcp"} and {t.connected for t in ts} == {True, False}
    assert any(t.tos is not None for t in ts) and any(t.rate_pps == 0 for t in ts)
    assert any(c.packets for c in cfgs) and any(not c.packets for c in cfgs)
    assert {c.kind for c in cases} == {"random", *CHAOS_KINDS}
    assert [case_kind(i, True) for i in (2, 5, 8, 11, 14)] == list(CHAOS_KINDS)
    assert {case_kind(i, False) for i in range(30)} == {"random"}


def test_generator_does_not_depend_on_the_process():
    """Same seed, another interpreter with another hash seed: the same configurations."""
    r = stress(
        "--seed",
        "7",
        "--chaos",
        "--dry-run",
        "--runs",
        "12",
        env=run_env(PYTHONHASHSEED="123"),
        timeout=60,
    )
    assert r.returncode == 0, r.output
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("#")]
    assert len(lines) == 12
    for i, line in enumerate(lines):
        assert line.endswith(generate(7, i, chaos=True).desc), line


# -- the job ---------------------------------------------------------------------------
def test_short_budget_passes(tmp_path):
    junit, js = tmp_path / "stress-junit.xml", tmp_path / "stress.json"
    r = stress(
        "--budget", "12", "--seed", "3", "--junit", str(junit), "--json", str(js), timeout=150
    )
    assert r.returncode == 0, r.output
    assert "seed 3" in r.stdout and "netq stress summary" in r.stdout
    doc = json.loads(js.read_text())
    n = doc["summary"]["runs"]
    assert n >= 1 and doc["summary"]["passed"] == n and doc["summary"]["failed"] == 0
    assert "budget reached" in r.stdout  # it stopped because of --budget, not for lack of runs
    assert len([ln for ln in r.stdout.splitlines() if ln.startswith("[")]) == n  # a line per run
    root, cases = junit_cases(junit)
    assert len(cases) == n and root.get("tests") == str(n) and root.get("failures") == "0"
    assert all(c.find("failure") is None and c.find("system-out").text for c in cases)
    assert all(c.get("name").startswith(f"#{i:03d} ") for i, c in enumerate(cases))
    assert not leftovers(r.pid) and not children(r.pid)


def test_broken_invariant_is_caught_with_a_reproducer(tmp_path):
    junit = tmp_path / "j.xml"
    r = stress(
        "--budget", "1", "--seed", "5", "--junit", str(junit), "--quiet", "--fault", "lose_one"
    )
    assert r.returncode == 1, r.output
    assert "seed 5" in r.stdout and "conservation" in r.stdout
    m = re.search(r"config: (\S+\.toml)", r.stdout)
    assert m, r.stdout
    path = m.group(1)
    assert os.path.dirname(path) == str(tmp_path)  # next to the JUnit file
    assert f"python -m netq.run --config {path}" in r.stdout
    assert "python -m netq.run stress --seed 5 --only 0 --fault lose_one" in r.stdout
    with open(path, "rb") as f:
        cfg = from_dict(tomllib.load(f))
    want = generate(5, 0).cfg
    want.events.append(EventConfig(at=0.0, action="fault", fault="lose_one"))
    assert cfg == want  # the fault is in the file: it reproduces alone
    _, cases = junit_cases(junit)
    assert len(cases) == 1
    fail = cases[0].find("failure")
    assert fail is not None and "reproduce" in fail.text and path in fail.text
    assert not leftovers(r.pid)
    # the reproducer shows the same failure
    rr = run(["--config", path, "--quiet"])
    assert rr.returncode == 1 and "INVARIANT" in rr.output and "conservation" in rr.output, (
        rr.output
    )
    assert not leftovers(rr.pid)


def test_virtual_runs_pass(tmp_path):
    """Configurations on the virtual clock, timed and with a packet budget,
    are checked like the rest and leave nothing."""
    cfgs = {i: generate(1, i, chaos=True).cfg for i in range(200)}
    timed = [i for i, c in cfgs.items() if c.virtual and not c.packets]
    budget = [i for i, c in cfgs.items() if c.virtual and c.packets]
    picks = sorted([timed[0], budget[0]])
    js = tmp_path / "s.json"
    only = ",".join(map(str, picks))
    r = stress("--chaos", "--seed", "1", "--only", only, "--json", str(js), timeout=150)
    assert r.returncode == 0, r.output
    runs = json.loads(js.read_text())["runs"]
    assert [x["index"] for x in runs] == picks
    assert all(x["clock"] == "virtual" and x["status"] == "ok" and x["passed"] for x in runs)
    assert all(x["invariants_ok"] and x["generated"] > 0 for x in runs)
    assert [x["generated"] for x in runs if x["index"] == budget[0]] == [cfgs[budget[0]].packets]
    assert r.stdout.count(" virtual slack") == 2
    assert not leftovers(r.pid) and not children(r.pid)


def test_chaos_runs_end_clean(tmp_path):
    """One run of each chaos kind: kill → fault, stop → stalled, the rest ok."""
    js = tmp_path / "s.json"
    r = stress("--chaos", "--seed", "2", "--only", "2,5,8,11,14", "--json", str(js), timeout=150)
    assert r.returncode == 0, r.output
    doc = json.loads(js.read_text())
    assert [x["kind"] for x in doc["runs"]] == list(CHAOS_KINDS)
    assert [x["status"] for x in doc["runs"]] == [CHAOS_EXPECT[k] for k in CHAOS_KINDS]
    assert doc["summary"]["expected_faults_by_kind"] == {"kill": 1, "stop": 1}
    assert "2 expected faults" in r.stdout
    assert "killed by signal 9" in r.stdout and "no progress" in r.stdout
    assert not leftovers(r.pid) and not children(r.pid)


def test_interrupted_job_reports_and_cleans(tmp_path):
    junit = tmp_path / "j.xml"
    p = start_netq("stress", "--budget", "60", "--seed", "4", "--junit", str(junit))
    wait_until(p, lambda: children(p.pid), 60, "the stress job started no run")
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)
    r = finish(p, 60, "interrupted stress job")
    out = r.stdout
    assert p.returncode == 130, r.output
    assert "INTERRUPTED" in out and junit.exists()
    assert not leftovers(p.pid) and not children(p.pid)


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--budget", "-1"], "--budget"),
        (["--run-seconds", "0"], "--run-seconds"),
        (["--only", "x"], "--only"),
        (["--bogus"], "unrecognized"),
    ],
)
def test_bad_usage_exit_2(args, needle):
    r = stress(*args, timeout=60)
    assert r.returncode == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and r.stdout == ""


def test_ci_script_passes_its_arguments_through():
    path_env = run_env(
        PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    )
    r = run_cmd(
        [
            "sh",
            os.path.join(ROOT, "scripts", "ci_stress.sh"),
            "--seed",
            "9",
            "--dry-run",
            "--runs",
            "3",
        ],
        path_env,
        timeout=60,
    )
    assert r.returncode == 0, r.output
    assert (
        "seed 9" in r.stdout
        and len([ln for ln in r.stdout.splitlines() if ln.startswith("#")]) == 3
    )
