"""The stress job's reports for CI: JUnit XML and JSON."""

from __future__ import annotations

import argparse
import json
import platform
import time
import xml.etree.ElementTree as ET

from .check import Record


def write_junit(
    path: str, seed: int, args: argparse.Namespace, records: list[Record], totals: dict
) -> None:
    """JUnit XML: one testsuite, one testcase per configuration run."""
    suites = ET.Element(
        "testsuites",
        name="netq stress",
        tests=str(totals["runs"]),
        failures=str(totals["failed"]),
        errors="0",
        time=f"{totals['seconds']:.3f}",
    )
    suite = ET.SubElement(
        suites,
        "testsuite",
        {
            "name": f"netq.app.stress.seed{seed}",
            "tests": str(totals["runs"]),
            "failures": str(totals["failed"]),
            "errors": "0",
            "skipped": "0",
            "time": f"{totals['seconds']:.3f}",
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime()),
            "hostname": platform.node(),
        },
    )
    props = ET.SubElement(suite, "properties")
    for k, v in (
        ("seed", seed),
        ("budget", args.budget),
        ("chaos", args.chaos),
        ("run_seconds", args.run_seconds),
        ("fault", args.fault or ""),
    ):
        ET.SubElement(props, "property", name=k, value=str(v))
    for r in records:
        c = r.case
        tc = ET.SubElement(
            suite,
            "testcase",
            classname=f"netq.app.stress.{c.kind}",
            name=f"#{c.index:03d} {c.desc}",
            time=f"{r.seconds:.3f}",
        )
        if not r.passed:
            fail = ET.SubElement(
                tc,
                "failure",
                message=(r.problems[0] if r.problems else "failed")[:500],
                type=r.status,
            )
            fail.text = "\n".join(
                [
                    f"seed {c.seed}, configuration {c.index} ({c.kind}), expected {c.expect!r}, "
                    f"got {r.status!r}"
                ]
                + [f"- {p}" for p in r.problems]
                + ([f"config: {r.config_path}"] if r.config_path else [])
                + [f"reproduce: {cmd}" for cmd in r.reproduce]
            )
        out = ET.SubElement(tc, "system-out")
        out.text = r.summary
    ET.indent(suites)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)


def write_json(
    path: str, seed: int, args: argparse.Namespace, records: list[Record], totals: dict, code: int
) -> None:
    runs = []
    for r in records:
        res = r.result or {}
        runs.append(
            {
                "index": r.case.index,
                "kind": r.case.kind,
                "clock": r.case.cfg.clock,
                "description": r.case.desc,
                "expected_status": r.case.expect,
                "status": r.status,
                "passed": r.passed,
                "seconds": round(r.seconds, 3),
                "problems": r.problems,
                "summary": r.summary,
                "config_path": r.config_path,
                "reproduce": r.reproduce,
                "generated": res.get("generated"),
                "delivered": res.get("delivered"),
                "drops": {k: v for k, v in res.get("drops", {}).items() if v},
                "pps": res.get("pps"),
                "invariants_ok": res.get("invariants_ok"),
                "faults": res.get("faults", []),
            }
        )
    doc = {
        "version": 1,
        "seed": seed,
        "budget_s": args.budget,
        "chaos": args.chaos,
        "run_seconds": args.run_seconds,
        "exit_code": code,
        "summary": totals,
        "runs": runs,
    }
    with open(path, "w") as f:
        json.dump(doc, f, indent=1, default=str)
