"""What one run of the stress job ended in, and everything wrong with it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from netq.machine.tracedata import TraceData

from .generate import VIRTUAL_HOST_S, Case, cpu_rates


@dataclass
class Record:
    """What one run of the job ended in."""

    case: Case
    status: str = "not run"
    passed: bool = False
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    summary: str = ""
    result: Mapping[str, Any] | None = None
    config_path: str | None = None
    reproduce: list[str] = field(default_factory=list)
    #: the run's events (--traces), kept only until its verdict
    trace: TraceData | None = None
    #: where a failed run's Perfetto trace was written (--traces)
    trace_path: str | None = None

    @property
    def expected_fault(self) -> bool:
        return self.passed and self.case.expect != "ok"


def estimate_s(case: Case, overhead_s: float, run_seconds: float) -> float:
    """How long a run of ``case`` should take, for the budget."""
    cfg = case.cfg
    if case.kind == "kill":
        traffic = cfg.events[0].at + 0.2
    elif case.kind == "stop":
        traffic = cfg.events[0].at + cfg.stall_timeout + 0.3
    elif cfg.virtual and cfg.packets:  # flooding CPUs: ~1-2 us of virtual time a packet
        traffic = cfg.packets * 2e-6 * cfg.cpus * VIRTUAL_HOST_S
    elif cfg.packets:
        rates = cpu_rates(cfg)
        per_cpu = cfg.packets / cfg.cpus
        traffic = max(per_cpu / r if r else per_cpu / 5000.0 for r in rates)
        traffic = min(traffic, run_seconds)
    elif cfg.virtual:  # virtual seconds, each far dearer to the host
        traffic = cfg.duration * cfg.cpus * VIRTUAL_HOST_S
    else:
        traffic = cfg.duration
    return traffic + overhead_s


def check(case: Case, res: Mapping[str, Any]) -> list[str]:
    """Everything that is wrong with the result of ``case``."""
    problems = []
    status = res.get("status")
    faults = res.get("faults") or []
    if status != case.expect:
        why = "; ".join(faults)[:600]
        problems.append(
            f"status {status!r}, expected {case.expect!r}" + (f": {why}" if why else "")
        )
    if case.expect == "ok" or status == "ok":
        for c in res.get("invariants", []):
            if not c["ok"]:
                problems.append(f"invariant {c['name']}: {c['detail']}")
        if res.get("invariants_ok") is False and not any(
            p.startswith("invariant") for p in problems
        ):
            problems.append("invariants_ok is false")
    if status == "ok":
        drops = sum(res.get("drops", {}).values())
        if res.get("generated") != res.get("delivered", 0) + drops:
            problems.append(
                f"result: generated {res.get('generated')} != delivered "
                f"{res.get('delivered')} + dropped {drops}"
            )
        on_wire = sum(q["packets"] for q in res.get("queues", []))
        if on_wire != res.get("delivered"):
            problems.append(
                f"result: per-queue NIC packets {on_wire} != delivered {res.get('delivered')}"
            )
    done = [e["action"] for e in res.get("events", []) if e["action"] != "fault"]
    if case.kind == "kill" and status == "fault":
        victim = case.cfg.events[0].worker
        if not any(f.startswith(f"{victim} (pid") and "killed by signal 9" in f for f in faults):
            problems.append(f"fault does not name the killed worker {victim}: {'; '.join(faults)}")
    elif case.kind == "stop" and status == "stalled":
        if "stop" not in done:
            problems.append("stalled before the SIGSTOP was sent")
        elif not any("no progress" in f for f in faults):
            problems.append(f"stall report does not say what made no progress: {'; '.join(faults)}")
    elif case.kind != "random" and case.expect == "ok" and status == "ok":
        want = [e.action for e in sorted(case.cfg.events, key=lambda e: e.at)]
        if done != want:
            problems.append(f"events carried out {done}, planned {want}")
    return problems


def summary_line(case: Case, res: Mapping[str, Any] | None, status: str) -> str:
    if res is None:
        return f"#{case.index:03d} {status}: no result"
    drops = {k: v for k, v in res.get("drops", {}).items() if v}
    dtext = ", ".join(f"{k} {v}" for k, v in drops.items())
    s = (
        f"#{case.index:03d} {status}: generated {res.get('generated')}, delivered "
        f"{res.get('delivered')}, dropped {sum(drops.values())}"
        + (f" ({dtext})" if dtext else "")
        + f", {res.get('pps', 0) / 1000:.1f} kpps, invariants "
        + ("hold" if res.get("invariants_ok") else "BROKEN")
    )
    if status != "ok" and res.get("faults"):
        s += "; " + "; ".join(res["faults"])[:300]
    return s
