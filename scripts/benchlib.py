"""What the benchmark scripts (``scripts/bench_*.py``) have in common.

Each script keeps only what it measures; this module has the rest:

* importing it from a checkout puts the repository root on ``sys.path`` (the
  scripts are run as ``python scripts/bench_x.py``, one below the root);
* timing: :func:`measure_interleaved` (interleaved repetitions, empty loop
  subtracted, gc off) and the loops it times (:func:`loop_of`,
  :func:`loop_pair`), :func:`medians`, :func:`median`, :func:`ratio_median`;
* the machine: :func:`machine_info`, :func:`machine_line`, :func:`pinned`,
  :func:`other_netq_runs` and :func:`warn_neighbours` (a concurrent netq run
  shares the cores and disturbs the numbers);
* the report: :func:`check_targets`, :func:`target_status`, :class:`Table` (rows with a target and
  an ok/over status), :func:`print_title`, :func:`print_target_summary`,
  :func:`write_json` (``{"version": 1, "benchmark": ..., "machine": ...,
  "params": ..., "results": ..., "targets": ..., ...}``);
* the process: :func:`arg_parser` (``--json``, ``--quick``),
  :func:`signal_scope` (SIGTERM/SIGHUP become an exception so every
  :class:`shm.ipc.IpcOwner` unlinks what it made), :func:`warn_leftovers` and
  :func:`run_main` (exit 130 on Ctrl-C, 128 + signal on SIGTERM/SIGHUP).

Not a package: a script imports it from its own directory (see the top of
any ``bench_*.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import json
import os
import platform
import statistics
import sys
import time

#: The repository root: scripts/ is one below it.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The checkout this script sits in comes first, even when another copy of
# netq is installed in the environment (an editable install of another
# worktree would otherwise be measured instead).
if ROOT not in sys.path[:1]:
    sys.path.insert(0, ROOT)

import numpy as np
import posix_ipc

from shm.ipc import IpcOwner, Terminated, netq_objects, pid_alive


# --------------------------------------------------------------------------
# timing
# --------------------------------------------------------------------------
def _empty_loop(n: int) -> int:
    """ns of an empty loop of ``n`` iterations (subtracted from every timing)."""
    pc = time.perf_counter_ns
    r = range(n)
    t0 = pc()
    for _ in r:
        pass
    return pc() - t0


def measure_interleaved(
    benches, reps: int, *, warmup: int = 2000, collect: bool = False
) -> dict[str, list[float]]:
    """Per-op ns of each bench, one repetition of each in turn, ``reps`` times.

    ``benches`` is a list of ``(name, loop, n)`` or ``(name, loop, n, per)``:
    ``loop(n)`` does any setup and teardown itself and returns the ns of its
    timed region, which runs the body ``n`` times; the body does ``per``
    operations (default 1).  Each bench is first run once with at most
    ``warmup`` iterations (caches, specialisation, freelists).  Each
    repetition subtracts an empty loop of the same length.  Interleaving puts
    every bench under the same machine conditions (a VM's speed drifts by tens
    of percent from second to second), so the ratios between them are stable
    even when the absolute values are not.  The garbage collector is off while
    timing; with ``collect`` it is run (untimed) before the first repetition
    and after each round, for benches that allocate (e.g. skb lists).
    """
    benches = [(b[0], b[1], b[2], b[3] if len(b) > 3 else 1) for b in benches]
    for _, loop, n, _ in benches:
        loop(max(1, min(n, warmup)))
    vals: dict[str, list[float]] = {name: [] for name, *_ in benches}
    gc_was = gc.isenabled()
    if collect:
        gc.collect()
    gc.disable()
    try:
        for _ in range(reps):
            for name, loop, n, per in benches:
                t = loop(n)
                e = _empty_loop(n)
                vals[name].append(max(0.0, (t - e) / (n * per)))
            if collect:
                gc.collect()
    finally:
        if gc_was:
            gc.enable()
    return vals


def loop_of(call):
    """Loop timing a zero-argument callable (C builtins, bound methods)."""

    def run(n: int) -> int:
        c = call
        r = range(n)
        pc = time.perf_counter_ns
        t0 = pc()
        for _ in r:
            c()
        return pc() - t0

    return run


_NO_ARG = object()


def loop_pair(first, second, arg=_NO_ARG):
    """Loop timing ``first()`` then ``second()`` per iteration, e.g.
    acquire/release, lock/unlock, produce/consume; with ``arg``, the first
    call is ``first(arg)`` (a timeout, a descriptor)."""

    def run(n: int) -> int:
        a, b = first, second
        r = range(n)
        pc = time.perf_counter_ns
        if arg is _NO_ARG:
            t0 = pc()
            for _ in r:
                a()
                b()
        else:
            x = arg
            t0 = pc()
            for _ in r:
                a(x)
                b()
        return pc() - t0

    return run


class Empty:
    """An object with an empty method: the cost of a bare Python call."""

    __slots__ = ("x",)

    def method(self) -> None:
        pass


def medians(vals: dict[str, list[float]]) -> dict[str, float]:
    """The median of each list of repetitions (as :func:`measure_interleaved` returns)."""
    return {k: statistics.median(v) for k, v in vals.items()}


def median(xs):
    """Median of the values that are not None; None if there are none."""
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def ratio_median(xs, ys) -> float:
    """Median of the per-repetition ratios ``x / y`` (pairs with ``y <= 0``
    left out): each x ran right after its y, under the same machine
    conditions, which the ratio of the two medians does not guarantee."""
    return statistics.median(a / b for a, b in zip(xs, ys) if b > 0)


@contextlib.contextmanager
def pinned(core: int):
    """Pin this process to ``core`` while in scope; restore the affinity after."""
    old_aff = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {core})
    try:
        yield
    finally:
        os.sched_setaffinity(0, old_aff)


def close_quietly(obj) -> None:
    """``obj.close()`` (a Region or a Net), ignoring the BufferError of views
    still exported: unmapping releases every view the object handed out."""
    with contextlib.suppress(BufferError):
        obj.close()


# --------------------------------------------------------------------------
# the machine
# --------------------------------------------------------------------------
def machine_info(
    placement: dict | None = None, *, lock_backend: bool = True, loadavg: bool = True
) -> dict:
    """CPUs, CPU model, Python, platform, library versions and the date.

    ``placement`` (e.g. ``{"pinned_core": 0}``) is added after the CPU model;
    ``lock_backend`` adds :func:`shm.native.backend`, ``loadavg`` the load
    average now (see :func:`note_end` for the one at the end).
    """
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    info = {
        "cpu_count": os.cpu_count(),
        "sched_getaffinity": sorted(os.sched_getaffinity(0)),
        "cpu_model": model,
        **(placement or {}),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "numpy": np.__version__,
        "posix_ipc": getattr(posix_ipc, "VERSION", "?"),
    }
    if lock_backend:
        from shm import native

        info["lock_backend"] = native.backend()
    if loadavg:
        info["loadavg"] = os.getloadavg()
    info["date"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return info


def note_end(machine: dict, neighbours: set[int]) -> None:
    """Record the load average at the end and the other netq pids seen."""
    machine["loadavg_end"] = os.getloadavg()
    machine["other_netq_pids"] = sorted(neighbours)


def machine_line(machine: dict) -> str:
    """The ``machine:`` line of a report (with the load, when it was taken)."""
    load = (
        f"load {machine['loadavg'][0]:.2f} -> {machine['loadavg_end'][0]:.2f}; "
        if "loadavg_end" in machine
        else ""
    )
    return (
        f"machine: {machine['cpu_count']} CPUs (affinity {machine['sched_getaffinity']}), "
        f"{machine['cpu_model'] or machine['machine']}; Python {machine['python']}; "
        f"{machine['platform']}; {load}{machine['date']}"
    )


def other_netq_runs() -> set[int]:
    """Pids of other live processes that own netq IPC objects right now: a
    concurrent run or test shares the cores and disturbs the numbers."""
    me = os.getpid()
    return {o.pid for o in netq_objects() if o.pid != me and pid_alive(o.pid)}


def warn_neighbours(neighbours: set[int], effect: str) -> None:
    """Print the "another netq process is running" warning, if there was one;
    ``effect`` says what is disturbed (e.g. "pps and scaling are disturbed")."""
    if neighbours:
        print(
            f"WARNING: other netq processes were running (pids {sorted(neighbours)}): they share "
            f"the cores, so {effect}"
        )


# --------------------------------------------------------------------------
# the report
# --------------------------------------------------------------------------
def fmt(v, spec: str = ",.1f") -> str:
    """A number as the tables print it; "-" for None."""
    return "-" if v is None else format(v, spec)


def check_targets(
    spec: dict, res: dict, *, at_least: bool = False, suffix: str = "_ns", **extra
) -> dict:
    """Judge ``res`` against ``spec`` (name -> (description, limit)).

    The limit is a number or a function of ``res``.  A target is met when the
    value is not None and ``<= limit`` (``at_least``: ``>= limit``).  Each
    entry is ``{"target", "limit<suffix>", "value<suffix>", "met"}`` followed
    by ``extra`` (e.g. ``backend=...``).
    """
    out = {}
    for name, (desc, limit) in spec.items():
        lim = limit(res) if callable(limit) else limit
        v = res[name]
        met = v is not None and (v >= lim if at_least else v <= lim)
        out[name] = {
            "target": desc,
            f"limit{suffix}": lim,
            f"value{suffix}": v,
            "met": met,
            **extra,
        }
    return out


def target_status(t: dict) -> str:
    """The status column: "ok" for a met target, "over" for a missed one,
    "n/a" when there is no value to judge."""
    if t["met"]:
        return "ok"
    value = t["value_ns"] if "value_ns" in t else t.get("value")
    return "over" if value is not None else "n/a"


class Table:
    """The results table: name, value, optional extra columns, target, status.

    ``Table(34, 14, 16, rule=74)`` prints rows as
    ``f"{name:<34} {value:>14}  {target:<16} {status}"``; ``extra`` is a list
    of (heading, width) columns printed right-aligned after the value.
    """

    def __init__(
        self,
        name_w: int,
        value_w: int,
        target_w: int,
        *,
        rule: int,
        extra: tuple[tuple[str, int], ...] = (),
    ) -> None:
        self.name_w, self.value_w, self.target_w = name_w, value_w, target_w
        self.rule = rule
        self.extra = extra

    def header(self) -> None:
        """Print the column headings and the rule under them."""
        self.row("name", "value", *(h for h, _ in self.extra), target="target", status="status")
        print("-" * self.rule)

    def row(
        self,
        name: str,
        value,
        *extra: str,
        spec: str = ",.1f",
        unit: str = "",
        target: str | None = "",
        status: str | None = "",
    ) -> None:
        """Print one row.  A non-str ``value`` is formatted with :func:`fmt`
        and ``unit`` appended.  ``status=None`` ends the row after the
        (unpadded) target; ``target=None`` ends it after the value columns."""
        v = value if isinstance(value, str) else fmt(value, spec) + unit
        s = f"{name:<{self.name_w}} {v:>{self.value_w}}"
        for x, (_, w) in zip(extra, self.extra):
            s += f" {x:>{w}}"
        if target is None:
            print(s)
        elif status is None:
            print(f"{s}  {target}")
        else:
            print(f"{s}  {target:<{self.target_w}} {status}")

    def target_row(
        self, name: str, value, t: dict, *extra: str, target: str | None = None, **kw
    ) -> None:
        """A row judged against target ``t`` (a :func:`check_targets` entry):
        its description (or ``target``) and ok/over."""
        self.row(
            name,
            value,
            *extra,
            target=t["target"] if target is None else target,
            status=target_status(t),
            **kw,
        )


def print_title(what: str, quick: bool, elapsed: float) -> None:
    """The first line of a report: ``netq <what> benchmark (quick|full), N s``."""
    print(f"netq {what} benchmark ({'quick' if quick else 'full'}), {elapsed:.1f} s")


def print_target_summary(targets: dict) -> None:
    """The two lines naming the targets met and missed."""
    met = [k for k, t in targets.items() if t["met"]]
    missed = [k for k, t in targets.items() if not t["met"]]
    print(f"targets met ({len(met)}/{len(targets)}): {', '.join(met) or 'none'}")
    print(f"targets missed: {', '.join(missed) or 'none'}")


def write_json(
    path: str, benchmark: str, machine: dict, params: dict, *, default=None, **sections
) -> None:
    """Write ``{"version": 1, "benchmark", "machine", "params", **sections}``
    to ``path`` (``sections`` in the order given; every benchmark has
    ``results`` and ``targets``) and say so.  ``default`` is json.dump's."""
    doc = {"version": 1, "benchmark": benchmark, "machine": machine, "params": params, **sections}
    with open(path, "w") as fh:
        json.dump(doc, fh, indent=2, default=default)
        fh.write("\n")
    print(f"\nwrote {path}")


# --------------------------------------------------------------------------
# the process
# --------------------------------------------------------------------------
def arg_parser(doc: str, quick_help: str = "small N: a smoke run of a few seconds"):
    """The common command line: ``--json PATH`` and ``--quick``; the
    description is the first paragraph of the script's docstring."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    ap.add_argument("--quick", action="store_true", help=quick_help)
    return ap


@contextlib.contextmanager
def signal_scope():
    """An :class:`IpcOwner` in whose scope SIGTERM/SIGHUP raise
    :class:`Terminated`, so that every IpcOwner inside unlinks what it made
    (Ctrl-C is a KeyboardInterrupt already)."""
    with IpcOwner() as owner, owner.handle_signals():
        yield owner


def warn_leftovers() -> None:
    """Complain on stderr about IPC objects of this process still in /dev/shm
    (cannot happen when everything was made through IpcOwners)."""
    left = [o.entry for o in netq_objects() if o.pid == os.getpid()]
    if left:
        print(f"warning: IPC objects left in /dev/shm: {left}", file=sys.stderr)


def run_main(main, prog: str) -> None:
    """``sys.exit(main())``, with exit status 130 on Ctrl-C and 128 + the
    signal number on SIGTERM/SIGHUP (turned into :class:`Terminated`)."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        sys.exit(130)
    except Terminated as e:
        print(f"{prog}: {e}", file=sys.stderr)
        sys.exit(128 + e.signum)
