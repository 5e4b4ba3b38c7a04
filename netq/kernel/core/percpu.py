"""This CPU: what the kernel reaches through smp_processor_id() and this_cpu_ptr().

Every emulated CPU is one process, so "the current CPU" is process state: the
module-level :data:`this` is bound once by the worker (:meth:`netq.machine.net.Net.
bind_cpu`).  Single-process tests may rebind it to act as several CPUs in turn.
The hot path reads ``this.cpu``, ``this.sd`` (this CPU's softnet_data words),
``this.drops`` and ``this.locks`` (lock handles acting as this CPU).
"""
from __future__ import annotations


class PerCpu:
    __slots__ = ("cpu", "net", "sd", "drops", "msgs", "locks", "ratelimit")

    def __init__(self) -> None:
        self.cpu = -1
        self.net = None
        self.sd = None
        self.drops = None
        self.msgs = None
        self.locks = None
        self.ratelimit = None


#: the CPU this process is acting as
this = PerCpu()


def smp_processor_id() -> int:
    return this.cpu
