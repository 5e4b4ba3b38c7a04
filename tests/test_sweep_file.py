"""Studies described in a TOML file: ``scripts/sweep.py --file STUDY.toml``.

The plan (every combination of the axes, last axis fastest), each point's
RunConfig (the base with the axes set, checked like --config), bad files
(one line, exit 2, nothing written), and one short run end to end."""

from __future__ import annotations

import json
import os

import pytest

from netq.app import sweep
from netq.app.sweep import filestudy
from netq.machine.config import RunConfig
from tests import harness
from tests.test_sweep import needs_extras, rows_of, run

EXAMPLE = os.path.join(harness.ROOT, "docs", "studies", "senders.toml")

SMALL = """
name = "small"
duration = 0.2
repeat = 1

[base]
profile = "3.13"
[[base.devices]]
name = "eth0"
tx_queues = 2
[[base.traffic]]
sockets_per_cpu = 1

[axes]
"devices.0.tx_queues" = [1, 2]
strategy = ["rootlock", "busylock"]
"""


def write(tmp_path, text: str, name: str = "study.toml") -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_example_plan_is_every_combination_last_axis_fastest():
    opts = sweep.parse_args(["--file", EXAMPLE])
    assert opts is not None and opts.study.name == "senders" and opts.repeat == 3
    plan = opts.plan()
    points = [p for p, r in plan if r == 0]
    assert [p.series for p in points] == [
        f"strategy={s}, cpus={n}" for s in ("rootlock", "busylock") for n in (1, 2, 4)
    ]
    assert len(plan) == 6 * 3 and len({p.key(r) for p, r in plan}) == len(plan)
    for p in points:  # the row columns say what runs
        cfg = p.config(2)
        assert isinstance(cfg, RunConfig)
        cfg.validate()
        assert (cfg.cpus, cfg.strategy, cfg.profile) == (p.cpus, p.strategy, "3.13")
        assert cfg.costs.xmit_ns == 2000 and cfg.devices[0].ring_size == 256
        assert cfg.duration == p.duration_s == 1.0 and cfg.seed == 3
        assert cfg.name == f"senders: {p.series}" and p.label() == p.series


def test_paths_reach_into_tables_and_lists(tmp_path):
    opts = sweep.parse_args(["--file", write(tmp_path, SMALL), "--quick", "--clock", "virtual"])
    points = [p for p, _ in opts.plan()]
    assert [(p.tx_queues, p.strategy) for p in points] == [
        (1, "rootlock"),
        (1, "busylock"),
        (2, "rootlock"),
        (2, "busylock"),
    ]
    assert [p.xps for p in points] == ["-", "-", "none", "none"]
    cfgs = [p.config(0) for p in points]
    assert [c.devices[0].tx_queues for c in cfgs] == [1, 1, 2, 2]
    assert all(c.clock == "virtual" and c.duration == 0.002 for c in cfgs)  # --quick, virtual


@pytest.mark.parametrize(
    "text, needle",
    [
        ("frobs = 1\n[axes]\ncpus = [1, 2]\n", "frobs: unknown key"),
        ("[axes]\ncpus = 2\n", "axes.cpus: a non-empty list"),
        ("name = 3\n[axes]\ncpus = [1]\n", "name:"),
        ('name = "queues"\n[axes]\ncpus = [1]\n', "built-in study"),
        ("duration = -1\n[axes]\ncpus = [1]\n", "duration:"),
        ("repeat = 0\n[axes]\ncpus = [1]\n", "repeat:"),
        ("[base]\nduration = 2\n[axes]\ncpus = [1]\n", "base.duration"),
        ("[base]\nclock = 'virtual'\n[axes]\ncpus = [1]\n", "base.clock"),
        ("[base]\n", "axes:"),
        ("[axes]\ncpus = []\n", "axes.cpus: a non-empty list"),
        ("[axes]\ncpus = [1, 1]\n", "axes.cpus: the values repeat"),
        ("[axes]\ncpus = [1, 0]\n", "the point cpus=0: cpus"),
        ("[axes]\nstrategy = ['rootlock', 'nosuch']\n", "strategy=nosuch: strategy"),
        ('[axes]\n"devices.3.tx_queues" = [1]\n', "axes.devices.3.tx_queues"),
        ('[axes]\n"cpus.x" = [1]\n', "cpus.x=1: cpus: an integer"),
        ('[axes]\n"costs.frob_ns" = [1]\n', "costs.frob_ns"),
        ("[axes\n", "not valid TOML"),
    ],
)
def test_bad_study_file_exits_2_with_one_line(tmp_path, text, needle):
    out = tmp_path / "never"
    code, stdout, stderr = run("--file", write(tmp_path, text), "--out", str(out), timeout=30)
    assert code == 2 and stdout == ""
    assert len(stderr.strip().splitlines()) == 1 and stderr.startswith("sweep: error:"), stderr
    assert needle in stderr, stderr
    assert not out.exists()


@pytest.mark.parametrize(
    "args, needle",
    [
        (["queues", "--file", EXAMPLE], "not both"),
        (["--file", EXAMPLE, "--bounce", "0"], "costs.bounce_ns"),
        (["--file", "/nonexistent/s.toml"], "cannot read"),
    ],
)
def test_bad_file_arguments_exit_2(tmp_path, args, needle):
    out = tmp_path / "never"
    code, stdout, stderr = run(*args, "--out", str(out), timeout=30)
    assert code == 2 and stdout == "" and needle in stderr, stderr
    assert len(stderr.strip().splitlines()) == 1 and not out.exists()


def test_an_unfair_point_on_the_virtual_clock_is_one_line(tmp_path):
    """The virtual clock grants locks in request order: a file study's
    unfair-lock point is refused before anything runs."""
    text = SMALL.replace('profile = "3.13"', 'profile = "3.13"\nlock_fairness = "unfair"')
    out = tmp_path / "never"
    code, stdout, stderr = run(
        "--file", write(tmp_path, text), "--clock", "virtual", "--out", str(out), timeout=30
    )
    assert code == 2 and stdout == "" and "'unfair' needs the wall clock" in stderr, stderr
    assert len(stderr.strip().splitlines()) == 1 and not out.exists()


def test_built_in_studies_on_the_virtual_clock_keep_their_fifo_points():
    from netq.app.sweep import STUDIES
    from netq.app.sweep.studies import Options

    opts = Options(STUDIES["contention"], "x", 0.002, 1, (0,), True, False, clock="virtual")
    plan = opts.plan()
    assert plan and {p.lock_fairness for p, _ in plan} == {"fifo"}
    assert {p.clock for p, _ in plan} == {"virtual"}


def test_the_kernel_figure_studies_are_valid(tmp_path):
    """docs/studies' files for the kernel's figures parse and plan."""
    from netq.app.sweep.filestudy import load

    for name in ("busylock-commit", "defer-list", "contention-curve"):
        st = load(os.path.join(harness.ROOT, "docs", "studies", f"{name}.toml"))
        assert st.points(False, 0.003, ())


def test_a_binary_study_file_is_one_line(tmp_path):
    """The reader --config uses: not UTF-8 is one line, exit 2, not a traceback."""
    path = tmp_path / "s.toml"
    path.write_bytes(b"name = '\xff\xfe'\n")
    out = tmp_path / "never"
    code, stdout, stderr = run("--file", str(path), "--out", str(out), timeout=30)
    assert code == 2 and stdout == "" and "--file:" in stderr and "not UTF-8" in stderr, stderr
    assert len(stderr.strip().splitlines()) == 1 and not out.exists()


def test_axes_product_is_bounded(tmp_path):
    vals = list(range(1, 102))
    text = f"[axes]\nslack_ns = {vals}\nspin_ns = {vals}\n"
    with pytest.raises(sweep.Usage, match="at most"):
        filestudy.load(write(tmp_path, text))


@needs_extras
def test_file_study_runs_writes_and_resumes(tmp_path):
    path = write(tmp_path, SMALL)
    out = tmp_path / "out"
    code, stdout, stderr = run("--file", path, "--out", str(out), timeout=120)
    head, rows = rows_of(str(out / "small.csv"))
    assert code == (0 if all(r["status"] == "ok" for r in rows) else 1), stderr
    assert head == list(sweep.COLUMNS)
    assert [r["series"] for r in rows] == [
        f"devices.0.tx_queues={q}, strategy={s}" for q in (1, 2) for s in ("rootlock", "busylock")
    ]
    assert [r["tx_queues"] for r in rows] == ["1", "1", "2", "2"]
    assert all(int(r["generated"]) > 0 for r in rows if r["status"] == "ok")
    doc = json.loads((out / "small.json").read_text())
    assert doc["parameters"]["file"] == path and doc["complete"]
    assert (out / "small.png").stat().st_size > 0
    # the table names each point by its axes' values
    assert "devices.0.tx_queues=2, strategy=busylock" in stdout
    code, _, stderr = run("--file", path, "--out", str(out), "--resume", timeout=60)
    assert "4 of 4 runs already" in stderr
    assert len(rows_of(str(out / "small.csv"))[1]) == 4
