"""``python -m netq.run stress``: the command line of the stress job."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from typing import NoReturn

from netq.kernel.kstructs import FAULTS
from netq.machine.result import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from shm.ipc import terminate_on_signals

from ..outputs import output_path_problem
from .generate import DEFAULT_RUN_SECONDS, GeneratorBug, generate
from .job import HARD_LIMIT_SLACK_S, Job

DEFAULT_BUDGET = 60.0


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2
        raise UsageError(message)


def _indices(text: str) -> list[int]:
    try:
        out = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: comma-separated configuration numbers"
        ) from None
    if not out or any(i < 0 for i in out):
        raise argparse.ArgumentTypeError(f"{text!r}: comma-separated configuration numbers >= 0")
    return out


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m netq.run stress",
        description="The CI stress job: seeded random configurations (and, with --chaos, "
        "runs broken on purpose), each checked for every invariant, deadlock, "
        "worker crash and leaked IPC object.  Exit 0 when all pass, 1 otherwise.",
        epilog="Examples:\n"
        "  python -m netq.run stress --budget 60 --chaos --seed 1 --junit stress-junit.xml\n"
        "  python -m netq.run stress --seed 1 --only 7          rerun configuration 7\n"
        "  python -m netq.run stress --seed 1 --dry-run --runs 20  list configurations\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--budget",
        type=float,
        default=DEFAULT_BUDGET,
        metavar="SECONDS",
        help=f"start no run that would end after this (default {DEFAULT_BUDGET:g}); "
        "at least one run is made",
    )
    p.add_argument("--seed", type=int, help="the job's seed (default: random, printed)")
    p.add_argument(
        "--chaos",
        action="store_true",
        help="every third run breaks something on purpose: kill, stop, slow_nic, "
        "set_real_num_tx_queues, dev_close (expected outcomes)",
    )
    p.add_argument(
        "--run-seconds",
        type=float,
        default=DEFAULT_RUN_SECONDS,
        metavar="S",
        help=f"at most this much traffic per run (default {DEFAULT_RUN_SECONDS:g})",
    )
    p.add_argument("--junit", metavar="PATH", help="write JUnit XML (one testcase per run)")
    p.add_argument(
        "--fault",
        choices=sorted(FAULTS),
        help="test the checks: break every run on purpose with this fault event "
        "(lose_one: the NIC loses one skb without a trace)",
    )
    p.add_argument(
        "--traces",
        action="store_true",
        help="record every run's events and keep a failed run's Perfetto trace beside its "
        "reproducer (stress-seedS-III.pftrace); the trace extra",
    )
    p.add_argument("--json", metavar="PATH", help="write the job's results as JSON")
    p.add_argument(
        "--only",
        type=_indices,
        metavar="I[,J...]",
        help="run only these configurations of the seed (ignores --budget)",
    )
    p.add_argument("--runs", type=int, metavar="N", help="at most N runs")
    p.add_argument("--fail-fast", action="store_true", help="stop at the first failure")
    p.add_argument(
        "--hard-limit",
        type=float,
        default=HARD_LIMIT_SLACK_S,
        metavar="S",
        help="end a run (as hung, a failure) that takes S seconds longer than "
        f"expected (default {HARD_LIMIT_SLACK_S:g})",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="generate and validate the configurations (--runs, default 20) and print "
        "them; run nothing",
    )
    p.add_argument(
        "--quiet", action="store_true", help="do not print the full report of a failed run"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.seed is None:
            args.seed = int.from_bytes(os.urandom(4), "little") & 0x7FFFFFFF
        if args.seed < 0:
            raise UsageError("--seed: a number >= 0")
        if not 0 <= args.budget <= 86400:
            raise UsageError("--budget: seconds, 0 to 86400")
        if not 0.1 <= args.run_seconds <= 30:
            raise UsageError("--run-seconds: seconds, 0.1 to 30")
        if not 1 <= args.hard_limit <= 3600:
            raise UsageError("--hard-limit: seconds, 1 to 3600")
        if args.runs is not None and args.runs < 0:
            raise UsageError("--runs: a number >= 0")
        if args.traces and importlib.util.find_spec("perfetto") is None:
            raise UsageError("--traces: perfetto is not installed; install the trace extra")
        for flag in ("junit", "json"):  # refused now, not after the whole job
            path = getattr(args, flag)
            problem = path and output_path_problem("--" + flag, path)
            if problem:
                raise UsageError(problem)
    except UsageError as e:
        print(f"netq stress: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    if args.dry_run:
        return dry_run(args)
    job = Job(args)
    with terminate_on_signals():  # SIGTERM and SIGHUP end the job like Ctrl-C: 143
        return job.run()


def dry_run(args: argparse.Namespace) -> int:
    idx = args.only or range(args.runs if args.runs is not None else 20)
    print(f"netq stress: seed {args.seed} (dry run: generate and validate only)")
    for i in idx:
        try:
            case = generate(args.seed, i, args.chaos, args.run_seconds)
        except GeneratorBug as e:
            print(f"GENERATOR BUG: {e}")
            return EXIT_FAILED
        print(f"#{i:03d} expect {case.expect:7s} {case.desc}")
    return EXIT_OK
