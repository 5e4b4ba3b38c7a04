"""A study's rows: the columns, the CSV (appended row by row, flushed), and
what ``--resume`` keeps."""

from __future__ import annotations

import csv
import os
import signal
from collections.abc import Iterable
from typing import Any

PROG = "sweep"

#: what identifies a point and repetition (``--resume`` matches on these)
KEY = (
    "study",
    "cpus",
    "tx_queues",
    "xps",
    "profile",
    "strategy",
    "pfifo_fast_nolock",
    "series",
    "qdisc",
    "lock_fairness",
    "lock_wait",
    "bounce_ns",
    "duration_s",
    "clock",
    "rep",
)
#: columns kept as text in the JSON (a profile "6.18" is not a number)
TEXT = ("xps", "profile", "series", "qdisc", "lock_wait", "fault", "drops", "worker_host", "clock")
#: how the run went, and its setup
RUN = (
    "seed",
    "status",
    "invariants_ok",
    "exit_code",
    "fault",
    "elapsed_s",
    "loadavg_1m",
    "shared_cores",
    "processes",
    "host_cores",
    "lock_waiting",
    "lock_spin_ns",
    "window_s",
    "generated",
    "delivered",
    "delivered_in_window",
    "drops_total",
    "drops",
    "worker_host",
    "worker_cores",
)
#: the figures of :func:`netq.app.report.derived` and a few mechanism counters
FIGURES = (
    "pps",
    "cpu_ns_per_packet",
    "acq_bounces_per_packet",
    "contentions_per_packet",
    "completion_locality",
    "owner_ahead_per_relock",
    "owner_wait_ns_per_relock",
    "packets_per_qdisc_run",
    "busylock_taken",
    "ctx_switches_per_packet",
    "softirq_restarts_per_packet",
    "softirq_deferred_per_packet",
    "bypass",
    "requeues",
    "latency_p50_ns",
    "latency_p99_ns",
)
COLUMNS = KEY + RUN + FIGURES


class Usage(Exception):
    """Bad command line: one line, exit 2."""


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return format(v, ".6g")
    return str(v)


def _typed(s: str) -> Any:
    if s == "":
        return None
    if s in ("true", "false"):
        return s == "true"
    for conv in (int, float):
        try:
            return conv(s)
        except ValueError:
            pass
    return s


def read_rows(path: str) -> list[dict[str, str]]:
    """Complete rows of an existing CSV (a torn last line is dropped).
    Raises Usage if its columns are not this script's."""
    with open(path, newline="") as f:
        r = csv.reader(f)
        head = next(r, None)
        if head is None:
            return []
        if tuple(head) != COLUMNS:
            raise Usage(
                f"{path} has other columns than this version writes; "
                "move it away or run without --resume"
            )
        return [dict(zip(COLUMNS, row)) for row in r if len(row) == len(COLUMNS)]


def write_rows(path: str, rows: Iterable[dict[str, str]]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(COLUMNS)
        for row in rows:
            w.writerow([row[c] for c in COLUMNS])
    os.replace(tmp, path)


class RowWriter:
    """Appends a row and flushes it at once, with SIGINT/SIGTERM held off
    while it is written, so an interruption never leaves half a row."""

    def __init__(self, path: str) -> None:
        self.f = open(path, "a", newline="")  # noqa: SIM115 (kept open: one row per write, closed by close())
        self.w = csv.writer(self.f, lineterminator="\n")

    def write(self, row: dict[str, str]) -> None:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            self.w.writerow([row[c] for c in COLUMNS])
            self.f.flush()
            os.fsync(self.f.fileno())
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def close(self) -> None:
        self.f.close()
