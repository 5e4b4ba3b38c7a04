"""The stress job: generate, run in this process, check, report."""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import signal
import tempfile
import time
from typing import Any, cast

from netq.app import report
from netq.machine.config import EventConfig
from netq.machine.result import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    Result,
)
from shm.ipc import Terminated, child_pids, kill_processes, netq_objects
from workers.supervisor import Supervisor

from .check import Record, check, estimate_s, summary_line
from .generate import DEFAULT_RUN_SECONDS, Case, GeneratorBug, generate
from .junit import write_json, write_junit
from .toml import to_toml

#: first guess of a run's overhead (platform measurement, fork, drain, report)
OVERHEAD_GUESS_S = 1.2
#: a run that takes this much longer than its estimate is ended (hung)
HARD_LIMIT_SLACK_S = 30.0


class _HardTimeout(KeyboardInterrupt):
    """A run outlived its hard limit.  A KeyboardInterrupt, because that is
    the one exception posix_ipc (1.3.2) lets out of a semaphore wait that a
    signal interrupts (others become posix_ipc.SignalError, which the lock
    code retries), and the supervisor ends a run on it with full cleanup."""


def _own_ipc() -> list:
    me = os.getpid()
    return [o for o in netq_objects() if o.pid == me]


def _remove_ipc(objs) -> None:
    for o in objs:
        o.unlink()


class Job:
    """The stress job: generate, run, check, report."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.seed: int = args.seed
        self.records: list[Record] = []
        self.overhead_s = OVERHEAD_GUESS_S
        self.t0 = time.monotonic()
        self._artifacts: str | None = None
        self._timed_out = False
        self.stopped: str | None = None  # "interrupted" / "terminated"

    # -- output ------------------------------------------------------------------------
    def say(self, text: str = "") -> None:
        print(text, flush=True)

    def artifacts_dir(self) -> str:
        if self._artifacts is None:
            out = self.args.junit or self.args.json
            if out:
                self._artifacts = os.path.dirname(os.path.abspath(out))
            else:
                self._artifacts = tempfile.mkdtemp(prefix=f"netq-stress-{self.seed}-")
            os.makedirs(self._artifacts, exist_ok=True)
        return self._artifacts

    def reproduce_cmds(self, case: Case, path: str) -> list[str]:
        env = ""  # the config file carries a --fault as a "fault" event
        job = f"python -m netq.run stress --seed {case.seed} --only {case.index}"
        if self.args.fault:
            job += f" --fault {self.args.fault}"
        if self.args.chaos:
            job += " --chaos"
        if self.args.run_seconds != DEFAULT_RUN_SECONDS:
            job += f" --run-seconds {self.args.run_seconds:g}"
        return [f"{env}python -m netq.run --config {path}", f"{env}{job}"]

    # -- one run -------------------------------------------------------------------------
    def run_case(self, case: Case) -> Record:
        rec = Record(case)
        est = estimate_s(case, self.overhead_s, self.args.run_seconds)
        hard = max(1, math.ceil(est + self.args.hard_limit))
        me = os.getpid()
        self._timed_out = False
        old = signal.signal(signal.SIGALRM, self._on_alarm)
        signal.alarm(hard)
        t0 = time.monotonic()
        res = None
        try:
            try:
                cfg = case.cfg
                if self.args.traces:  # recorded; written only if the run fails
                    cfg = dataclasses.replace(cfg, trace=os.devnull)
                outcome = Supervisor(cfg).run()
                res, rec.trace = outcome.result, outcome.trace
            except _HardTimeout:
                pass  # raised outside the supervisor's own handling
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)
            rec.seconds = time.monotonic() - t0
        if self._timed_out:
            # The supervisor took the alarm for Ctrl-C and cleaned up; it hung.
            hang = (
                f"the run did not end within its hard limit of {hard} s (the supervisor "
                "itself hung, its watchdog included); ended by SIGALRM"
            )
            hung: dict[str, Any] = dict(res or {}, status="hung")
            hung["faults"] = [hang, *(hung.get("faults") or [])]
            res = cast(Result, hung)
        elif res is not None and res.get("status") in ("interrupted", "terminated"):
            self.stopped = res["status"]
        rec.result = res
        rec.status = res.get("status", "?") if res else "?"
        if res is not None:
            rec.problems += check(case, res)
        left = _own_ipc()
        if left:
            rec.problems.append(
                f"/dev/shm objects left by this run (owner pid {me}): "
                + ", ".join(o.entry for o in left[:8])
                + (f" and {len(left) - 8} more" if len(left) > 8 else "")
            )
            _remove_ipc(left)
        kids = child_pids(me)
        if kids:
            rec.problems.append(f"child processes left after the run: {kids}")
            kill_processes(kids)  # forked by this job and outlived a run
        rec.passed = not rec.problems
        rec.summary = summary_line(case, res, rec.status)
        # learn the overhead (what a run costs beyond its traffic time)
        if not self._timed_out:
            extra = max(0.0, rec.seconds - estimate_s(case, 0.0, self.args.run_seconds))
            self.overhead_s = 0.7 * self.overhead_s + 0.3 * min(extra, 10.0)
        return rec

    def _on_alarm(self, signum: int, frame: object) -> None:
        self._timed_out = True
        signal.alarm(10)  # once more if the cleanup hangs too
        raise _HardTimeout()

    def fail_report(self, rec: Record) -> None:
        case = rec.case
        path = os.path.join(self.artifacts_dir(), f"stress-seed{case.seed}-{case.index:03d}.toml")
        rec.config_path = path
        rec.reproduce = self.reproduce_cmds(case, path)
        comments = [
            f"netq stress job, seed {case.seed}, configuration {case.index} ({case.kind}, "
            f"expected status {case.expect!r}, got {rec.status!r})",
            *[f"problem: {p}" for p in rec.problems],
            "reproduce:",
            *[f"  {c}" for c in rec.reproduce],
            "",
        ]
        with open(path, "w") as f:
            f.write(to_toml(case.cfg, comments))
        if rec.trace is not None:
            # the trace extra's (checked by the CLI); imported only to write one
            from netq.app import perfetto

            rec.trace_path = os.path.splitext(path)[0] + ".pftrace"
            perfetto.write(rec.trace, rec.trace_path)
        if rec.result is not None and not self.args.quiet:
            try:
                text = report.text(rec.result)
            except Exception as e:  # the report must not hide the failure
                text = f"(report failed: {e!r})"
            self.say("\n".join("    | " + line for line in text.splitlines()))
        self.say(
            f"  FAILED: seed {case.seed}, configuration {case.index} ({case.kind}): {case.desc}"
        )
        for p in rec.problems:
            self.say(f"    - {p}")
        self.say(f"    config: {path}")
        if rec.trace_path:
            self.say(f"    trace: {rec.trace_path} (open it in ui.perfetto.dev)")
        self.say(f"    reproduce: {rec.reproduce[0]}")
        self.say(f"           or: {rec.reproduce[1]}")

    # -- the job ---------------------------------------------------------------------------
    def indices(self):
        if self.args.only:
            yield from self.args.only
            return
        i = 0
        while self.args.runs is None or i < self.args.runs:
            yield i
            i += 1

    def run(self) -> int:
        a = self.args
        chaos = " --chaos" if a.chaos else ""
        self.say(
            f"netq stress: seed {self.seed}, budget {a.budget:g} s, {a.run_seconds:g} s of "
            f"traffic per run{', with chaos runs' if a.chaos else ''} "
            f"(rerun: python -m netq.run stress --seed {self.seed}{chaos})"
        )
        if a.fault:
            self.say(f"netq stress: --fault {a.fault}: runs are broken on purpose (test-only)")

        try:
            for i in self.indices():
                case = generate(self.seed, i, a.chaos, a.run_seconds)
                if a.fault:
                    case.cfg.events.append(EventConfig(at=0.0, action="fault", fault=a.fault))
                elapsed = time.monotonic() - self.t0
                est = estimate_s(case, self.overhead_s, a.run_seconds)
                if self.records and not a.only and elapsed + est > a.budget:
                    self.say(
                        f"netq stress: budget reached ({elapsed:.1f} s used, next run ~{est:.1f} s)"
                    )
                    break
                rec = self.run_case(case)
                self.records.append(rec)
                self.progress(rec)
                if self.stopped:
                    break
                if not rec.passed:
                    self.fail_report(rec)
                rec.trace = None  # a passed run's events are not kept
                if not rec.passed and a.fail_fast:
                    break
        except KeyboardInterrupt:
            self.stopped = "interrupted"
        except Terminated:
            self.stopped = "terminated"
        except GeneratorBug as e:
            self.say(f"netq stress: GENERATOR BUG: {e}")
            self.finish()
            return EXIT_FAILED
        return self.finish()

    def progress(self, rec: Record) -> None:
        c = rec.case
        if rec.passed:
            verdict = "ok  " if c.expect == "ok" else f"ok (expected {rec.status})"
        else:
            verdict = "FAIL"
        self.say(f"[{len(self.records):3d}] #{c.index:03d} {verdict} {rec.seconds:5.1f}s  {c.desc}")
        self.say(f"        {rec.summary}")

    def totals(self) -> dict:
        recs = self.records
        kinds: dict[str, int] = {}
        for r in recs:
            if r.expected_fault:
                kinds[r.case.kind] = kinds.get(r.case.kind, 0) + 1
        return {
            "runs": len(recs),
            "passed": sum(r.passed for r in recs),
            "failed": sum(not r.passed for r in recs),
            "expected_faults": sum(r.expected_fault for r in recs),
            "expected_faults_by_kind": kinds,
            "chaos_runs": sum(r.case.kind != "random" for r in recs),
            "seconds": round(time.monotonic() - self.t0, 2),
        }

    def finish(self) -> int:
        t = self.totals()
        if self.stopped == "interrupted":
            code = EXIT_INTERRUPTED
        elif self.stopped == "terminated":
            code = EXIT_TERMINATED
        else:
            code = EXIT_FAILED if t["failed"] or not t["runs"] else EXIT_OK
        line = (
            f"netq stress summary: seed {self.seed}: {t['runs']} runs, {t['passed']} passed, "
            f"{t['failed']} failed, {t['expected_faults']} expected faults"
            + (
                " (" + ", ".join(f"{k} {v}" for k, v in t["expected_faults_by_kind"].items()) + ")"
                if t["expected_faults_by_kind"]
                else ""
            )
            + f", {t['chaos_runs']} chaos runs, {t['seconds']:.1f} s"
        )
        if self.stopped:
            line += f" - {self.stopped.upper()}"
        self.say(line)
        for r in self.records:
            if not r.passed:
                self.say(
                    f"  FAILED #{r.case.index:03d} ({r.case.kind}): {r.problems[0] if r.problems else ''}"
                )
                if r.config_path:
                    self.say(f"    reproduce: {r.reproduce[0]}")
        if self.args.junit:
            write_junit(self.args.junit, self.seed, self.args, self.records, t)
            self.say(f"netq stress: JUnit XML written to {self.args.junit}")
        if self.args.json:
            write_json(self.args.json, self.seed, self.args, self.records, t, code)
            self.say(f"netq stress: JSON written to {self.args.json}")
        return code
