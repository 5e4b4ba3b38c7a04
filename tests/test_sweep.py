"""scripts/sweep.py (netq.app.sweep): a quick study writes its CSV, JSON and PNG with one row
per point; --resume skips what is done; Ctrl-C exits 130 with nothing left
in /dev/shm; bad arguments exit 2 with one line; the generations study
(busylock 6.18 vs defer 6.19 x pfifo_fast/pfifo/fq x adaptive/spin waiting) runs
the configs it names and reports defer / busylock ratios; the other studies'
configs are what they were before it.

The studies are run as a user runs them, in a subprocess with a hard
timeout, with ``--quick`` (0.3 s per point, few points).  Timing effects are
not asserted here: the studies themselves measure them.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from netq.app import sweep
from netq.app.figures import KERNEL_DEFER
from netq.kernel.core.sock import skb_truesize
from netq.kernel.profiles import DEFAULT_PROFILE
from netq.kernel.sched.sch_fq import FQ_FLOW_PLIMIT
from netq.machine.config import CostConfig, DeviceConfig, RunConfig, TrafficConfig
from shm.ipc import netq_objects
from tests import harness

SWEEP = os.path.join(harness.ROOT, "scripts", "sweep.py")
HAVE_EXTRAS = all(importlib.util.find_spec(m) for m in ("matplotlib", "tqdm"))
needs_extras = pytest.mark.skipif(
    not HAVE_EXTRAS, reason="the plot extra (matplotlib, tqdm) is not installed"
)


def start(*args: str) -> subprocess.Popen:
    return harness.start([SWEEP, *args])


def run(*args: str, timeout: float = 60) -> tuple[int, str, str]:
    r = harness.run([SWEEP, *args], timeout=timeout)
    return r.returncode, r.stdout, r.stderr


def rows_of(path: str) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as f:
        r = csv.reader(f)
        head = next(r)
        return head, [dict(zip(head, row)) for row in r]


def plan_keys(study: str, *args: str) -> list[tuple[str, ...]]:
    opts = sweep.parse_args([study, "--quick", *args])
    return [p.key(r) for p, r in opts.plan()]


def keys_of(rows: list[dict[str, str]]) -> list[tuple[str, ...]]:
    return [tuple(r[k] for k in sweep.KEY) for r in rows]


def check_exit(code: int, rows: list[dict[str, str]]) -> None:
    """0 if every run ended ok, else 1 (a failed point is recorded, not fatal)."""
    assert all(r["status"] for r in rows)
    assert code == (0 if all(r["status"] == "ok" for r in rows) else 1)


@pytest.fixture(scope="module")
def quick_queues(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "queues"
    code, stdout, stderr = run("queues", "--quick", "--out", str(out))
    return out, code, stdout, stderr


# -- the outputs ---------------------------------------------------------------------------
@needs_extras
def test_quick_study_writes_csv_json_png_one_row_per_point(quick_queues):
    out, code, stdout, _stderr = quick_queues
    head, rows = rows_of(out / "queues.csv")
    assert tuple(head) == sweep.COLUMNS
    assert sorted(keys_of(rows)) == sorted(plan_keys("queues"))
    check_exit(code, rows)
    cores = len(os.sched_getaffinity(0))
    for r in rows:
        assert r["status"] == "ok" or r["fault"], r
        if r["status"] == "ok":
            assert r["invariants_ok"] == "true"
            assert int(r["generated"]) == int(r["delivered"]) + int(r["drops_total"])
            assert float(r["pps"]) > 0 and r["ctx_switches_per_packet"] != ""
            assert r["shared_cores"] == ("true" if cores < 2 + 1 else "false")
    doc = json.loads((out / "queues.json").read_text())
    assert doc["study"] == "queues" and doc["complete"] is True
    assert "scripts/sweep.py queues --quick" in doc["command"]
    assert doc["machine"]["host_cores"] == sorted(os.sched_getaffinity(0))
    assert doc["parameters"]["runs"] == len(rows) == len(doc["rows"])
    assert len(doc["medians"]) == doc["parameters"]["points"]
    assert {"pps", "acq_bounces_per_packet", "owner_ahead_per_relock", "ok", "reps"} <= set(
        doc["medians"][0]
    )
    assert (out / "queues.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "pps" in stdout  # the table of medians


@needs_extras
def test_resume_skips_points_already_in_the_csv(quick_queues, tmp_path):
    src, _, _, _ = quick_queues
    out = tmp_path / "queues"
    shutil.copytree(src, out)
    path = out / "queues.csv"
    lines = path.read_text().splitlines(keepends=True)
    kept = lines[:3]  # header + 2 runs; the rest "lost", the last one torn mid-row
    path.write_text("".join(kept) + lines[3][:25])
    code, _, err = run("queues", "--quick", "--resume", "--out", str(out))
    assert "2 of 4 runs already in" in err
    _head, rows = rows_of(path)
    assert sorted(keys_of(rows)) == sorted(plan_keys("queues"))
    assert path.read_text().splitlines(keepends=True)[:3] == kept  # done rows untouched
    check_exit(code, rows)
    # everything done: a second --resume runs nothing
    code, _, err = run("queues", "--quick", "--resume", "--out", str(out))
    assert "4 of 4 runs already in" in err
    assert len(rows_of(path)[1]) == 4


@needs_extras
def test_ctrl_c_exits_130_cleanly_and_resume_finishes(tmp_path):
    out = tmp_path / "xps"
    path = out / "xps.csv"
    p = start("xps", "--quick", "--out", str(out))
    harness.wait_until(
        p,
        lambda: path.exists() and len(path.read_text().splitlines()) >= 3,
        40,
        "the sweep did not write 2 runs before it could be interrupted",
    )
    time.sleep(0.2)  # inside the third run
    p.send_signal(signal.SIGINT)
    err = harness.finish(p, 30, "the sweep after Ctrl-C").stderr
    assert p.returncode == 130, err
    assert "interrupted" in err and "--resume" in err
    assert not [o.entry for o in netq_objects() if o.pid == p.pid]
    head, rows = rows_of(path)
    done = len(rows)
    assert 2 <= done < len(plan_keys("xps"))
    assert all(None not in r.values() and len(r) == len(head) for r in rows)
    doc = json.loads((out / "xps.json").read_text())
    assert doc["complete"] is False and len(doc["rows"]) == done

    code, _, err = run("xps", "--quick", "--resume", "--out", str(out))
    assert f"{done} of 6 runs already in" in err
    _, rows = rows_of(path)
    assert sorted(keys_of(rows)) == sorted(plan_keys("xps"))
    check_exit(code, rows)
    doc = json.loads((out / "xps.json").read_text())
    assert doc["complete"] is True
    assert len(doc["commands"]) == 2 and doc["commands"][-1] == doc["command"]
    assert "--resume" in doc["command"] and "--resume" not in doc["commands"][0]


@needs_extras
def test_sigterm_exits_143_cleanly(tmp_path):
    out = tmp_path / "q"
    path = out / "queues.csv"
    p = start("queues", "--quick", "--out", str(out))
    harness.wait_until(
        p,
        lambda: path.exists() and len(path.read_text().splitlines()) >= 2,
        40,
        "the sweep did not write a run before it could be terminated",
    )
    time.sleep(0.2)
    p.terminate()
    err = harness.finish(p, 30, "the sweep after SIGTERM").stderr
    assert p.returncode == 143, err
    assert not [o.entry for o in netq_objects() if o.pid == p.pid]
    assert json.loads((out / "queues.json").read_text())["complete"] is False


# -- usage -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args",
    [
        [],
        ["nosuch"],
        ["queues", "--repeat", "0"],
        ["queues", "--duration", "-1"],
        ["queues", "--duration", "abc"],
        ["queues", "--bounce", "x"],
        ["queues", "--bounce", "5,5"],
        ["queues", "--frobnicate"],
    ],
)
def test_bad_arguments_exit_2_with_one_line(args, tmp_path):
    out = tmp_path / "never"
    code, stdout, stderr = run(*args, "--out", str(out), timeout=30)
    assert code == 2
    assert stdout == ""
    assert len(stderr.strip().splitlines()) == 1 and stderr.startswith("sweep: error:"), stderr
    assert not out.exists()


def test_resume_refuses_a_csv_with_other_columns(tmp_path):
    (tmp_path / "queues.csv").write_text("a,b\n1,2\n")
    code, _, stderr = run("queues", "--quick", "--resume", "--out", str(tmp_path), timeout=30)
    assert code == 2 and len(stderr.strip().splitlines()) == 1 and "columns" in stderr
    assert (tmp_path / "queues.csv").read_text() == "a,b\n1,2\n"


def test_missing_plot_extra_is_one_line(monkeypatch, capsys, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "matplotlib" else real(name, *a),
    )
    assert sweep.main(["queues", "--quick", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "matplotlib" in err and "[plot]" in err
    assert not (tmp_path / "o").exists()


# -- the plans ---------------------------------------------------------------------------------
def test_xps_maps_in_sysfs_format():
    assert sweep.xps_map("1:1", 4, 2) == {0: "5", 1: "a"}
    assert sweep.xps_map("1:1", 2, 4) == {0: "1", 1: "2"}
    assert sweep.xps_map("shared", 4, 2) == {0: "f", 1: "f"}
    assert sweep.xps_map("none", 4, 2) == {}


def test_full_plans_cover_every_axis():
    c = sweep.parse_args(["contention"]).plan()
    pts = {p for p, _ in c}
    assert len(pts) == 4 * 5 * 2 * 2  # senders x series x fairness x bounce
    assert {p.cpus for p in pts} == {1, 2, 4, 8} and {p.tx_queues for p in pts} == {1}
    x = {p for p, _ in sweep.parse_args(["xps"]).plan()}
    assert {(p.cpus, p.tx_queues, p.xps) for p in x} == {
        (c, n, m) for c in (1, 2, 4) for n in (2, 4) for m in ("1:1", "none", "shared")
    }
    q = {p for p, _ in sweep.parse_args(["queues", "--bounce", "0"]).plan()}
    assert {(p.cpus, p.tx_queues, p.xps) for p in q} == {
        (2, n, m) for n in (1, 2, 4, 8) for m in ("1:1", "none")
    }
    # repetitions run round-robin: every point once before any twice
    plan = sweep.parse_args(["queues", "--repeat", "2"]).plan()
    half = len(plan) // 2
    assert {r for _, r in plan[:half]} == {0} and {r for _, r in plan[half:]} == {1}
    cfg = next(p for p, _ in c if p.cpus == 8).config(1)
    assert cfg.validate() and cfg.seed == 2 and cfg.costs.xmit_ns == 2000


# -- generations -------------------------------------------------------------------------------
GEN = (("busylock", "6.18"), ("defer", "6.19"))
GEN_Q = ("pfifo_fast", "pfifo", "fq")


def gen_points(*args: str) -> list:
    return [p for p, r in sweep.parse_args(["generations", *args]).plan() if r == 0]


def test_generations_plans():
    quick = sweep.parse_args(["generations", "--quick"])
    assert (quick.duration, quick.repeat, quick.bounce) == (0.3, 1, (1000,))
    pts = gen_points("--quick")
    assert len(pts) == len(set(pts)) == 2 * 2 * 3  # senders x strategies x qdiscs
    assert {(p.cpus, p.strategy, p.profile, p.qdisc, p.lock_wait) for p in pts} == {
        (n, s, prof, q, "adaptive") for n in (1, 4) for s, prof in GEN for q in GEN_Q
    }
    full = sweep.parse_args(["generations"])
    assert (full.duration, full.repeat, full.bounce) == (1.5, 3, (1000,))
    pts = gen_points()
    assert len(pts) == len(set(pts)) == 4 * 2 * 3 * 2 and len(full.plan()) == 3 * len(pts)
    assert {(p.cpus, p.strategy, p.profile, p.qdisc, p.lock_wait) for p in pts} == {
        (n, s, prof, q, w)
        for n in (1, 2, 4, 8)
        for s, prof in GEN
        for q in GEN_Q
        for w in ("adaptive", "spin")
    }
    # pfifo_fast is TCQ_F_NOLOCK in both kernels: the rows say so (no strategy meets it)
    assert {(p.qdisc, p.pfifo_fast_nolock, p.series) for p in pts} == {
        ("pfifo_fast", True, "nolock 6.18 pfifo_fast"),
        ("pfifo_fast", True, "nolock 6.19 pfifo_fast"),
        ("pfifo", True, "busylock 6.18 pfifo"),
        ("pfifo", True, "defer 6.19 pfifo"),
        ("fq", True, "busylock 6.18 fq"),
        ("fq", True, "defer 6.19 fq"),
    }
    assert {(p.tx_queues, p.xps, p.lock_fairness, p.bounce_ns) for p in pts} == {
        (1, "-", "fifo", 1000)
    }
    # every busylock point is run just before its defer twin (same qdisc, waiting, senders)
    for old, new in zip(pts[::2], pts[1::2]):
        assert (old.strategy, new.strategy) == ("busylock", "defer")
        assert (old.cpus, old.qdisc, old.lock_wait) == (new.cpus, new.qdisc, new.lock_wait)
    # the key tells the profile, qdisc and waiting apart
    assert len({p.key(0) for p in pts}) == len(pts)
    assert {p.bounce_ns for p in gen_points("--bounce", "0,2000")} == {0, 2000}
    assert {p.bounce_ns for p in gen_points("--quick", "--bounce", "0")} == {0}
    label = next(p for p in pts if p.strategy == "defer" and p.qdisc == "fq").label()
    assert "defer 6.19 fq" in label and "waiting" in label


def test_generations_configs_validate_and_carry_the_point():
    for p in gen_points():
        cfg = p.config(2)
        assert cfg.validate() is cfg
        assert (cfg.cpus, cfg.duration, cfg.seed) == (p.cpus, 1.5, 3)
        assert (cfg.profile, cfg.strategy, cfg.lock_fairness, cfg.lock_wait) == (
            p.profile,
            p.strategy,
            "fifo",
            p.lock_wait,
        )
        assert cfg.costs == CostConfig(
            enqueue_ns=1000, dequeue_ns=1000, xmit_ns=2000, bounce_ns=1000
        )
        (dev,) = cfg.devices
        assert (dev.name, dev.tx_queues, dev.ring_size, dev.qdisc, dev.xps) == (
            "eth0",
            1,
            256,
            p.qdisc,
            {},
        )
        (t,) = cfg.traffic
        assert (t.sockets_per_cpu, t.proto, t.length, t.sndbuf) == (1, "udp", 1000, 131072)
    # the send buffer holds fewer skbs than fq's per-flow limit: no FQ_FLOW_LIMIT drops
    assert 131072 // skb_truesize(1000) < FQ_FLOW_PLIMIT


def test_other_studies_configs_are_unchanged():
    """xps and queues run what they ran before: the default qdisc and lock
    waiting (chosen by netq), netq's default profile."""
    for study in ("xps", "queues"):
        for p, r in sweep.parse_args([study]).plan()[:40]:
            assert (p.profile, p.qdisc, p.lock_wait) == (DEFAULT_PROFILE, "default", "auto")
            k = dict(zip(sweep.KEY, p.key(r)))
            assert (k["profile"], k["qdisc"], k["lock_wait"]) == (
                DEFAULT_PROFILE,
                "default",
                "auto",
            )
            want = RunConfig(
                name=f"{study}: {p.label()}",
                cpus=p.cpus,
                duration=p.duration_s,
                seed=r + 1,
                profile=DEFAULT_PROFILE,
                strategy=p.strategy,
                pfifo_fast_nolock=False,
                lock_fairness=p.lock_fairness,
                costs=CostConfig(bounce_ns=p.bounce_ns),
                devices=[
                    DeviceConfig(
                        name="eth0",
                        tx_queues=p.tx_queues,
                        ring_size=256,
                        xps=sweep.xps_map(p.xps, p.cpus, p.tx_queues),
                    )
                ],
                traffic=[
                    TrafficConfig(sockets_per_cpu=4, proto="udp", connected=True, length=1000)
                ],
            )
            got = p.config(r)
            assert got == want
            assert got.lock_wait is None and got.profile == DEFAULT_PROFILE


def test_contention_rows_are_kernels_or_say_what_if():
    """contention: every series is a configuration some kernel has, except
    rootlock (before every profile), which its label marks; 6.18's
    pfifo_fast is NOLOCK, and busylock and defer meet the locked pfifo."""
    from netq.machine.plan import what_if_reasons

    pts = [p for p, r in sweep.parse_args(["contention"]).plan() if r == 0]
    seen = {}
    for p in pts:
        cfg = p.config(0)
        assert cfg.validate() is cfg
        assert ("(what-if)" in p.series) == bool(what_if_reasons(cfg)), p.series
        assert p.pfifo_fast_nolock == cfg.effective_pfifo_fast_nolock
        assert p.series in p.label()
        seen[p.series] = (p.strategy, p.profile, p.qdisc, p.pfifo_fast_nolock)
    assert seen == {
        "rootlock 3.13 (what-if)": ("rootlock", "3.13", "default", False),
        "busylock 3.13": ("busylock", "3.13", "default", False),
        "nolock 6.18": ("busylock", "6.18", "default", True),
        "busylock 6.18 pfifo": ("busylock", "6.18", "pfifo", True),
        "defer 6.19 pfifo": ("defer", "6.19", "pfifo", True),
    }
    assert sweep.Point(
        "contention", 4, 1, "-", "defer", "fifo", 2000, 1.0, series="defer 6.19 pfifo"
    ).label() == ("4 cpu, 1 txq, defer 6.19 pfifo, fifo, bounce 2000")


def _median(strategy, qdisc, wait, cpus, pps, cpu):
    return {
        "study": "generations",
        "strategy": strategy,
        "series": f"{strategy} {dict(GEN)[strategy]} {qdisc}",
        "profile": dict(GEN)[strategy],
        "qdisc": qdisc,
        "lock_wait": wait,
        "cpus": cpus,
        "bounce_ns": 1000,
        "pps": pps,
        "cpu_ns_per_packet": cpu,
        "owner_ahead_per_relock": None,
        "packets_per_qdisc_run": None,
        "ctx_switches_per_packet": None,
        "ok": 1,
        "reps": 1,
    }


def test_generations_ratios_and_table():
    ms = [
        _median("busylock", "fq", "spin", 4, 10e3, 40e3),
        _median("defer", "fq", "spin", 4, 20e3, 20e3),
        _median("defer", "pfifo_fast", "adaptive", 2, 30e3, 10e3),  # no busylock twin: no ratio
        _median("busylock", "fq", "adaptive", 1, 10e3, None),
        _median("defer", "fq", "adaptive", 1, 15e3, 9e3),
        _median("busylock", "pfifo_fast", "spin", 8, None, None),  # no run ok: no ratio
        _median("defer", "pfifo_fast", "spin", 8, 5e3, 1e3),
    ]
    rs = sweep.ratios(ms)
    assert [(r["qdisc"], r["lock_wait"], r["cpus"]) for r in rs] == [
        ("fq", "adaptive", 1),
        ("fq", "spin", 4),
    ]
    assert rs[0]["pps_ratio"] == 1.5 and rs[0]["cpu_ns_per_packet_ratio"] is None
    assert rs[1]["pps_ratio"] == 2.0 and rs[1]["cpu_ns_per_packet_ratio"] == 0.5
    assert (rs[1]["busylock_pps"], rs[1]["defer_pps"]) == (10e3, 20e3)
    table = sweep.table("generations", ms)
    head = table.splitlines()[0].split()
    assert head[:5] == ["what", "ran", "qdisc", "lock", "wait"] and "bounce" not in head
    assert (
        "fq, spin, 4 senders:" in table and "defer / busylock: pps 2.00x, CPU ns/pkt 0.50x" in table
    )
    assert "defer / busylock: pps 1.50x, CPU ns/pkt -" in table
    assert "16 -> 29 Mpps" in table and "100dfa74cad9" in table and "52% -> 24%" in table
    assert sweep.ratios([dict(m, study="contention") for m in ms]) == []


@needs_extras
def test_quick_generations_writes_csv_json_png_and_ratios(tmp_path):
    out = tmp_path / "gen"
    p = start("generations", "--quick", "--out", str(out))
    r = harness.finish(p, 90, "the generations sweep")
    stdout, stderr = r.stdout, r.stderr
    assert not [o.entry for o in netq_objects() if o.pid == p.pid]
    head, rows = rows_of(out / "generations.csv")
    assert tuple(head) == sweep.COLUMNS
    assert sorted(keys_of(rows)) == sorted(plan_keys("generations"))
    assert [r["status"] for r in rows] == ["ok"] * len(rows), [r["fault"] for r in rows]
    assert p.returncode == 0, stderr
    for r in rows:
        assert r["invariants_ok"] == "true" and r["lock_waiting"] == r["lock_wait"] == "adaptive"
        assert r["drops_total"] == "0"  # sndbuf keeps every flow under fq's flow_plimit
        if r["qdisc"] == "fq":
            assert r["bypass"] == "0"  # fq never bypasses
        elif r["cpus"] == "1":
            assert int(r["bypass"]) > 0  # one sender mostly finds pfifo(_fast) empty
        if r["qdisc"] == "pfifo_fast":  # TCQ_F_NOLOCK in 6.18 and 6.19
            assert r["pfifo_fast_nolock"] == "true" and r["busylock_taken"] == "0"
    doc = json.loads((out / "generations.json").read_text())
    assert doc["study"] == "generations" and doc["complete"] is True
    assert {r["profile"] for r in doc["rows"]} == {"6.18", "6.19"}  # text, not 6.18 the number
    assert {(m["strategy"], m["profile"]) for m in doc["medians"]} == set(GEN)
    assert {(r["qdisc"], r["lock_wait"], r["cpus"]) for r in doc["ratios"]} == {
        (q, "adaptive", n) for q in GEN_Q for n in (1, 4)
    }
    for r in doc["ratios"]:
        assert r["pps_ratio"] == pytest.approx(r["defer_pps"] / r["busylock_pps"])
        assert r["cpu_ns_per_packet_ratio"] == pytest.approx(
            r["defer_cpu_ns_per_packet"] / r["busylock_cpu_ns_per_packet"]
        )
    assert doc["kernel"] == KERNEL_DEFER and doc["kernel"]["commit"] == "100dfa74cad9"
    assert (out / "generations.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert stdout.count("defer / busylock: pps") == 4 and "lock wait" in stdout
    assert stdout.count("6.19 / 6.18 (both nolock): pps") == 2


def test_a_study_on_the_virtual_clock(tmp_path):
    """--clock virtual: every point keeps virtual time (its own duration
    default), the CSV says so per row, and the runs end ok."""
    opts = sweep.parse_args(["queues", "--quick", "--clock", "virtual"])
    assert opts is not None and opts.duration == 0.002
    assert {p.clock for p, _ in opts.plan()} == {"virtual"}
    assert {p.config(0).clock for p, _ in opts.plan()} == {"virtual"}
    out = tmp_path / "v"
    code, _stdout, stderr = run("queues", "--quick", "--clock", "virtual", "--out", str(out))
    assert code == 0, stderr
    _head, rows = rows_of(str(out / "queues.csv"))
    assert rows and {r["clock"] for r in rows} == {"virtual"}
    assert all(r["status"] == "ok" for r in rows)
