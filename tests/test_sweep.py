"""scripts/sweep.py: a quick study writes its CSV, JSON and PNG with one row
per point; --resume skips what is done; Ctrl-C exits 130 with nothing left
in /dev/shm; bad arguments exit 2 with one line.

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
import sys
import time

import pytest

from shm.ipc import netq_objects

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SWEEP = os.path.join(ROOT, "scripts", "sweep.py")
HAVE_EXTRAS = all(importlib.util.find_spec(m) for m in ("matplotlib", "tqdm"))
needs_extras = pytest.mark.skipif(not HAVE_EXTRAS, reason="the plot extra (matplotlib, tqdm) is not installed")


def _module():
    spec = importlib.util.spec_from_file_location("netq_sweep_under_test", SWEEP)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


sweep = _module()


def start(*args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.Popen([sys.executable, SWEEP, *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run(*args: str, timeout: float = 60) -> tuple[int, str, str]:
    p = start(*args)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise AssertionError(f"sweep {args} did not end within {timeout} s")
    return p.returncode, out, err


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
    out, code, stdout, stderr = quick_queues
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
            assert r["shared_cores"] == ("true" if 2 + 1 > cores else "false")
    doc = json.loads((out / "queues.json").read_text())
    assert doc["study"] == "queues" and doc["complete"] is True
    assert "scripts/sweep.py queues --quick" in doc["command"]
    assert doc["machine"]["host_cores"] == sorted(os.sched_getaffinity(0))
    assert doc["parameters"]["runs"] == len(rows) == len(doc["rows"])
    assert len(doc["medians"]) == doc["parameters"]["points"]
    assert {"pps", "acq_bounces_per_packet", "owner_ahead_per_relock", "ok", "reps"} <= set(doc["medians"][0])
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
    head, rows = rows_of(path)
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
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and p.poll() is None:
        if path.exists() and len(path.read_text().splitlines()) >= 3:  # header + 2 runs
            break
        time.sleep(0.05)
    assert p.poll() is None, "the sweep ended before it could be interrupted"
    time.sleep(0.2)  # inside the third run
    p.send_signal(signal.SIGINT)
    try:
        _, err = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        raise AssertionError("the sweep did not end after Ctrl-C")
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
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and p.poll() is None:
        if path.exists() and len(path.read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    assert p.poll() is None, "the sweep ended before it could be terminated"
    time.sleep(0.2)
    p.terminate()
    try:
        _, err = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        raise AssertionError("the sweep did not end after SIGTERM")
    assert p.returncode == 143, err
    assert not [o.entry for o in netq_objects() if o.pid == p.pid]
    assert json.loads((out / "queues.json").read_text())["complete"] is False


# -- usage -----------------------------------------------------------------------------------
@pytest.mark.parametrize("args", [
    [], ["nosuch"], ["queues", "--repeat", "0"], ["queues", "--duration", "-1"],
    ["queues", "--duration", "abc"], ["queues", "--bounce", "x"], ["queues", "--bounce", "5,5"],
    ["queues", "--frobnicate"],
])
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
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real(name, *a))
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
    assert len(pts) == 4 * 4 * 2 * 2  # senders x strategies x fairness x bounce
    assert {p.cpus for p in pts} == {1, 2, 4, 8} and {p.tx_queues for p in pts} == {1}
    x = {p for p, _ in sweep.parse_args(["xps"]).plan()}
    assert {(p.cpus, p.tx_queues, p.xps) for p in x} == {
        (c, n, m) for c in (1, 2, 4) for n in (2, 4) for m in ("1:1", "none", "shared")}
    q = {p for p, _ in sweep.parse_args(["queues", "--bounce", "0"]).plan()}
    assert {(p.cpus, p.tx_queues, p.xps) for p in q} == {
        (2, n, m) for n in (1, 2, 4, 8) for m in ("1:1", "none")}
    # repetitions run round-robin: every point once before any twice
    plan = sweep.parse_args(["queues", "--repeat", "2"]).plan()
    half = len(plan) // 2
    assert {r for _, r in plan[:half]} == {0} and {r for _, r in plan[half:]} == {1}
    cfg = next(p for p, _ in c if p.cpus == 8).config(1)
    assert cfg.validate() and cfg.seed == 2 and cfg.costs.xmit_ns == 2000
