"""``scripts/sweep.py``: the command line of the load studies."""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import sys
from typing import NoReturn

from netq.machine.result import EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_USAGE
from shm.ipc import Terminated

from . import filestudy
from .rows import PROG, Usage, read_rows
from .runner import sweep
from .studies import QUICK_DURATION, STUDIES, Options

#: a virtual-clock study's duration per point (virtual seconds), and --quick's
VIRTUAL_DURATION_S, VIRTUAL_QUICK_S = 0.01, 0.002


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not the usage block
        raise Usage(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="sweep.py",
        description="netq load studies: "
        + ", ".join(f"{s.name} ({s.summary})" for s in STUDIES.values()),
    )
    p.add_argument("study", nargs="?", help="one of " + ", ".join(STUDIES))
    p.add_argument(
        "--file",
        metavar="STUDY.toml",
        help="run the study this file describes (a base experiment and the axes to vary; "
        "README.md: Studies of your own) instead of a built-in one",
    )
    p.add_argument(
        "--out", default="netq-studies", help="output directory (default ./netq-studies)"
    )
    p.add_argument("--duration", type=float, help="seconds of traffic per point")
    p.add_argument("--repeat", type=int, help="repetitions of every point")
    p.add_argument("--bounce", help="bounce_ns values, comma-separated (e.g. 0,2000)")
    p.add_argument("--quick", action="store_true", help="fewer points, 0.3 s each, once")
    p.add_argument("--resume", action="store_true", help="skip points already in STUDY.csv")
    p.add_argument("--list", action="store_true", help="list the studies and exit")
    p.add_argument(
        "--clock",
        choices=("wall", "virtual"),
        default="wall",
        help="the runs' clock: virtual runs give the emulated machine's figures and may "
        "share a machine on a cluster (--duration then counts virtual seconds, default "
        "0.01, --quick 0.002)",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run the points on the Dask cluster at ADDRESS (tcp://HOST:8786); the dist extra",
    )
    where.add_argument(
        "--local-cluster",
        type=int,
        metavar="N",
        help="run the points on a new local Dask cluster of N worker processes; the dist extra",
    )
    return p


def parse_args(argv: list[str]) -> Options | None:
    a = _parser().parse_args(argv)
    if a.list:
        return None
    if a.file is not None:
        if a.study is not None:
            raise Usage(f"--file: a study file or a built-in study ({a.study}), not both")
        if a.bounce is not None:
            raise Usage('--bounce: a study file varies bounce as an axis ("costs.bounce_ns")')
        st = filestudy.load(a.file)
    elif a.study is None:
        raise Usage(f"a study is required: one of {', '.join(STUDIES)}, or --file STUDY.toml")
    elif a.study not in STUDIES:
        raise Usage(f"unknown study {a.study!r}; one of {', '.join(STUDIES)}")
    else:
        st = STUDIES[a.study]
    if a.duration is not None:
        dur = a.duration
    elif a.clock == "virtual":
        dur = VIRTUAL_QUICK_S if a.quick else VIRTUAL_DURATION_S
    else:
        dur = QUICK_DURATION if a.quick else st.duration
    if not 0 < dur <= 3600:
        raise Usage(f"--duration: seconds, > 0 and <= 3600, got {dur:g}")
    rep = a.repeat if a.repeat is not None else (1 if a.quick else st.repeat)
    if not 1 <= rep <= 1000:
        raise Usage(f"--repeat: an integer from 1 to 1000, got {rep}")
    if a.bounce is not None:
        try:
            bounce = tuple(int(x) for x in a.bounce.split(","))
        except ValueError:
            raise Usage(f"--bounce: comma-separated integers (ns), got {a.bounce!r}") from None
        if (
            not bounce
            or any(not 0 <= b <= 10**8 for b in bounce)
            or len(set(bounce)) != len(bounce)
        ):
            raise Usage(f"--bounce: distinct integers from 0 to 100000000 ns, got {a.bounce!r}")
    else:
        bounce = st.quick_bounce if a.quick else st.bounce
    if a.local_cluster is not None and not 1 <= a.local_cluster <= 256:
        raise Usage(f"--local-cluster: a number of workers from 1 to 256, got {a.local_cluster}")
    if a.scheduler is not None and not a.scheduler.strip():
        raise Usage("--scheduler: a scheduler address, e.g. tcp://HOST:8786")
    if (a.scheduler or a.local_cluster) and importlib.util.find_spec("distributed") is None:
        raise Usage(
            "dask distributed is not installed; install the dist extra: pip install '.[dist]'"
        )
    if a.clock == "virtual" and a.file:
        for p in st.points(a.quick, float(dur), ()):
            if p.lock_fairness != "fifo":
                raise Usage(
                    f"{a.file}: the point {p.series}: lock_fairness: the virtual clock grants "
                    "each lock in request order; 'unfair' needs the wall clock"
                )
    return Options(
        st,
        a.out,
        float(dur),
        rep,
        bounce,
        a.quick,
        a.resume,
        clock=a.clock,
        scheduler=a.scheduler,
        local_workers=a.local_cluster,
        file=a.file,
    )


def _need_extras() -> None:
    for mod in ("tqdm", "matplotlib"):
        if importlib.util.find_spec(mod) is None:
            raise Usage(f"{mod} is not installed; install the plot extra: pip install '.[plot]'")


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated(signum)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        opts = parse_args(argv)
        if opts is None:
            for s in STUDIES.values():
                print(
                    f"{s.name:12s} {s.summary} ({s.duration:g} s per point, {s.repeat} reps, "
                    f"bounce {','.join(map(str, s.bounce))})"
                )
            return 0
        _need_extras()
        if os.path.exists(opts.out) and not os.path.isdir(opts.out):
            raise Usage(f"--out: {opts.out} exists and is not a directory")
        try:
            os.makedirs(opts.out, exist_ok=True)
        except OSError as e:
            raise Usage(f"--out: cannot create {opts.out}: {e.strerror}") from None
        if opts.resume and os.path.exists(opts.csv_path):
            read_rows(opts.csv_path)  # refuse a CSV of other columns before running anything
    except Usage as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    signal.signal(signal.SIGTERM, _raise_terminated)
    signal.signal(signal.SIGHUP, _raise_terminated)
    try:
        return sweep(opts, [sys.argv[0]] + argv)
    except KeyboardInterrupt:  # between setting up and the first point, or after the last
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Terminated:
        return EXIT_TERMINATED
    except Usage as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
