"""The plan of one run: everything decided from a :class:`RunConfig` before
anything is created.

:func:`plan_run` turns a validated configuration into a :class:`RunPlan` of
frozen dataclasses: the devices in their order with their TX queues, the
qdisc tree (what ``attach_default_qdiscs``/``dev_activate`` would attach),
the sockets of every traffic group with their hashes, the name of every
lock in lock-id order, the lock policy, and the emulated-CPU → host-core
map.  :func:`plan_layout` computes the shared-memory layout from the plan.

Both are pure: they create no shared memory, semaphore or process and write
nothing, so a test can inspect a run without building it.  The builder,
:class:`netq.machine.net.Net`, creates the IPC objects the layout describes
and initialises them as the plan says.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from dataclasses import dataclass

from netq.kernel.core.bitmap import bitmap_parse
from netq.kernel.kstructs import (
    DEFER_NODE,
    DEFER_NODES_PER_CPU,
    FQ_FLOW,
    MAX_TX_QUEUES,
    MSG_SUPPRESSED,
    MSG_TEXT,
    NDROP,
    NETDEV,
    NETDEV_QUEUE,
    NIC,
    NIC_BLOB_BYTES,
    QDISC,
    QDISC_BANDS,
    RUNCTL,
    SOCK,
    SOFTNET,
    TCQ_F_BUILTIN,
    TCQ_F_CAN_BYPASS,
    TCQ_F_MQROOT,
    TCQ_F_NOLOCK,
    TCQ_F_ONETXQUEUE,
)
from netq.kernel.profiles import PROFILES, Profile
from netq.kernel.sched import sch_fifo, sch_mq  # noqa: F401  (register their ops)
from netq.kernel.sched.sch_fq import FQ_FLOW_RING, FQ_LIMIT
from netq.kernel.sched.sch_generic import QDISC_OPS, qdisc_static_flags
from shm.layout import WORD, Layout, Record, field
from shm.lock import LockPolicy, lock_layout
from shm.ring import ring_sections
from shm.trace import trace_layout
from shm.vtime import vtime_layout

from .config import DeviceConfig, RunConfig, TrafficConfig

#: qdisc ids of the builtins, planned first (sch_generic's noop_qdisc and
#: noqueue_qdisc: dev_deactivate points a queue at qdisc 0)
NOOP_QDISC = 0
NOQUEUE_QDISC = 1
#: root_lock, busylock, seqlock, one producer_lock per band
LOCKS_PER_QDISC = 3 + QDISC_BANDS
#: spin before sleeping when lock_wait is asked for without spin_ns
DEFAULT_SPIN_NS = 20_000
#: words of a device's row in each CPU's ``msgs``: per kernel message
#: (MSG_TEXT), a printed and a suppressed count (net_crit_ratelimited)
MSG_WORDS_PER_DEV = len(MSG_TEXT) * (MSG_SUPPRESSED + 1)


@dataclass(frozen=True)
class HostMap:
    """Where the processes of a run are pinned."""

    #: emulated CPU -> host core (``cpu_map``, or CPU i on core i mod cores)
    cpu_map: tuple[int, ...]
    #: the NIC process's core: the one after the CPUs' (mod cores)
    nic_core: int
    #: the host cores this process may run on
    cores: tuple[int, ...]

    @property
    def processes(self) -> int:
        """Emulated CPUs plus the NIC."""
        return len(self.cpu_map) + 1

    @property
    def shared_cores(self) -> bool:
        """More processes than cores: some emulated CPUs share a core."""
        return self.processes > len(self.cores)


@dataclass(frozen=True)
class QdiscPlan:
    """One struct Qdisc.  Ids are positions in :attr:`RunPlan.qdiscs`."""

    id: int
    name: str
    kind: str
    #: owning device index; -1 for the builtins
    dev: int
    #: q->dev_queue: global TX queue index; -1 for builtins and the mq root
    txq: int
    limit: int
    #: TCQ_F_* as the qdisc starts: its kind's static_flags for the profile
    #: (pfifo_fast's TCQ_F_NOLOCK from 4.16), plus what attach/init set
    flags: int
    #: "builtin", "root", or the mq class ":N" it is attached to
    parent: str
    #: rings of the qdisc: pfifo_fast's bands, pfifo's one, fq's flows; 0: none
    nrings: int
    ring_size: int
    #: index of its block of flows in the ``fq_flows`` section; -1 if not fq
    fq_index: int

    @property
    def root_lock(self) -> int:
        return LOCKS_PER_QDISC * self.id

    @property
    def busylock(self) -> int:
        return LOCKS_PER_QDISC * self.id + 1

    @property
    def seqlock(self) -> int:
        return LOCKS_PER_QDISC * self.id + 2

    @property
    def band_locks(self) -> tuple[int, ...]:
        return tuple(LOCKS_PER_QDISC * self.id + 3 + b for b in range(QDISC_BANDS))


@dataclass(frozen=True)
class TxqPlan:
    """One struct netdev_queue.  ``index`` is global over all devices."""

    index: int
    dev: int
    #: the queue's number on its device (tx-N)
    qindex: int
    #: txq->qdisc and txq->qdisc_sleeping at start
    qdisc: int
    #: the CPU its completion interrupt is affine to
    irq_cpu: int
    #: lock id of its _xmit_lock
    xmit_lock: int
    lltx: bool
    #: a physical queue has a TX ring (the NIC drains it); a virtual one none
    ring: bool
    ring_size: int
    #: the NIC wakes the stopped queue once this many descriptors are free
    wake_thresh: int
    #: the driver does BQL on it (profile 3.3+ and the device's ``bql``)
    bql: bool


@dataclass(frozen=True)
class DevicePlan:
    """One struct net_device."""

    index: int
    name: str
    kind: str
    cfg: DeviceConfig
    #: global index of its first TX queue
    txq_base: int
    tx_queues: int
    #: dev->qdisc at start: the root qdisc id (noqueue for virtual devices)
    root_qdisc: int
    #: index of the lower device of a virtual device; -1 for a physical one
    lower: int
    lltx: bool
    #: ndo_start_xmit: "eth" (physical), "vlan" or "tunnel"
    xmit: str
    #: (queue, CPU mask) pairs as xps_cpus is written at start, in queue order
    xps: tuple[tuple[int, int], ...]
    #: num_rx_queues
    rx_queues: int
    #: (queue, RX-queue mask) pairs as xps_rxqs is written at start (4.18+)
    xps_rxqs: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class SockPlan:
    """One struct sock, owned by one emulated CPU."""

    id: int
    cpu: int
    #: index of its traffic group in ``cfg.traffic``
    group: int
    proto: str
    connected: bool
    sk_hash: int
    sk_txhash: int
    #: sk_rx_queue_mapping: the RX queue it received on, or -1
    rx_queue: int


@dataclass(frozen=True)
class RunPlan:
    """Everything one run's shared state is built from (see module doc).

    ``cfg`` (and each DevicePlan's ``cfg``) is held by reference for the
    values the plan copies nothing of (traffic shapes, TC maps, costs): the
    plan is of the configuration as it was planned, so a caller must not
    change the RunConfig afterwards."""

    cfg: RunConfig
    profile: Profile
    strategy: str
    ncpus: int
    #: emulated CPUs plus the control process (supervisor, tests)
    nlockers: int
    #: hashrnd of __flow_hash_1word (per boot in the kernel, per run here)
    hashrnd: int
    host: HostMap
    lock_policy: LockPolicy
    lock_wait_reason: str
    devices: tuple[DevicePlan, ...]
    txqs: tuple[TxqPlan, ...]
    qdiscs: tuple[QdiscPlan, ...]
    socks: tuple[SockPlan, ...]
    #: lock id -> name: per qdisc LOCKS_PER_QDISC locks, then every _xmit_lock
    lock_names: tuple[str, ...]
    #: defer_list nodes each CPU allocates from (1 unless the strategy defers)
    defer_nodes_per_cpu: int
    #: fq: one flow per socket plus the orphan flow
    fq_nflows: int

    @property
    def control_cpu(self) -> int:
        """The locker id of the control process."""
        return self.ncpus

    @property
    def vt_control(self) -> int | None:
        """The virtual-clock participant of the control process (after the
        CPUs and the NIC) when it carries out events in virtual time; None
        when the run has no virtual clock or no events."""
        if self.cfg.virtual and self.cfg.events:
            return self.ncpus + 1
        return None

    #: pfifo_fast's static_flags carry TCQ_F_NOLOCK (the profile's, or the
    #: configuration's what-if ``pfifo_fast_nolock``)
    nolock: bool

    @property
    def busylock(self) -> bool:
        """Locked qdiscs take busylock when found running (2.6.36 .. 6.18).
        TCQ_F_NOLOCK qdiscs never do: their branch comes first."""
        return self.strategy == "busylock"

    @property
    def defer(self) -> bool:
        """Locked qdiscs are entered through q->defer_list (6.19)."""
        return self.strategy == "defer"

    @property
    def nsock(self) -> int:
        return len(self.socks)

    def sock_group(self, sock: SockPlan) -> TrafficConfig:
        return self.cfg.traffic[sock.group]


class VT_NIC(Record, name="vt_nic"):
    """The NIC's virtual-clock words (a virtual run only)."""

    last_finish = field("latest wire finish of any skb, virtual ns; NIC")
    slow_from = field(
        "virtual ns from which NIC.slow_ns applies to a packet's wire start "
        "(a slow_nic event's time); written before NIC.slow_ns, by the control process"
    )


# -- planning ----------------------------------------------------------------------------
def plan_run(cfg: RunConfig, cores: Sequence[int] | None = None) -> RunPlan:
    """The plan of a run of ``cfg`` (validated first: a bad value raises
    ConfigError before anything is planned).  ``cores`` are the host cores
    to pin to; default: this process's CPU affinity."""
    cfg.validate()
    cores = tuple(sorted(cores if cores is not None else os.sched_getaffinity(0)))
    profile = PROFILES[cfg.profile]
    strategy = cfg.effective_strategy
    nolock = cfg.effective_pfifo_fast_nolock
    rng = random.Random(cfg.seed)
    hashrnd = rng.getrandbits(32)  # drawn first: a seed gives the same hashes as before
    policy, why = lock_policy(cfg, len(cores))
    qdiscs, root_of, txq_qdisc = plan_qdiscs(cfg, profile, nolock)
    devices = plan_devices(cfg, root_of)
    lock_names = plan_lock_names(qdiscs, devices)
    txqs = plan_txqs(cfg, profile, devices, txq_qdisc, xmit_lock0=len(qdiscs) * LOCKS_PER_QDISC)
    socks = plan_socks(cfg, rng)
    return RunPlan(
        cfg=cfg,
        profile=profile,
        strategy=strategy,
        nolock=nolock,
        ncpus=cfg.cpus,
        nlockers=cfg.cpus + 1,
        hashrnd=hashrnd,
        host=host_map(cfg, cores),
        lock_policy=policy,
        lock_wait_reason=why,
        devices=devices,
        txqs=txqs,
        qdiscs=qdiscs,
        socks=socks,
        lock_names=lock_names,
        defer_nodes_per_cpu=DEFER_NODES_PER_CPU if strategy == "defer" else 1,
        fq_nflows=max(len(socks), 1) + 1,
    )


def what_if_reasons(cfg: RunConfig) -> list[str]:
    """Why a configuration is one no kernel has (empty: some kernel has it).

    pfifo_fast's TCQ_F_NOLOCK other than the profile's (4.16 made it so in
    every kernel after); busylock under 6.19 or defer before it (6.19 has
    the defer_list and no busylock, commit 100dfa74cad9); rootlock after
    2.6.35 (busylock came in 2.6.36, so no profile netq has runs rootlock)."""
    profile = PROFILES[cfg.profile]
    out = []
    nolock = cfg.effective_pfifo_fast_nolock
    if nolock != profile.pfifo_fast_nolock:
        out.append(f"pfifo_fast {'NOLOCK' if nolock else 'locked'} under {profile.name}")
    strategy = cfg.effective_strategy
    if strategy != profile.strategy:
        out.append(f"{strategy} under {profile.name} (which has {profile.strategy})")
    return out


def host_map(cfg: RunConfig, cores: Sequence[int]) -> HostMap:
    """Emulated CPU i on host core i mod cores (or ``cpu_map``); the NIC on
    the next core after the CPUs'."""
    cmap = (
        tuple(cfg.cpu_map) if cfg.cpu_map else tuple(cores[i % len(cores)] for i in range(cfg.cpus))
    )
    return HostMap(cmap, cores[cfg.cpus % len(cores)], tuple(cores))


def lock_policy(cfg: RunConfig, host_cores: int) -> tuple[LockPolicy, str]:
    """How every lock waits, and why (the default depends on whether the
    CPUs and the control process outnumber the host cores)."""
    nlockers = cfg.cpus + 1
    if cfg.lock_wait is None:
        waiting, spin_ns, why = LockPolicy.default_waiting(nlockers, host_cores)
    else:
        waiting, spin_ns, why = cfg.lock_wait, DEFAULT_SPIN_NS, "asked for"
    if cfg.spin_ns is not None:
        spin_ns = cfg.spin_ns
    if cfg.virtual:
        # the virtual clock prices waits and bounces itself: a waiter sleeps
        # (its spinning would cost the host, not the emulated machine) and
        # no bounce is busy-waited
        waiting, spin_ns, why = "block", 0, "virtual clock: a wait is priced, not spent"
    policy = LockPolicy(
        cfg.lock_fairness,
        waiting,
        spin_ns,
        yield_spin=nlockers > host_cores,
        bounce_ns=0 if cfg.virtual else cfg.costs.bounce_ns,
        remote_ns=0 if cfg.virtual else cfg.costs.remote_ns,
        numa_node=tuple(cfg.numa_node(c) for c in range(nlockers)),
    )
    return policy, why


def txq_bases(cfg: RunConfig) -> list[int]:
    """Global index of each device's first TX queue (devices in order)."""
    out, n = [], 0
    for d in cfg.devices:
        out.append(n)
        n += d.tx_queues
    return out


def ring_size_for(limit: int) -> int:
    """The smallest power of two that holds ``limit`` skbs."""
    n = 1
    while n < limit:
        n <<= 1
    return n


def plan_qdiscs(
    cfg: RunConfig, profile: Profile, nolock: bool
) -> tuple[tuple[QdiscPlan, ...], list[int], list[int]]:
    """The qdisc tree, as attach_default_qdiscs() and dev_activate() build
    it, or as the device's ``qdisc`` asks: noop and noqueue first, then per
    physical device an mq root with a pfifo_fast per queue (the default on a
    multi-queue device), or one root qdisc that every queue shares.

    Returns the qdiscs, each device's root qdisc id, and each global TX
    queue's qdisc id.  Each qdisc starts with its kind's static_flags
    (:func:`qdisc_static_flags`: with ``nolock``, as from 4.16, pfifo_fast's
    include TCQ_F_NOLOCK, whatever the strategy), plus TCQ_F_ONETXQUEUE
    where attach_one_default_qdisc or mq_init set it.  A NOLOCK pfifo_fast
    loses TCQ_F_CAN_BYPASS under profiles before the nolock bypass (5.14):
    4.19's NOLOCK branch never tests it, netq's tests the flag.  A host may
    be mixed, as the kernel's is: NOLOCK mq children beside an fq root, or
    pfifo_fast on one device beside fq on another."""
    base = txq_bases(cfg)
    rows: list[tuple] = [
        ("noop", "noop", -1, -1, 0, TCQ_F_BUILTIN, "builtin"),
        ("noqueue", "noqueue", -1, -1, 0, TCQ_F_BUILTIN, "builtin"),
    ]
    root_of: list[int] = []
    txq_qdisc = [NOQUEUE_QDISC] * sum(d.tx_queues for d in cfg.devices)
    for i, d in enumerate(cfg.devices):
        kind = d.qdisc
        if d.is_virtual or kind == "noqueue":
            root_of.append(NOQUEUE_QDISC)
            continue
        if kind == "default":
            kind = "mq" if d.tx_queues > 1 else "pfifo_fast"
        root_of.append(len(rows))
        if kind == "mq":
            rows.append((f"{d.name} mq", "mq", i, -1, 0, TCQ_F_MQROOT, "root"))
            for k in range(d.tx_queues):
                txq_qdisc[base[i] + k] = len(rows)
                rows.append(
                    (
                        f"{d.name}:tx-{k} pfifo_fast",
                        "pfifo_fast",
                        i,
                        base[i] + k,
                        d.tx_queue_len,
                        qdisc_static_flags(QDISC_OPS["pfifo_fast"], nolock) | TCQ_F_ONETXQUEUE,
                        f":{k + 1:x}",
                    )
                )
        else:
            flags = qdisc_static_flags(QDISC_OPS[kind], nolock)
            if d.tx_queues == 1:
                flags |= TCQ_F_ONETXQUEUE
            for k in range(d.tx_queues):
                txq_qdisc[base[i] + k] = len(rows)
            limit = FQ_LIMIT if kind == "fq" else d.tx_queue_len
            rows.append((f"{d.name} {kind}", kind, i, base[i], limit, flags, "root"))
    nflows = max(_nsock(cfg), 1) + 1
    out, nfq = [], 0
    for qid, (name, kind, dev, txq, limit, flags, parent) in enumerate(rows):
        if flags & TCQ_F_NOLOCK and not profile.nolock_bypass:
            flags &= ~TCQ_F_CAN_BYPASS
        nrings, ring_size, fq_index = 0, 0, -1
        if kind in ("pfifo_fast", "pfifo"):
            nrings = QDISC_BANDS if kind == "pfifo_fast" else 1
            ring_size = ring_size_for(limit)
        elif kind == "fq":
            nrings, ring_size, fq_index = nflows, FQ_FLOW_RING, nfq
            nfq += 1
        out.append(
            QdiscPlan(qid, name, kind, dev, txq, limit, flags, parent, nrings, ring_size, fq_index)
        )
    return tuple(out), root_of, txq_qdisc


def plan_devices(cfg: RunConfig, root_of: list[int]) -> tuple[DevicePlan, ...]:
    """Devices in declaration order, with their queues' place, root qdisc,
    lower device, LLTX (default: vlan only) and XPS masks."""
    index = {d.name: i for i, d in enumerate(cfg.devices)}
    base = txq_bases(cfg)
    out = []
    for i, d in enumerate(cfg.devices):
        lltx = d.lltx if d.lltx is not None else d.kind == "vlan"
        xmit = "eth" if d.kind == "phys" else d.kind
        xps = tuple((q, bitmap_parse(d.xps[q], cfg.cpus)) for q in sorted(d.xps))
        nrx = d.rx_queues if d.rx_queues is not None else d.tx_queues
        rxqs = tuple((q, bitmap_parse(d.xps_rxqs[q], nrx)) for q in sorted(d.xps_rxqs))
        out.append(
            DevicePlan(
                i,
                d.name,
                d.kind,
                d,
                base[i],
                d.tx_queues,
                root_of[i],
                index[d.lower] if d.lower is not None else -1,
                lltx,
                xmit,
                xps,
                nrx,
                rxqs,
            )
        )
    return tuple(out)


def plan_txqs(
    cfg: RunConfig,
    profile: Profile,
    devices: Sequence[DevicePlan],
    txq_qdisc: list[int],
    xmit_lock0: int,
) -> tuple[TxqPlan, ...]:
    """Every TX queue of every device, in global order.  The completion
    interrupt of queue k goes to ``irq_cpus[k]`` (default: CPU k mod cpus);
    the wake threshold defaults to a quarter ring (TG3_TX_WAKEUP_THRESH)."""
    out = []
    for dp in devices:
        d = dp.cfg
        for k in range(d.tx_queues):
            g = dp.txq_base + k
            phys = not d.is_virtual
            out.append(
                TxqPlan(
                    index=g,
                    dev=dp.index,
                    qindex=k,
                    qdisc=txq_qdisc[g],
                    irq_cpu=d.irq_cpus[k] if d.irq_cpus else k % cfg.cpus,
                    xmit_lock=xmit_lock0 + g,
                    lltx=dp.lltx,
                    ring=phys,
                    ring_size=d.ring_size if phys else 0,
                    wake_thresh=(d.wake_thresh or max(1, d.ring_size // 4)) if phys else 0,
                    bql=phys and profile.bql and d.bql,
                )
            )
    return tuple(out)


def _nsock(cfg: RunConfig) -> int:
    return sum(len(_group_cpus(cfg, t)) * t.sockets_per_cpu for t in cfg.traffic)


def _group_cpus(cfg: RunConfig, t: TrafficConfig) -> Sequence[int]:
    return t.cpus if t.cpus is not None else range(cfg.cpus)


def plan_socks(cfg: RunConfig, rng: random.Random) -> tuple[SockPlan, ...]:
    """``sockets_per_cpu`` sockets per CPU of each traffic group, in group
    then CPU order; sk_hash and sk_txhash random and non-zero (from ``rng``,
    which the run's seed makes reproducible)."""
    out: list[SockPlan] = []
    for g, t in enumerate(cfg.traffic):
        for c in _group_cpus(cfg, t):
            for _ in range(t.sockets_per_cpu):
                out.append(
                    SockPlan(
                        len(out),
                        c,
                        g,
                        t.proto,
                        t.connected,
                        rng.getrandbits(32) or 1,
                        rng.getrandbits(32) or 1,
                        t.sk_rx_queue,
                    )
                )
    return tuple(out)


def plan_lock_names(qdiscs: Sequence[QdiscPlan], devices: Sequence[DevicePlan]) -> tuple[str, ...]:
    """Lock names in lock-id order (what /proc/lock_stat would call them)."""
    names = []
    for q in qdiscs:
        names += [f"{q.name} root_lock", f"{q.name} busylock", f"{q.name} seqlock"]
        names += [f"{q.name} band{b} producer_lock" for b in range(QDISC_BANDS)]
    for d in devices:
        names += [f"{d.name}:tx-{k} _xmit_lock" for k in range(d.tx_queues)]
    return tuple(names)


# -- the shared layout -------------------------------------------------------------------
def plan_layout(plan: RunPlan) -> Layout:
    """The shared-memory layout of the run: every record array, raw array,
    lock section and ring, sized from the plan.  Pure (offsets only)."""
    ncpus, nlockers = plan.ncpus, plan.nlockers
    ndev = len(plan.devices)
    lay = Layout()
    lay.add("runctl", RUNCTL, 1)
    lay.add("softnet", SOFTNET, ncpus)
    lay.add_raw("drops", (nlockers, NDROP))
    lay.add_raw("msgs", (nlockers, ndev * MSG_WORDS_PER_DEV))
    lay.add_raw("output_queue", (ncpus, len(plan.qdiscs)))
    lay.add("netdev", NETDEV, ndev)
    lay.add("netdev_queue", NETDEV_QUEUE, len(plan.txqs))
    lay.add("qdisc", QDISC, len(plan.qdiscs))
    lay.add_raw("xps", (ndev, ncpus, 1 + MAX_TX_QUEUES))
    nrxq = max((d.rx_queues for d in plan.devices), default=1)
    lay.add_raw("xps_rxqs", (ndev, nrxq, 1 + MAX_TX_QUEUES))
    lay.add("sock", SOCK, max(plan.nsock, 1))
    lay.add("nic", NIC, 1)
    lay.add_raw("nic_by_cpu", (ncpus,))
    lay.add_raw("nic_blob", (NIC_BLOB_BYTES // WORD,))
    if plan.cfg.traced:
        # every locker (the CPUs and the control process), then the NIC
        trace_layout(lay, plan.nlockers + 1, plan.cfg.trace_events)
    lay.add("defer_nodes", DEFER_NODE, ncpus * plan.defer_nodes_per_cpu)
    lock_layout(lay, len(plan.lock_names), nlockers)
    if plan.cfg.virtual:
        # a clock per emulated CPU, one for the NIC (after the CPUs) and one
        # for the control process when it has events to carry out, and the
        # NIC's count of skbs on the wire within the window, per CPU and per
        # TX queue
        parts = plan.ncpus + 1 + (plan.vt_control is not None)
        vtime_layout(lay, parts, len(plan.lock_names))
        # each CPU's softnet counters as they were when its clock passed the
        # window's end: the mechanism figures, without the drain after it
        lay.add("softnet_at_stop", SOFTNET, plan.ncpus)
        lay.add_raw("vt_window", (plan.ncpus + len(plan.txqs),))
        lay.add("vt_nic", VT_NIC, 1)
    for d in plan.devices:
        if d.xmit == "eth":
            ring_sections(lay, f"txring{d.index}", d.tx_queues, d.cfg.ring_size)
            if plan.cfg.virtual:
                # each slot's post time (virtual ns), written by the driver
                # with the descriptor: the NIC starts a frame no earlier
                lay.add_raw(f"txring{d.index}_vpost", (d.tx_queues, d.cfg.ring_size))
    for q in plan.qdiscs:
        if q.nrings:
            ring_sections(lay, f"qband{q.id}", q.nrings, q.ring_size)
    nfq = sum(1 for q in plan.qdiscs if q.kind == "fq")
    lay.add("fq_flows", FQ_FLOW, max(nfq * plan.fq_nflows, 1))
    return lay
