"""The emulated machine: every shared structure of one run, built from its
:class:`~netq.machine.plan.RunPlan`.

:class:`Net` is built once by the supervisor (or a test) before any worker is
forked.  The plan (:func:`~netq.machine.plan.plan_run`, pure) says what
exists; the builder here creates the segment the plan's layout describes,
the locks, the atomics and the per-CPU semaphores through an
:class:`~shm.ipc.IpcOwner`, initialises every shared field (what
``register_netdevice``, ``attach_default_qdiscs``/``dev_activate`` and the
sysfs XPS stores would have done), and wraps each structure in a
process-local handle.  Forked workers inherit it and call :meth:`bind_cpu`.
"""

from __future__ import annotations

import dataclasses
import time

from netq.kernel.core.dql import dql_init
from netq.kernel.core.netdevice import NetDevice, NetDeviceOps, NetdevQueue
from netq.kernel.core.percpu import this
from netq.kernel.core.sock import Sock
from netq.kernel.core.xps import netif_set_xps_queue
from netq.kernel.costs import ERAS, HardwareCosts
from netq.kernel.drivers.ethernet import eth_start_xmit
from netq.kernel.drivers.virtual import (
    ip_tunnel_xmit,
    select_queue_by_priority,
    vlan_dev_hard_start_xmit,
)
from netq.kernel.kstructs import (
    IFF_UP,
    MAX_TX_QUEUES,
    NDROP,
    NETDEV,
    NETDEV_QUEUE,
    NETIF_F_LLTX,
    QDISC,
    RUNCTL,
    SOCK,
    SOFTNET,
)
from netq.kernel.profiles import Profile
from netq.kernel.sched.sch_fq import fq_init
from netq.kernel.sched.sch_generic import QDISC_OPS, Qdisc
from shm.atomic import Atomics
from shm.ipc import IpcOwner
from shm.layout import WORD
from shm.lock import LockSpace, SpinLock
from shm.region import Region
from shm.ring import Ring
from shm.trace import Tracer, trace_lock
from shm.vtime import VCLOCK, VT_DONE, VirtualCpu, init_vtime, virtual_lock

from .config import CostConfig, RunConfig, TrafficConfig
from .plan import (
    LOCKS_PER_QDISC,
    MSG_WORDS_PER_DEV,
    NOOP_QDISC,
    NOQUEUE_QDISC,
    DevicePlan,
    RunPlan,
    plan_layout,
    plan_run,
)

__all__ = ["LOCKS_PER_QDISC", "NOOP_QDISC", "NOQUEUE_QDISC", "Net"]

#: ndo_start_xmit of each DevicePlan.xmit
_XMIT = {"eth": eth_start_xmit, "vlan": vlan_dev_hard_start_xmit, "tunnel": ip_tunnel_xmit}
#: the attributes :meth:`Net.close` keeps: plain data, no view of the segment
_KEEP_ON_CLOSE = (
    "cfg",
    "owner",
    "plan",
    "profile",
    "strategy",
    "lock_policy",
    "lock_wait_reason",
    "layout",
    "region",
    "ncpus",
    "control_cpu",
    "nsock",
)


class Net:
    """Everything one run shares, and the handles to it.

    ``plan`` defaults to :func:`plan_run` of ``cfg``; a caller that already
    planned (the supervisor, for the host map) passes its plan, which must be
    of the same ``cfg``.
    """

    def __init__(self, cfg: RunConfig, owner: IpcOwner, plan: RunPlan | None = None) -> None:
        if plan is None:
            plan = plan_run(cfg)
        elif plan.cfg is not cfg:
            raise ValueError("plan: made from another RunConfig than cfg")
        self.owner = owner
        self._take_plan(plan)
        self._create_ipc(owner)
        self._map_per_cpu()
        self._build_devices()
        self._build_qdiscs()
        self._store_xps()
        self._build_socks()
        self._bound: dict[int, list] = {}
        #: this process's virtual clocks, by participant (a virtual run)
        self._vcpus: dict[int, VirtualCpu] = {}
        #: this process's trace logs, by participant (a traced run)
        self._tracers: dict[int, Tracer] = {}
        #: net_ratelimit() state per CPU (see dev.net_ratelimit)
        self._ratelimit: dict[int, list[int]] = {}

    # -- building, in order ----------------------------------------------------------
    def _take_plan(self, plan: RunPlan) -> None:
        """The plan's facts, as the kernel model reads them from ``this.net``."""
        self.plan = plan
        self.cfg = plan.cfg
        self.profile = plan.profile
        self.strategy = plan.strategy
        self.busylock = plan.busylock
        self.nolock = plan.nolock
        self.defer = plan.defer
        #: the kernel model's operation costs: the wall clock's emulated
        #: busy-waits (CostConfig), or the virtual clock's price list (the
        #: profile's era, with [costs] overrides)
        self.costs: CostConfig | HardwareCosts = (
            virtual_costs(plan.cfg, plan.profile) if plan.cfg.virtual else plan.cfg.costs
        )
        self.ncpus = plan.ncpus
        self.control_cpu = plan.control_cpu
        self.hashrnd = plan.hashrnd
        self.flow_hash_cache: dict[int, int] = {}
        self.lock_policy = plan.lock_policy
        self.lock_wait_reason = plan.lock_wait_reason
        self.nsock = plan.nsock
        self.fq_nflows = plan.fq_nflows
        self.defer_nodes_per_cpu = plan.defer_nodes_per_cpu
        self.qdisc_parent = [q.parent for q in plan.qdiscs]
        self.layout = plan_layout(plan)

    def _create_ipc(self, owner: IpcOwner) -> None:
        """The segment, its atomics, the locks and the per-CPU semaphores."""
        plan = self.plan
        self.region = region = Region(owner, "net", self.layout)
        self.words = region.words
        self.atomics = Atomics(owner, region)
        self.softnet_sems = [owner.semaphore(f"softnet{c}", 1) for c in range(plan.ncpus)]
        #: what a CPU sleeping for send-buffer space waits on (its task's wait
        #: queue): posted by sock_def_write_space and by a raised softirq
        self.cpu_wake = [owner.semaphore(f"wake{c}", 0) for c in range(plan.ncpus)]
        #: the NIC's doorbell: an idle NIC sleeps on it; a driver that finds
        #: its TX ring's RING.wake set after posting a descriptor rings it
        #: (eth_start_xmit), and the supervisor rings it on phase changes
        self.nic_doorbell = owner.semaphore("nic_doorbell", 0)
        self.runctl = rc = region.section_words("runctl")
        if "vclocks" in self.layout.sections:
            # a qdisc's root lock shares its cache line with the qlen its
            # enqueues and dequeues write (struct Qdisc's q: the lock beside
            # head, tail and qlen, in every profile); busylock sits on a line
            # of its own (____cacheline_aligned_in_smp, 79640a4ca695)
            init_vtime(region, {p.root_lock: 1 for p in plan.qdiscs if p.root_lock >= 0})
            #: virtual run: skbs whose wire finish is within the window, per
            #: CPU then per TX queue (written by the NIC)
            self.vt_window = region.span_words("vt_window")
            #: the NIC's virtual-clock words (VT_NIC)
            self.vt_nic = region.section_words("vt_nic")
            if plan.vt_control is not None:
                # the control process holds GVT back only while an event is
                # due (the supervisor sets its clock before the start gate)
                region.section_words("vclocks", plan.vt_control)[VCLOCK.state] = VT_DONE
        self.locks = LockSpace(
            owner,
            region,
            list(plan.lock_names),
            plan.nlockers,
            plan.lock_policy,
            abort=lambda: rc[RUNCTL.abort] != 0,
        )

    def _map_per_cpu(self) -> None:
        """Handles to the per-CPU and per-locker arrays and the NIC's record."""
        region, lay = self.region, self.layout
        ncpus, nlockers = self.ncpus, self.plan.nlockers
        self.softnet = [region.section_words("softnet", c) for c in range(ncpus)]
        self.softnet_base = [lay["softnet"].base(c) for c in range(ncpus)]
        #: virtual clock: each CPU's softnet counters when it stopped sending
        self.softnet_at_stop = (
            [region.section_words("softnet_at_stop", c) for c in range(ncpus)]
            if "softnet_at_stop" in lay.sections
            else None
        )
        drops = region.span_words("drops")
        self.drops = [drops[c * NDROP : (c + 1) * NDROP] for c in range(nlockers)]
        msgs = region.span_words("msgs")
        w = len(self.plan.devices) * MSG_WORDS_PER_DEV
        self.msgs = [msgs[c * w : (c + 1) * w] for c in range(nlockers)]
        nq = len(self.plan.qdiscs)
        oq = region.span_words("output_queue")
        self.output_queue = [oq[c * nq : (c + 1) * nq] for c in range(ncpus)]
        self.nic = region.section_words("nic")
        self.nic_by_cpu = region.span_words("nic_by_cpu")
        #: the node pool as one int64 view (DEFER_NODE.words per node)
        self.defer_nodes = region.span_words("defer_nodes")
        self.defer_off = lay["defer_nodes"].offset * WORD
        self.defer_cursor = 0
        #: byte offset of the NIC's latency blob (written by the NIC at exit)
        self.nic_blob_off = lay["nic_blob"].offset * WORD

    def _build_devices(self) -> None:
        """register_netdevice for every device and its TX queues."""
        self.devices: list[NetDevice] = [self._build_device(dp) for dp in self.plan.devices]
        self.txqs: list[NetdevQueue] = []
        for dev in self.devices:
            self.txqs += dev.txqs
        for dp, dev in zip(self.plan.devices, self.devices):
            if dp.lower >= 0:
                dev.lower = self.devices[dp.lower]
        self.dev_by_name = {d.name: d for d in self.devices}

    def _build_device(self, dp: DevicePlan) -> NetDevice:
        region, sec = self.region, self.layout["netdev"]
        d = dp.cfg
        dev = NetDevice(
            dp.index,
            dp.name,
            dp.kind,
            region.section_words("netdev", dp.index),
            sec.base(dp.index),
            d,
        )
        dev.num_rx_queues = dp.rx_queues
        dev.xps_rxqs_needed = bool(dp.xps_rxqs)
        f = dev.f
        f[NETDEV.flags] = IFF_UP
        f[NETDEV.features] = NETIF_F_LLTX if dp.lltx else 0
        f[NETDEV.num_tx_queues] = d.tx_queues
        f[NETDEV.real_num_tx_queues] = d.real_queues
        f[NETDEV.qdisc] = dp.root_qdisc
        f[NETDEV.num_tc] = d.num_tc
        for tc, (count, offset) in enumerate(d.tc_to_txq):
            f[NETDEV.tc_count + tc] = count
            f[NETDEV.tc_offset + tc] = offset
        for prio, tc in enumerate(d.prio_tc_map):
            f[NETDEV.prio_tc_map + prio] = tc
        select = (
            select_queue_by_priority if dp.xmit == "eth" and d.select_queue == "priority" else None
        )
        dev.netdev_ops = NetDeviceOps(_XMIT[dp.xmit], select)
        qsec = self.layout["netdev_queue"]
        now = time.perf_counter_ns()
        for tp in self.plan.txqs[dp.txq_base : dp.txq_base + dp.tx_queues]:
            g = tp.index
            txq = NetdevQueue(
                g,
                tp.qindex,
                dev,
                region.section_words("netdev_queue", g),
                qsec.base(g),
                tp.xmit_lock,
            )
            tf = txq.f
            tf[NETDEV_QUEUE.xmit_lock_owner] = -1
            tf[NETDEV_QUEUE.qdisc] = tp.qdisc
            tf[NETDEV_QUEUE.qdisc_sleeping] = tp.qdisc
            tf[NETDEV_QUEUE.irq_cpu] = tp.irq_cpu
            txq.lltx = tp.lltx
            if tp.ring:
                txq.ring = Ring(region, f"txring{dp.index}", tp.qindex)
                if self.cfg.virtual:
                    txq.vpost = region.array(f"txring{dp.index}_vpost")[tp.qindex]
                txq.wake_thresh = tp.wake_thresh
                txq.bql = tp.bql
                if tp.bql:
                    dql_init(tf, now)
            dev.txqs.append(txq)
        return dev

    def _build_qdiscs(self) -> None:
        """The qdisc tree of the plan: records, band rings, fq flows, and
        each mq root's children."""
        region, sec = self.region, self.layout["qdisc"]
        kinds = list(QDISC_OPS)
        self.qdiscs: list[Qdisc] = []
        for p in self.plan.qdiscs:
            q = Qdisc(
                p.id,
                p.name,
                QDISC_OPS[p.kind],
                region.section_words("qdisc", p.id),
                sec.base(p.id),
                p.root_lock,
                p.busylock,
            )
            q.seqlock = p.seqlock
            q.band_locks = list(p.band_locks)
            f = q.f
            f[QDISC.ops] = kinds.index(p.kind)
            f[QDISC.flags] = p.flags
            f[QDISC.dev] = p.dev
            f[QDISC.dev_queue] = p.txq
            f[QDISC.limit] = p.limit
            f[QDISC.defer_last_cpu] = -1
            if p.dev >= 0:
                q.dev = self.devices[p.dev]
            if p.txq >= 0:
                q.dev_queue = self.txqs[p.txq]
            q.bands = [Ring(region, f"qband{p.id}", b) for b in range(p.nrings)]
            if p.kind == "fq":
                first = p.fq_index * self.fq_nflows
                q.flows = [
                    region.section_words("fq_flows", first + b) for b in range(self.fq_nflows)
                ]
                fq_init(q)
            self.qdiscs.append(q)
        for q in self.qdiscs:
            if q.ops.id == "mq":
                q.children = [
                    c for c in self.qdiscs if c.dev is q.dev and c is not q and c.ops.id != "mq"
                ]

    def _store_xps(self) -> None:
        """The XPS maps, as writing each xps_cpus file does (netif_set_xps_queue)."""
        xps = self.region.span_words("xps")
        ncpus, stride = self.ncpus, 1 + MAX_TX_QUEUES
        self.xps = [
            [xps[(i * ncpus + c) * stride : (i * ncpus + c + 1) * stride] for c in range(ncpus)]
            for i in range(len(self.devices))
        ]
        rxqs = self.region.span_words("xps_rxqs")
        nrxq = self.layout["xps_rxqs"].shape[1]
        #: xps_rxqs maps: ``xps_rxqs[dev][rx queue]``, as ``xps`` (4.18+)
        self.xps_rxqs = [
            [rxqs[(i * nrxq + r) * stride : (i * nrxq + r + 1) * stride] for r in range(nrxq)]
            for i in range(len(self.devices))
        ]
        for dp in self.plan.devices:
            for queue, mask in dp.xps:
                netif_set_xps_queue(self, self.devices[dp.index], mask, queue)
            for queue, mask in dp.xps_rxqs:
                netif_set_xps_queue(self, self.devices[dp.index], mask, queue, rxqs=True)

    def _build_socks(self) -> None:
        """The sockets of every traffic group, owned by their CPUs."""
        region, sec = self.region, self.layout["sock"]
        self.socks: list[Sock] = []
        #: (sock id, cpu, TrafficConfig) of every socket
        self.sock_groups: list[tuple[int, int, TrafficConfig]] = []
        for sp in self.plan.socks:
            group = self.plan.sock_group(sp)
            sk = Sock(
                sp.id,
                region.section_words("sock", sp.id),
                sec.base(sp.id),
                sp.cpu,
                sp.proto,
                sp.sk_hash,
                sp.sk_txhash,
                sp.rx_queue,
                group.sndbuf,
            )
            f = sk.f
            f[SOCK.sk_tx_queue_mapping] = -1
            f[SOCK.dst_cached] = 1 if sp.connected else 0
            f[SOCK.sk_hash] = sp.sk_hash
            f[SOCK.sk_txhash] = sp.sk_txhash
            f[SOCK.cpu] = sp.cpu
            self.socks.append(sk)
            self.sock_groups.append((sp.id, sp.cpu, group))

    # -- per-process binding ----------------------------------------------------------
    def bind_cpu(self, cpu: int) -> None:
        """Act as emulated CPU ``cpu`` (or :attr:`control_cpu`) in this process."""
        if not 0 <= cpu <= self.control_cpu:
            raise ValueError(f"cpu {cpu} out of range")
        locks = self._bound.get(cpu)
        if locks is None:
            locks = self.locks.bind(cpu)
            self._bound[cpu] = locks
        this.cpu = cpu
        this.net = self
        this.sd = self.softnet[cpu] if cpu < self.ncpus else _ControlSoftnet()
        this.drops = self.drops[cpu]
        this.msgs = self.msgs[cpu]
        this.locks = locks
        this.ratelimit = self._ratelimit.setdefault(cpu, [0, 0])
        this.trace = self.tracer(cpu, locks) if self.tracing else None
        this.vt = None
        if self.virtual:
            part = cpu if cpu < self.ncpus else self.plan.vt_control
            if part is not None:  # the control process keeps time when it has events
                this.vt = self.vcpu(part, locks)

    @property
    def virtual(self) -> bool:
        """Whether this run keeps virtual time (its layout has the clocks)."""
        return "vclocks" in self.layout.sections

    def vcpu(self, participant: int, locks: list[SpinLock] | None = None) -> VirtualCpu:
        """This process's virtual clock as ``participant`` (the CPUs, then
        the NIC at ``ncpus``, then the control process at ``ncpus + 1`` when
        it carries out events), made once; ``locks`` (its lock handles) then
        keep virtual time through it."""
        vc = self._vcpus.get(participant)
        if vc is None:
            c = self.costs
            assert isinstance(c, HardwareCosts)
            vc = self._vcpus[participant] = VirtualCpu(
                self.region,
                participant,
                slack_ns=self.cfg.slack_ns,
                handoff_ns=c.handoff_ns,
                bounce_ns=c.bounce_ns,
                spinner_ns=c.spinner_ns,
                abort=lambda: self.runctl[RUNCTL.abort] != 0,
            )
            for lk in locks or ():
                virtual_lock(lk, vc, c.lock_ns)
        return vc

    @property
    def tracing(self) -> bool:
        """Whether this run records a trace (its layout has the event logs)."""
        return "trace_events" in self.layout.sections

    @property
    def trace_nic(self) -> int:
        """The NIC's participant index in the trace logs (after every locker)."""
        return self.plan.nlockers

    def tracer(self, participant: int, locks: list[SpinLock] | None = None) -> Tracer:
        """This process's log as ``participant`` (made once), recording the
        waits and holds of ``locks`` (this participant's lock handles)."""
        tr = self._tracers.get(participant)
        if tr is None:
            tr = self._tracers[participant] = Tracer(self.region, participant)
            for lk in locks or ():
                trace_lock(lk, tr)
        return tr

    def close(self) -> None:
        """Drop every view of the segment held here, then unmap it.

        The owner unlinks the names; this only releases this process's
        mapping, which needs every memoryview and numpy view gone first.
        """
        if this.net is self:
            this.reset()
        region = self.region
        for k in list(self.__dict__):
            if k not in _KEEP_ON_CLOSE:
                del self.__dict__[k]
        region.close()


class _ControlSoftnet(list):
    """The control process has no softnet_data; counters it bumps vanish."""

    def __init__(self) -> None:
        super().__init__([0] * SOFTNET.words)


def virtual_costs(cfg: RunConfig, profile: Profile) -> HardwareCosts:
    """The virtual clock's price list: the era's table (``[costs] era``, else
    the profile's), with every ``[costs]`` price that is set (> 0) in its
    place."""
    overrides = {f.name: getattr(cfg.costs, f.name) for f in dataclasses.fields(cfg.costs)}
    del overrides["era"]
    return ERAS[cfg.costs.era or profile.hardware].with_overrides(**overrides)
