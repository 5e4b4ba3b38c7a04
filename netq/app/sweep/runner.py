"""Running a study: one point, the sweep (resumable), STUDY.json."""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import signal
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, fields
from typing import Any

from netq.app.figures import KERNEL_DEFER
from netq.app.report import derived

# SIGTERM/SIGHUP: the supervisor's scope raises it inside a run, ours between runs
from netq.machine.result import EXIT_INTERRUPTED, EXIT_TERMINATED
from shm import native
from shm.ipc import Terminated
from workers.supervisor import Supervisor

from . import plot
from .rows import (
    COLUMNS,
    FIGURES,
    KEY,
    PROG,
    TEXT,
    RowWriter,
    _cell,
    _typed,
    read_rows,
    write_rows,
)
from .studies import Options, Point
from .table import medians, ratios, table

JSON_VERSION = 1


def run_point(point: Point, rep: int) -> dict[str, Any]:
    """Run one point; its row.  An interrupted run raises KeyboardInterrupt
    (Ctrl-C) or Terminated, and leaves no row: it is run again on --resume."""
    row: dict[str, Any] = dict(
        asdict(point),
        rep=rep,
        seed=rep + 1,
        loadavg_1m=os.getloadavg()[0],
        worker_host=platform.node(),
        worker_cores=len(os.sched_getaffinity(0)),
    )
    t0 = time.monotonic()
    try:
        outcome = Supervisor(point.config(rep)).run()
    except (KeyboardInterrupt, Terminated):
        raise
    except Exception as e:  # a bug or a refused config: record it, go on
        row.update(
            status="error", fault=f"{type(e).__name__}: {e}"[:300], elapsed_s=time.monotonic() - t0
        )
        return row
    if outcome.status == "interrupted":
        raise KeyboardInterrupt
    if outcome.status == "terminated":
        raise Terminated(signal.SIGTERM)
    res = outcome.result
    row["elapsed_s"] = time.monotonic() - t0
    row.update(_from_result(res))
    return row


def _from_result(res: Mapping[str, Any]) -> dict[str, Any]:
    s = res["setup"]
    d = derived(res)
    m = res.get("mechanism", {})
    lat = res.get("latency", {})
    drops = {k: v for k, v in res.get("drops", {}).items() if v}
    bad = [c["name"] for c in res.get("invariants", []) if not c["ok"]]
    fault = "; ".join(list(res.get("faults") or []) + [f"invariant {n}" for n in bad])
    out = {
        "status": res["status"],
        "invariants_ok": res.get("invariants_ok"),
        "exit_code": res.get("exit_code"),
        "fault": fault[:300] or None,
        "shared_cores": s["shared_cores"],
        "processes": s["processes"],
        "host_cores": len(s["host_cores"]),
        "lock_waiting": s["lock"]["waiting"],
        "lock_spin_ns": s["lock"]["spin_ns"],
        "window_s": res.get("window_s"),
        "generated": res.get("generated"),
        "delivered": res.get("delivered"),
        "delivered_in_window": res.get("delivered_in_window"),
        "drops_total": sum(drops.values()),
        "drops": " ".join(f"{k}={v}" for k, v in sorted(drops.items())) or None,
        "bypass": m.get("bypass"),
        "requeues": m.get("requeues"),
        "latency_p50_ns": lat.get("p50"),
        "latency_p99_ns": lat.get("p99"),
    }
    for k in FIGURES:
        if k in d:
            out[k] = d[k]
    return out


def machine_info() -> dict[str, Any]:
    model = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_kb = None
    try:
        with open("/proc/meminfo") as f:
            mem_kb = int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        pass
    try:
        backend = native.backend()
    except Exception as e:
        backend = f"unknown ({e})"
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": model,
        "host_cores": sorted(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "mem_total_kb": mem_kb,
        "atomics_backend": backend,
    }


def sweep(opts: Options, argv: list[str]) -> int:
    # tqdm is the optional plot extra's: imported here, after cli checked it is installed
    from tqdm import tqdm

    started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    plan = opts.plan()
    path = opts.csv_path
    kept: list[dict[str, str]] = []
    if opts.resume and os.path.exists(path):
        kept = read_rows(path)
    write_rows(path, kept)  # fresh, or the kept rows without a torn last line
    done = {tuple(r[k] for k in KEY) for r in kept}
    todo = [(p, r) for p, r in plan if p.key(r) not in done]
    if opts.resume:
        print(
            f"{PROG}: {len(plan) - len(todo)} of {len(plan)} runs already in {path}; "
            f"{len(todo)} to go",
            file=sys.stderr,
        )
    command = shlex.join([sys.executable] + argv)
    meta = {
        "started": started,
        "command": command,
        "commands": _earlier_commands(opts) + [command] if opts.resume else [command],
    }
    writer = RowWriter(path)
    failed = 0
    bar = tqdm(total=len(todo), unit="run", desc=opts.study.name, dynamic_ncols=True)
    client = None
    try:
        if opts.distributed:
            # the `dist` extra, imported only when a cluster is asked for
            from . import dist

            client = dist.cluster(opts.scheduler, opts.local_workers)
            workers = client.scheduler_info()["workers"]
            print(
                f"{PROG}: {len(todo)} runs on a Dask cluster of {len(workers)} worker(s) "
                f"({client.scheduler.address}); "
                + (
                    "wall-clock runs: one at a time per machine"
                    if opts.clock == "wall"
                    else "virtual-clock runs: as many per machine as it has workers"
                ),
                file=sys.stderr,
            )
            rows: Iterator[dict[str, Any]] = dist.rows(client, todo)
        else:
            rows = (run_point(p, r) for p, r in todo)
        for row in rows:
            writer.write({k: _cell(row.get(k)) for k in COLUMNS})
            point = Point(**{f.name: row[f.name] for f in fields(Point)})
            label = f"{point.label()} rep {row['rep']}"
            bar.set_postfix_str(label)
            if row["status"] != "ok":
                failed += 1
                bar.write(f"{PROG}: {label}: {row['status']} - {row.get('fault') or ''}")
            bar.update(1)
    except KeyboardInterrupt:
        bar.close()
        writer.close()
        _finish(opts, plan, meta, complete=False)
        print(
            f"{PROG}: interrupted; rows so far are in {path}: rerun with --resume to go on",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except Terminated:
        bar.close()
        writer.close()
        _finish(opts, plan, meta, complete=False)
        print(f"{PROG}: terminated; rerun with --resume to go on", file=sys.stderr)
        return EXIT_TERMINATED
    finally:
        if client is not None:
            dist.close(client, local=opts.scheduler is None)
    bar.close()
    writer.close()
    doc = _finish(opts, plan, meta, complete=True)
    png = plot.plot_study(doc, os.path.join(opts.out, f"{opts.study.name}.png"))
    print(table(opts.study.name, doc["medians"]))
    bad = [r for r in doc["rows"] if r["status"] != "ok"]
    print(
        f"{PROG}: {len(doc['rows'])} runs ({len(bad)} not ok); wrote {path}, "
        f"{os.path.join(opts.out, opts.study.name + '.json')}, {png}"
    )
    return 1 if bad else 0


def _earlier_commands(opts: Options) -> list[str]:
    """The commands that wrote the rows a --resume keeps (from STUDY.json)."""
    try:
        with open(os.path.join(opts.out, f"{opts.study.name}.json")) as f:
            doc = json.load(f)
    except (OSError, ValueError):
        return []
    if not isinstance(doc, dict) or doc.get("study") != opts.study.name:
        return []
    return [c for c in doc.get("commands", [doc.get("command")]) if isinstance(c, str)]


def _finish(opts: Options, plan: list[tuple[Point, int]], meta: dict, complete: bool) -> dict:
    """Write STUDY.json from the CSV rows that belong to this plan."""
    keys = {p.key(r) for p, r in plan}
    rows = [
        {k: _typed(v) if k not in TEXT else (v or None) for k, v in r.items()}
        for r in read_rows(opts.csv_path)
        if tuple(r[k] for k in KEY) in keys
    ]
    doc = {
        "version": JSON_VERSION,
        "study": opts.study.name,
        "summary": opts.study.summary,
        "complete": complete and len(rows) == len(plan),
        "started": meta["started"],
        "finished": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": meta["command"],
        "commands": meta["commands"],
        "cwd": os.getcwd(),
        "machine": {**machine_info(), "loadavg_end": list(os.getloadavg())},
        "parameters": {
            "duration_s": opts.duration,
            "repeat": opts.repeat,
            "bounce_ns": list(opts.bounce),
            "quick": opts.quick,
            "file": opts.file and os.path.abspath(opts.file),
            "points": len(plan) // opts.repeat,
            "runs": len(plan),
        },
        "columns": list(COLUMNS),
        "rows": rows,
        "medians": medians(rows),
    }
    if opts.study.name == "generations":
        doc["ratios"] = ratios(doc["medians"])
        doc["kernel"] = KERNEL_DEFER
    path = os.path.join(opts.out, f"{opts.study.name}.json")
    with open(path + ".tmp", "w") as f:
        json.dump(doc, f, indent=1)
    os.replace(path + ".tmp", path)
    return doc
