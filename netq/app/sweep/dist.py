"""A load study spread over a Dask distributed cluster.

Each point x repetition is one task.  The task runs the point in a process
of its own (:mod:`netq.app.sweep.task`: a run forks its emulated CPUs and
installs signal handlers, which a Dask worker's task thread cannot), tied to
the worker by a parent-death signal, and returns the row with the worker's
host and core count.  Rows stream back as tasks finish; the caller writes
them exactly as an in-process sweep does (same CSV, resumable).

Wall-clock runs need their host's cores to themselves: a task holds the
cluster-wide lock ``netq-wall-<hostname>`` while its run goes, so a machine
runs one wall-clock point at a time however many workers it has (the
``HOST=1`` worker resource of the Dask docs, without configuring the
workers).  Virtual-clock runs (``--clock virtual``), whose figures do not
depend on the host, run as many at a time as the machine has workers.  A worker that dies mid-task: Dask runs the task again elsewhere,
the lock's lease expires (``distributed.scheduler.locks.lease-timeout``),
and the next task on that machine removes the dead run's IPC objects
(:func:`shm.ipc.cleanup_stale`).  Ctrl-C on the client cancels what has not
finished; the rows already written stay.
"""

from __future__ import annotations

import json
import os
import pickle
import platform
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

# dask is the optional `dist` extra: this module is imported only when a
# sweep is asked to use a cluster (netq.app.sweep.cli checks it is installed)
from distributed import Client, LocalCluster, Lock, as_completed

from shm.ipc import cleanup_stale
from workers.platform import die_with_parent

from .studies import Point

#: a point's run must end within its duration plus this (s), else it is failed
TASK_SLACK_S = 120.0


def run_point_task(point: Point, rep: int) -> dict[str, Any]:
    """Run one point on this worker (Dask task); its row."""
    cleanup_stale()  # what a run killed with its worker left on this machine
    host = platform.node()
    try:
        if point.clock == "wall":
            with Lock(f"netq-wall-{host}"):
                row = _run_in_child(point, rep)
        else:  # the emulated machine's time: several may share the host
            row = _run_in_child(point, rep)
    except (RuntimeError, ValueError, subprocess.TimeoutExpired) as e:  # recorded, like a bug
        row = dict(asdict(point), rep=rep, seed=rep + 1, status="error", fault=str(e)[:300])
    row["worker_host"] = host
    row["worker_cores"] = len(os.sched_getaffinity(0))
    return row


def _run_in_child(point: Point, rep: int) -> dict[str, Any]:
    parent = os.getpid()
    p = subprocess.run(
        [sys.executable, "-m", "netq.app.sweep.task"],
        input=pickle.dumps((point, rep)),
        capture_output=True,
        timeout=point.duration_s + TASK_SLACK_S,
        preexec_fn=lambda: die_with_parent(parent),
        check=False,
    )
    lines = p.stdout.decode(errors="replace").splitlines()
    if p.returncode != 0 or not lines:
        err = p.stderr.decode(errors="replace").strip().splitlines()
        raise RuntimeError(
            f"point {point.label()} rep {rep}: exit {p.returncode}: {(err or ['?'])[-1]}"
        )
    row: dict[str, Any] = json.loads(lines[-1])
    return row


def cluster(scheduler: str | None, local_workers: int | None) -> Client:
    """A client of the cluster at ``scheduler``, or of a new local cluster of
    ``local_workers`` worker processes (one thread each) on this machine,
    closed with the client (:func:`close`)."""
    if scheduler is not None:
        return Client(scheduler)
    lc = LocalCluster(
        n_workers=local_workers, threads_per_worker=1, processes=True, dashboard_address=None
    )
    return Client(lc)


def close(client: Client, local: bool) -> None:
    """Close the client, and the local cluster it started."""
    lc = client.cluster if local else None
    client.close()
    if lc is not None:
        lc.close()


def rows(client: Client, todo: list[tuple[Point, int]]) -> Iterator[dict[str, Any]]:
    """Submit every (point, repetition); yield each row as its task ends.
    Stopping the iteration (Ctrl-C, an error) cancels the rest."""
    futures = [
        client.submit(run_point_task, p, r, key=f"netq-{p.key(r)!r}", pure=False) for p, r in todo
    ]
    try:
        for fut in as_completed(futures):
            yield fut.result()
    finally:
        client.cancel([f for f in futures if not f.done()])
