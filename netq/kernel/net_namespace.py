"""What the kernel model reaches through ``struct net`` and friends.

In Linux, transmit-path code finds the global state it needs through the
device's network namespace (``dev_net(dev)``, include/net/net_namespace.h)
and through per-CPU variables.  netq keeps that state in one object built by
the machine floor (:class:`netq.machine.net.Net`) and reaches it through
``this.net`` (:mod:`netq.kernel.core.percpu`).  The kernel model must not
import the machine floor, so :class:`Net` here states, as a structural
:class:`~typing.Protocol`, exactly the attributes the kernel model uses; the
machine's ``Net`` satisfies it without naming it.

Only the type checker reads this module's imports of kernel classes (they sit
under ``TYPE_CHECKING``): at run time it imports nothing from the kernel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import posix_ipc

    from shm.atomic import Atomics
    from shm.lock import LockPolicy
    from shm.region import Region

    from .core.netdevice import NetdevQueue
    from .core.sock import Sock
    from .profiles import Profile
    from .sched.sch_generic import Qdisc


class Words(Protocol):
    """A record's int64 words, indexed by field (``sd[SOFTNET.generated]``):
    a ``memoryview`` cast to ``'q'`` over shared memory, or a plain list for
    a CPU without a shared row (the control process's softnet_data)."""

    def __getitem__(self, i: int, /) -> int: ...

    def __setitem__(self, i: int, v: int, /) -> None: ...


class Costs(Protocol):
    """Emulated per-operation costs in ns (the machine's ``CostConfig``)."""

    @property
    def enqueue_ns(self) -> int: ...

    @property
    def dequeue_ns(self) -> int: ...

    @property
    def xmit_ns(self) -> int: ...

    @property
    def doorbell_ns(self) -> int: ...

    @property
    def free_ns(self) -> int: ...

    @property
    def pick_tx_ns(self) -> int: ...

    @property
    def softirq_ns(self) -> int: ...

    @property
    def atomic_ns(self) -> int: ...


class Sysctls(Protocol):
    """The net.core sysctls the kernel model reads (the machine's RunConfig
    carries them; read-only here)."""

    @property
    def qdisc_max_burst(self) -> int:
        """net.core.qdisc_max_burst (6.19, ``net_hotdata.qdisc_max_burst``):
        most skbs a q->defer_list may hold (default 1000)."""
        ...

    @property
    def txq_reselection_ms(self) -> int:
        """net.core.txq_reselection_ms (6.19, ``net->core.sysctl_txq_reselection``):
        age after which sk_tx_queue_get forgets a cached queue (default
        1000; 0: never)."""
        ...


class Net(Protocol):
    """The shared state of one run, as the kernel model sees it.

    Each attribute names its kernel counterpart where there is one; the
    shared-memory words carry their locks in :mod:`netq.kernel.kstructs`.
    """

    #: which kernel is emulated (version-dependent behaviour)
    profile: Profile

    @property
    def costs(self) -> Costs:
        """Emulated per-operation costs (read-only here, so that any object
        with the three fields satisfies it)."""
        ...

    @property
    def cfg(self) -> Sysctls:
        """The run's net.core sysctls."""
        ...

    #: lock fairness/waiting and the cost of a cache-line bounce
    lock_policy: LockPolicy
    #: the shared-memory segment (byte access for descriptors)
    region: Region
    #: atomic RMW on the region's words (set_bit, cmpxchg, ...)
    atomics: Atomics
    #: emulated CPUs (the control process, if any, is CPU ``ncpus``)
    ncpus: int
    #: strategy switches: busylock taken before root_lock; 6.19 defer_list
    busylock: bool
    defer: bool
    #: every Qdisc, by id (the kernel's pointers)
    qdiscs: list[Qdisc]
    #: every TX queue (struct netdev_queue), by global index
    txqs: list[NetdevQueue]
    #: every socket, by id
    socks: list[Sock]
    #: per CPU: softnet_data words (SOFTNET indices)
    softnet: list[memoryview]
    #: per CPU: word index of its softnet_data in the region (for atomics)
    softnet_base: list[int]
    #: per CPU: the semaphore emulating local_irq_save of softnet_data
    softnet_sems: list[posix_ipc.Semaphore]
    #: per CPU: softnet_data.output_queue, qdisc ids (oq_head/oq_tail index it)
    output_queue: list[memoryview]
    #: per CPU: woken by sock_def_write_space when a full socket drains
    cpu_wake: list[posix_ipc.Semaphore]
    #: the NIC's doorbell (an idle NIC sleeps on it; eth_start_xmit rings it)
    nic_doorbell: posix_ipc.Semaphore
    #: xps_cpus maps: ``xps[dev][cpu]`` is that CPU's queue bitmap words
    xps: list[list[memoryview]]
    #: xps_rxqs maps (4.18+): ``xps_rxqs[dev][rx queue]``, the same shape
    xps_rxqs: list[list[memoryview]]
    #: flow_dissector: the per-boot hashrnd of __flow_hash_from_keys
    hashrnd: int
    #: flow hash per socket id (skb_get_hash's cache of sk_txhash)
    flow_hash_cache: dict[int, int]
    #: run control words (RUNCTL indices)
    runctl: memoryview
    #: 6.19 defer_list: the node pool as words, its byte offset in the
    #: region, nodes per CPU, and this CPU's next-node cursor (process-local)
    defer_nodes: memoryview
    defer_off: int
    defer_nodes_per_cpu: int
    defer_cursor: int
