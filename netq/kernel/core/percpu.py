"""This CPU: what the kernel reaches through smp_processor_id() and this_cpu_ptr().

Every emulated CPU is one process, so "the current CPU" is process state: the
module-level :data:`this` is bound once by the worker (:meth:`netq.machine.net.Net.
bind_cpu`).  Single-process tests may rebind it to act as several CPUs in turn.
The hot path reads ``this.cpu``, ``this.sd`` (this CPU's softnet_data words),
``this.drops`` and ``this.locks`` (lock handles acting as this CPU).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..stddef import NULL

if TYPE_CHECKING:
    from shm.lock import SpinLock
    from shm.trace import Tracer
    from shm.vtime import VirtualCpu

    from ..net_namespace import Net, Words


class PerCpu:
    """The per-CPU variables of the CPU this process acts as.

    Until :meth:`Net.bind_cpu` runs, ``net`` and the views are NULL
    (:mod:`netq.kernel.stddef`); the annotations state the bound types, which
    is all the kernel model ever sees (it runs only on a bound CPU).
    """

    __slots__ = (
        "cpu",
        "drops",
        "locks",
        "msgs",
        "net",
        "ratelimit",
        "sd",
        "to_free",
        "trace",
        "vt",
        "xmit_more",
    )

    cpu: int
    #: the run's shared state
    net: Net
    #: this CPU's softnet_data words (SOFTNET indices)
    sd: Words
    #: this CPU's drop counters by reason (kstructs.DROP indices)
    drops: memoryview
    #: this CPU's kernel-message counters (MSG_* per device)
    msgs: memoryview
    #: lock handles acting as this CPU, by lock id
    locks: list[SpinLock]
    #: net_crit_ratelimited state: [window start ns, messages in window]
    ratelimit: list[int]
    #: this process's event log when the run is traced, else None
    #: (netq.kernel.tracepoints)
    trace: Tracer | None
    #: this process's virtual clock when the run keeps virtual time, else
    #: None (docs/virtual-time.md)
    vt: VirtualCpu | None
    #: netdev_xmit_more(): more skbs of a bulk-dequeued list follow the one
    #: being handed to the driver, which may then skip its doorbell
    #: (softnet_data.xmit.more since 5.2, skb->xmit_more from 3.18)
    xmit_more: bool
    #: ns of kfree_skb work a locked qdisc's enqueue left on its to_free
    #: list (4.8+), charged once __dev_xmit_skb has released the root lock
    to_free: int

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Unbind: no CPU, no run (a closed run's views must not outlive it)."""
        self.cpu = -1
        self.net = self.sd = self.drops = self.msgs = self.locks = self.ratelimit = NULL
        self.trace = None
        self.vt = None
        self.xmit_more = False
        self.to_free = 0


#: the CPU this process is acting as
this = PerCpu()


def smp_processor_id() -> int:
    return this.cpu
