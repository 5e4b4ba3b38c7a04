"""The emulated machine: every shared structure of one run, built from a
:class:`~netq.machine.config.RunConfig`.

:class:`Net` is built once by the supervisor (or a test) before any worker is
forked: it sizes the shared-memory layout, creates the segment, the locks,
the atomics and the per-CPU softnet semaphores through an
:class:`~shm.ipc.IpcOwner`, initialises every shared field (what
``register_netdevice``, ``attach_default_qdiscs``/``dev_activate`` and the
sysfs XPS stores would have done), and wraps each structure in a
process-local handle.  Forked workers inherit it and call :meth:`bind_cpu`.
"""
from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass


from shm.atomic import Atomics
from shm.ipc import IpcOwner
from netq.kernel.kstructs import (
    IFF_UP,
    MAX_TX_QUEUES,
    NDROP,
    NETDEV,
    NETDEV_QUEUE,
    NETIF_F_LLTX,
    NIC,
    NIC_BLOB_BYTES,
    QDISC,
    QDISC_BANDS,
    RUNCTL,
    SOCK,
    SOFTNET,
    TCQ_F_CAN_BYPASS,
    TCQ_F_BUILTIN,
    TCQ_F_MQROOT,
    TCQ_F_NOLOCK,
    TCQ_F_ONETXQUEUE,
    DEFER_NODE,
    FQ_FLOW,
    DEFER_NODES_PER_CPU,
)
from shm.layout import WORD, Layout
from shm.lock import LockPolicy, LockSpace, lock_layout
from shm.region import Region
from shm.ring import Ring, ring_sections

from .config import CostConfig, RunConfig
from netq.kernel.core.bitmap import bitmap_parse
from netq.kernel.core.dql import dql_init
from netq.kernel.core.netdevice import NetDevice, NetDeviceOps, NetdevQueue
from netq.kernel.core.percpu import this
from netq.kernel.core.sock import Sock
from netq.kernel.drivers.ethernet import eth_start_xmit
from netq.kernel.drivers.virtual import ip_tunnel_xmit, select_queue_by_priority, vlan_dev_hard_start_xmit
from netq.kernel.profiles import PROFILES
from netq.kernel.sched.sch_generic import QDISC_OPS, Qdisc
from netq.kernel.sched import sch_fifo, sch_mq  # noqa: F401  (register their ops)
from netq.kernel.sched.sch_fq import FQ_FLOW_RING, FQ_LIMIT, fq_init

NOOP_QDISC = 0
NOQUEUE_QDISC = 1
#: root_lock, busylock, seqlock, one producer_lock per band
LOCKS_PER_QDISC = 3 + QDISC_BANDS


@dataclass(frozen=True)
class _QdiscPlan:
    name: str
    kind: str
    dev: int  # device index, -1 for builtins
    txq: int  # global queue index (dev_queue), -1 for builtins / mq root
    limit: int
    flags: int
    parent: str


def _ring_size_for(limit: int) -> int:
    n = 1
    while n < limit:
        n <<= 1
    return n


class Net:
    """Everything one run shares, and the handles to it."""

    def __init__(self, cfg: RunConfig, owner: IpcOwner, host_cores: int | None = None) -> None:
        cfg.validate()
        self.cfg = cfg
        self.owner = owner
        self.profile = PROFILES[cfg.profile]
        self.strategy = cfg.effective_strategy
        #: locked qdiscs take busylock when found running (2.6.36 .. 6.18;
        #: still so for locked qdiscs in nolock-era kernels)
        self.busylock = self.strategy in ("busylock", "nolock")
        #: pfifo_fast is TCQ_F_NOLOCK (4.16+)
        self.nolock = self.strategy == "nolock"
        #: locked qdiscs are entered through q->defer_list (6.19)
        self.defer = self.strategy == "defer"
        self.costs: CostConfig = cfg.costs
        self.ncpus = cfg.cpus
        #: the locker id of the control process (supervisor, tests)
        self.control_cpu = cfg.cpus
        nlockers = cfg.cpus + 1
        rng = random.Random(cfg.seed)
        #: hashrnd of __flow_hash_1word (per boot in the kernel, per run here)
        self.hashrnd = rng.getrandbits(32)
        self.flow_hash_cache: dict[int, int] = {}

        host_cores = host_cores or len(os.sched_getaffinity(0))
        if cfg.lock_wait is None:
            waiting, spin_ns, why = LockPolicy.default_waiting(cfg.cpus + 1, host_cores)
        else:
            waiting, spin_ns, why = cfg.lock_wait, 20_000, "asked for"
        if cfg.spin_ns is not None:
            spin_ns = cfg.spin_ns
        self.lock_policy = LockPolicy(cfg.lock_fairness, waiting, spin_ns,
                                      yield_spin=cfg.cpus + 1 > host_cores,
                                      bounce_ns=cfg.costs.bounce_ns,
                                      remote_ns=cfg.costs.remote_ns,
                                      numa_node=tuple(cfg.numa_node(c) for c in range(nlockers)))
        self.lock_wait_reason = why

        # -- plan the objects --------------------------------------------------------
        devs = cfg.devices
        dev_index = {d.name: i for i, d in enumerate(devs)}
        txq_base: list[int] = []
        ntxq = 0
        for d in devs:
            txq_base.append(ntxq)
            ntxq += d.tx_queues
        plans = [
            _QdiscPlan("noop", "noop", -1, -1, 0, TCQ_F_BUILTIN, "builtin"),
            _QdiscPlan("noqueue", "noqueue", -1, -1, 0, TCQ_F_BUILTIN, "builtin"),
        ]
        #: device index -> root qdisc id; queue -> qdisc id
        root_of: dict[int, int] = {}
        txq_qdisc: list[int] = [NOQUEUE_QDISC] * ntxq
        for i, d in enumerate(devs):
            kind = d.qdisc
            if d.is_virtual or kind == "noqueue":
                root_of[i] = NOQUEUE_QDISC
                continue
            if kind == "default":
                kind = "mq" if d.tx_queues > 1 else "pfifo_fast"
            if kind == "mq":
                root_of[i] = len(plans)
                plans.append(_QdiscPlan(f"{d.name} mq", "mq", i, -1, 0, TCQ_F_MQROOT, "root"))
                for k in range(d.tx_queues):
                    txq_qdisc[txq_base[i] + k] = len(plans)
                    plans.append(_QdiscPlan(
                        f"{d.name}:tx-{k} pfifo_fast", "pfifo_fast", i, txq_base[i] + k,
                        d.tx_queue_len, TCQ_F_CAN_BYPASS | TCQ_F_ONETXQUEUE, f":{k + 1:x}"))
            else:
                # One root qdisc; on a multi-queue device every TX queue shares it.
                root_of[i] = len(plans)
                flags = QDISC_OPS[kind].static_flags
                if d.tx_queues == 1:
                    flags |= TCQ_F_ONETXQUEUE
                for k in range(d.tx_queues):
                    txq_qdisc[txq_base[i] + k] = len(plans)
                limit = FQ_LIMIT if kind == "fq" else d.tx_queue_len
                plans.append(_QdiscPlan(f"{d.name} {kind}", kind, i, txq_base[i], limit,
                                        flags, "root"))
        nq = len(plans)
        self.nsock = sum(len(t.cpus if t.cpus is not None else range(cfg.cpus)) * t.sockets_per_cpu
                         for t in cfg.traffic)

        lock_names = []
        for p in plans:
            lock_names += [f"{p.name} root_lock", f"{p.name} busylock", f"{p.name} seqlock"]
            lock_names += [f"{p.name} band{b} producer_lock" for b in range(QDISC_BANDS)]
        xmit_lock0 = len(lock_names)
        for i, d in enumerate(devs):
            lock_names += [f"{d.name}:tx-{k} _xmit_lock" for k in range(d.tx_queues)]

        # -- the layout -------------------------------------------------------------
        lay = Layout()
        lay.add("runctl", RUNCTL, 1)
        lay.add("softnet", SOFTNET, cfg.cpus)
        lay.add_raw("drops", (nlockers, NDROP))
        lay.add_raw("msgs", (nlockers, len(devs) * 4))
        lay.add_raw("output_queue", (cfg.cpus, nq))
        lay.add("netdev", NETDEV, len(devs))
        lay.add("netdev_queue", NETDEV_QUEUE, ntxq)
        lay.add("qdisc", QDISC, nq)
        lay.add_raw("xps", (len(devs), cfg.cpus, 1 + MAX_TX_QUEUES))
        lay.add("sock", SOCK, max(self.nsock, 1))
        lay.add("nic", NIC, 1)
        lay.add_raw("nic_by_cpu", (cfg.cpus,))
        lay.add_raw("nic_blob", (NIC_BLOB_BYTES // 8,))
        self.defer_nodes_per_cpu = DEFER_NODES_PER_CPU if self.defer else 1
        lay.add("defer_nodes", DEFER_NODE, cfg.cpus * self.defer_nodes_per_cpu)
        lock_layout(lay, len(lock_names), nlockers)
        for i, d in enumerate(devs):
            if not d.is_virtual:
                ring_sections(lay, f"txring{i}", d.tx_queues, d.ring_size)
        #: fq: one flow per socket plus the orphan flow
        self.fq_nflows = max(self.nsock, 1) + 1
        nfq = 0
        for qid, p in enumerate(plans):
            if p.kind in ("pfifo_fast", "pfifo"):
                ring_sections(lay, f"qband{qid}", QDISC_BANDS if p.kind == "pfifo_fast" else 1,
                              _ring_size_for(p.limit))
            elif p.kind == "fq":
                ring_sections(lay, f"qband{qid}", self.fq_nflows, FQ_FLOW_RING)
                nfq += 1
        lay.add("fq_flows", FQ_FLOW, max(nfq * self.fq_nflows, 1))
        self.layout = lay

        # -- IPC objects --------------------------------------------------------------
        self.region = region = Region(owner, "net", lay)
        self.words = region.words
        self.atomics = Atomics(owner, region)
        self.softnet_sems = [owner.semaphore(f"softnet{c}", 1) for c in range(cfg.cpus)]
        #: what a CPU sleeping for send-buffer space waits on (its task's wait
        #: queue): posted by sock_def_write_space and by a raised softirq
        self.cpu_wake = [owner.semaphore(f"wake{c}", 0) for c in range(cfg.cpus)]
        self.runctl = region.section_words("runctl")
        rc = self.runctl
        self.locks = LockSpace(owner, region, lock_names, nlockers, self.lock_policy,
                               abort=lambda: rc[RUNCTL.abort] != 0)

        # -- handles and initial state ---------------------------------------------------
        self.softnet = [region.section_words("softnet", c) for c in range(cfg.cpus)]
        self.softnet_base = [lay["softnet"].base(c) for c in range(cfg.cpus)]
        drops = region.span_words("drops")
        self.drops = [drops[c * NDROP:(c + 1) * NDROP] for c in range(nlockers)]
        msgs = region.span_words("msgs")
        w = len(devs) * 4
        self.msgs = [msgs[c * w:(c + 1) * w] for c in range(nlockers)]
        oq = region.span_words("output_queue")
        self.output_queue = [oq[c * nq:(c + 1) * nq] for c in range(cfg.cpus)]
        self.nic = region.section_words("nic")
        self.nic_by_cpu = region.span_words("nic_by_cpu")
        #: the node pool as one int64 view (DEFER_NODE.words per node)
        self.defer_nodes = region.span_words("defer_nodes")
        self.defer_off = lay["defer_nodes"].offset * WORD
        #: byte offset of the NIC's latency blob (written by the NIC at exit)
        self.nic_blob_off = lay["nic_blob"].offset * WORD
        self.defer_cursor = 0

        self.devices: list[NetDevice] = []
        self.txqs: list[NetdevQueue] = []
        for i, d in enumerate(devs):
            sec = lay["netdev"]
            dev = NetDevice(i, d.name, d.kind, region.section_words("netdev", i), sec.base(i), d)
            f = dev.f
            f[NETDEV.flags] = IFF_UP
            lltx = d.lltx if d.lltx is not None else d.kind == "vlan"
            f[NETDEV.features] = NETIF_F_LLTX if lltx else 0
            f[NETDEV.num_tx_queues] = d.tx_queues
            f[NETDEV.real_num_tx_queues] = d.real_queues
            f[NETDEV.qdisc] = root_of[i]
            f[NETDEV.num_tc] = d.num_tc
            for tc, (count, offset) in enumerate(d.tc_to_txq):
                f[NETDEV.tc_count + tc] = count
                f[NETDEV.tc_offset + tc] = offset
            for prio, tc in enumerate(d.prio_tc_map):
                f[NETDEV.prio_tc_map + prio] = tc
            if d.kind == "phys":
                dev.netdev_ops = NetDeviceOps(
                    eth_start_xmit,
                    select_queue_by_priority if d.select_queue == "priority" else None)
            elif d.kind == "vlan":
                dev.netdev_ops = NetDeviceOps(vlan_dev_hard_start_xmit)
            else:
                dev.netdev_ops = NetDeviceOps(ip_tunnel_xmit)
            qsec = lay["netdev_queue"]
            for k in range(d.tx_queues):
                g = txq_base[i] + k
                txq = NetdevQueue(g, k, dev, region.section_words("netdev_queue", g), qsec.base(g),
                                  xmit_lock0 + g)
                tf = txq.f
                tf[NETDEV_QUEUE.xmit_lock_owner] = -1
                tf[NETDEV_QUEUE.qdisc] = txq_qdisc[g]
                tf[NETDEV_QUEUE.qdisc_sleeping] = txq_qdisc[g]
                tf[NETDEV_QUEUE.irq_cpu] = d.irq_cpus[k] if d.irq_cpus else k % cfg.cpus
                txq.lltx = lltx
                if not d.is_virtual:
                    txq.ring = Ring(region, f"txring{i}", k)
                    txq.wake_thresh = d.wake_thresh or max(1, d.ring_size // 4)
                    txq.bql = self.profile.bql and d.bql
                    if txq.bql:
                        dql_init(tf, time.perf_counter_ns())
                dev.txqs.append(txq)
                self.txqs.append(txq)
            self.devices.append(dev)
        for i, d in enumerate(devs):
            if d.lower is not None:
                self.devices[i].lower = self.devices[dev_index[d.lower]]
        self.dev_by_name = {d.name: d for d in self.devices}

        self.qdiscs: list[Qdisc] = []
        qsec = lay["qdisc"]
        fq_next = 0
        for qid, p in enumerate(plans):
            q = Qdisc(qid, p.name, QDISC_OPS[p.kind], region.section_words("qdisc", qid),
                      qsec.base(qid), LOCKS_PER_QDISC * qid, LOCKS_PER_QDISC * qid + 1)
            q.seqlock = LOCKS_PER_QDISC * qid + 2
            q.band_locks = [LOCKS_PER_QDISC * qid + 3 + b for b in range(QDISC_BANDS)]
            f = q.f
            f[QDISC.ops] = list(QDISC_OPS).index(p.kind)
            flags = p.flags
            if p.kind == "pfifo_fast" and self.nolock:
                flags |= TCQ_F_NOLOCK
                if not self.profile.nolock_bypass:
                    flags &= ~TCQ_F_CAN_BYPASS
            f[QDISC.flags] = flags
            f[QDISC.dev] = p.dev
            f[QDISC.dev_queue] = p.txq
            f[QDISC.limit] = p.limit
            f[QDISC.defer_last_cpu] = -1
            if p.dev >= 0:
                q.dev = self.devices[p.dev]
            if p.txq >= 0:
                q.dev_queue = self.txqs[p.txq]
            if p.kind in ("pfifo_fast", "pfifo"):
                nb = QDISC_BANDS if p.kind == "pfifo_fast" else 1
                q.bands = [Ring(region, f"qband{qid}", b) for b in range(nb)]
            elif p.kind == "fq":
                q.bands = [Ring(region, f"qband{qid}", b) for b in range(self.fq_nflows)]
                q.flows = [region.section_words("fq_flows", fq_next * self.fq_nflows + b)
                           for b in range(self.fq_nflows)]
                fq_next += 1
                fq_init(q)
            self.qdiscs.append(q)
        self.qdisc_parent = [p.parent for p in plans]
        for q in self.qdiscs:
            if q.ops.id == "mq":
                q.children = [c for c in self.qdiscs
                              if c.dev is q.dev and c is not q and c.ops.id != "mq"]

        # XPS: what writing each xps_cpus file does (netif_set_xps_queue).
        xps = region.span_words("xps")
        stride = 1 + MAX_TX_QUEUES
        self.xps = [[xps[(i * cfg.cpus + c) * stride:(i * cfg.cpus + c + 1) * stride]
                     for c in range(cfg.cpus)] for i in range(len(devs))]
        from netq.kernel.core.xps import netif_set_xps_queue

        for i, d in enumerate(devs):
            for qi in sorted(d.xps):
                netif_set_xps_queue(self, self.devices[i], bitmap_parse(d.xps[qi], cfg.cpus), qi)

        # Sockets: sockets_per_cpu per CPU of each traffic group.
        self.socks: list[Sock] = []
        self.sock_groups: list[tuple[int, int, object]] = []  # (sock id, cpu, TrafficConfig)
        ssec = lay["sock"]
        for t in cfg.traffic:
            for c in (t.cpus if t.cpus is not None else range(cfg.cpus)):
                for _ in range(t.sockets_per_cpu):
                    sid = len(self.socks)
                    sk = Sock(sid, region.section_words("sock", sid), ssec.base(sid), c, t.proto,
                              rng.getrandbits(32) or 1, rng.getrandbits(32) or 1)
                    sk.f[SOCK.sk_tx_queue_mapping] = -1
                    sk.f[SOCK.dst_cached] = 1 if t.connected else 0
                    sk.f[SOCK.sk_hash] = sk.sk_hash
                    sk.f[SOCK.sk_txhash] = sk.sk_txhash
                    sk.f[SOCK.cpu] = c
                    self.socks.append(sk)
                    self.sock_groups.append((sid, c, t))
        self._bound: dict[int, list] = {}
        #: net_ratelimit() state per CPU (see dev.net_ratelimit)
        self._ratelimit: dict[int, list[int]] = {}

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

    def close(self) -> None:
        """Drop every view of the segment held here, then unmap it.

        The owner unlinks the names; this only releases this process's
        mapping, which needs every memoryview and numpy view gone first.
        """
        if this.net is self:
            this.__init__()
        region = self.region
        for k in list(self.__dict__):
            if k not in ("cfg", "owner", "profile", "strategy", "lock_policy", "lock_wait_reason",
                         "layout", "region", "ncpus", "control_cpu", "nsock"):
                del self.__dict__[k]
        region.close()


class _ControlSoftnet(list):
    """The control process has no softnet_data; counters it bumps vanish."""

    def __init__(self) -> None:
        super().__init__([0] * SOFTNET.words)
