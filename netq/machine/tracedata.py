"""A traced run's events, taken out of shared memory before it is unmapped.

The supervisor collects one :class:`TraceData` per traced run
(:func:`collect`): every participant's events as recorded
(:mod:`shm.trace`: ``(timestamp ns, kind, a, b)`` rows, kinds from
:mod:`netq.kernel.tracepoints`), how many each dropped, and the names that
make the numbers readable (locks, qdiscs, TX queues, which CPU owns each
socket), with the measured window.  The applications turn it into a
Perfetto trace and a timeline picture.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from netq.kernel.kstructs import RUNCTL
from shm.trace import read_events

from .net import Net


@dataclass
class TraceData:
    #: "wall": CLOCK_MONOTONIC ns of the host
    clock: str
    #: participant names, in log order: the CPUs, the control process, the NIC
    participants: list[str]
    #: per participant, its events: int64 rows of (ts, kind, a, b)
    events: list[np.ndarray]
    #: per participant, events that found its log full
    dropped: list[int]
    #: lock id -> name (lock_stat's class name)
    locks: list[str]
    #: qdisc id -> name
    qdiscs: list[str]
    #: global TX queue index -> "DEV:tx-N"
    txqs: list[str]
    #: socket id -> the CPU that owns it
    sock_cpu: list[int]
    #: the measured window, in the events' clock
    t_go: int
    t_stop: int

    @property
    def ncpus(self) -> int:
        return len(self.participants) - 2

    @property
    def total_dropped(self) -> int:
        return sum(self.dropped)


def collect(net: Net) -> TraceData:
    """Copy a traced run's logs and names out of ``net``'s shared memory."""
    logs = read_events(net.region)
    names = [f"cpu{c}" for c in range(net.ncpus)] + ["control", "nic"]
    return TraceData(
        clock="wall",
        participants=names,
        events=[ev for ev, _ in logs],
        dropped=[d for _, d in logs],
        locks=list(net.locks.names),
        qdiscs=[f"{q.name} {q.ops.id}" for q in net.qdiscs],
        txqs=[f"{t.dev.name}:tx-{t.dev.txqs.index(t)}" for t in net.txqs],
        sock_cpu=[sk.cpu for sk in net.socks],
        t_go=int(net.runctl[RUNCTL.t_go]),
        t_stop=int(net.runctl[RUNCTL.t_stop]),
    )
