"""What a run is: devices, traffic, CPUs, locks, strategy, profile, costs.

A :class:`RunConfig` is plain data.  :func:`from_dict` builds one from an
experiment file (TOML) or a preset, rejecting unknown keys; :meth:`RunConfig.
validate` checks every value and raises :class:`ConfigError` naming the field
and what is allowed.  Nothing is created before validation passes.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from netq.kernel.core.bitmap import MaskError, bitmap_parse

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef,import-not-found,unused-ignore]
from netq.kernel.costs import ERAS
from netq.kernel.kstructs import FAULTS, MAX_TX_QUEUES
from netq.kernel.profiles import DEFAULT_PROFILE, PROFILES, RETIRED_STRATEGIES, STRATEGIES
from shm.lock import FAIRNESS, WAITING
from shm.ring import is_power_of_two

DEVICE_KINDS = ("phys", "vlan", "tunnel")
QDISC_KINDS = ("default", "pfifo_fast", "pfifo", "fq", "mq", "noqueue")
SELECT_QUEUE = ("none", "priority")
PROTOS = ("udp", "tcp")
TC_MAX_QUEUE = 16
TC_BITMASK = 15
MAX_CPUS = 64


class ConfigError(ValueError):
    """Bad configuration: ``field`` names where, the message what is allowed."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass
class DeviceConfig:
    """One net_device.  ``phys`` devices have TX queues, rings and a NIC;
    ``vlan``/``tunnel`` devices are noqueue and transmit on ``lower``."""

    name: str = "eth0"
    kind: str = "phys"
    lower: str | None = None
    tx_queues: int = 1
    #: real_num_tx_queues at start (ethtool -L); defaults to tx_queues
    real_tx_queues: int | None = None
    ring_size: int = 256
    tx_queue_len: int = 1000
    qdisc: str = "default"
    #: NETIF_F_LLTX: no HARD_TX_LOCK; default True for vlan, False otherwise
    lltx: bool | None = None
    #: queue -> xps_cpus mask as /sys/class/net/DEV/queues/tx-N/xps_cpus takes it
    xps: dict[int, str] = field(default_factory=dict)
    #: num_rx_queues (the RX queues xps_rxqs masks name); default tx_queues
    rx_queues: int | None = None
    #: queue -> xps_rxqs mask (RX queues) as tx-N/xps_rxqs takes it (4.18+)
    xps_rxqs: dict[int, str] = field(default_factory=dict)
    num_tc: int = 0
    #: per traffic class (count, offset), as mqprio's queues=count@offset
    tc_to_txq: list[list[int]] = field(default_factory=list)
    prio_tc_map: list[int] = field(default_factory=lambda: [0] * 16)
    #: CPU each queue's completion interrupt is affine to; default queue % cpus
    irq_cpus: list[int] | None = None
    #: a driver ndo_select_queue hook: "none" or "priority" (skb->priority % n)
    select_queue: str = "none"
    #: NIC line rate in bit/s (with wire_overhead bytes per packet); 0 = none
    line_rate_bps: float = 10e9
    #: NIC line rate in packets/s; 0 = none.  Both limits apply if both are set.
    line_rate_pps: float = 0.0
    wire_overhead: int = 24
    #: the NIC wakes a stopped queue when this many descriptors are free;
    #: default ring_size // 4 (tg3's TG3_TX_WAKEUP_THRESH)
    wake_thresh: int | None = None
    #: the driver does byte queue limits (netdev_tx_sent_queue /
    #: netdev_tx_completed_queue, as tg3 and ixgbe do); only under a profile
    #: that has BQL (3.3+).  It stops the queue (STACK_XOFF) once the bytes in
    #: the ring reach the dynamic limit, and bounds bulk dequeue (3.18+).
    bql: bool = True

    @property
    def is_virtual(self) -> bool:
        return self.kind != "phys"

    @property
    def real_queues(self) -> int:
        return self.tx_queues if self.real_tx_queues is None else self.real_tx_queues


@dataclass
class TrafficConfig:
    """Sockets that the listed CPUs transmit on ``device``."""

    device: str | None = None
    #: emulated CPUs running these sockets; default all
    cpus: list[int] | None = None
    sockets_per_cpu: int = 4
    proto: str = "udp"
    #: a connected socket caches its dst, so sk_tx_queue_set() sticks
    connected: bool = True
    priority: int = 0
    #: IP TOS byte; if set, skb->priority = rt_tos2priority(tos) (overrides priority)
    tos: int | None = None
    #: packet length in bytes: fixed, or [min, max] uniformly
    length: int | list[int] = 1000
    #: packets/s per CPU for this group; 0 floods
    rate_pps: float = 0.0
    #: SO_SNDBUF in bytes (net.core.wmem_default); a socket whose unfreed skbs
    #: (truesize) would exceed it waits for TX completions, as sendmsg does
    #: in sock_alloc_send_skb; 0 = unlimited
    sndbuf: int = 212992
    #: forwarded traffic: the skb carries this recorded rx queue (-1: none)
    rx_queue: int = -1
    #: the RX queue the socket's incoming packets arrived on, recorded by
    #: sk_rx_queue_set (sk_rx_queue_mapping; -1: none): xps_rxqs maps pick by it
    sk_rx_queue: int = -1


#: the clocks a run can keep
CLOCKS = ("wall", "virtual")
#: longest virtual run (s): a virtual second costs the host tens of seconds
VIRTUAL_MAX_S = 10.0
#: a virtual run's duration when none is given (s of virtual time)
VIRTUAL_DEFAULT_S = 0.02

EVENT_ACTIONS = (
    "dev_close",
    "dev_open",
    "set_real_num_tx_queues",
    "slow_nic",
    "kill",
    "stop",
    "fault",
)


@dataclass
class EventConfig:
    """Something done to a running experiment ``at`` seconds after the start
    (virtual seconds on the virtual clock: docs/virtual-time.md).

    dev_close / dev_open DEVICE         ip link set DEVICE down / up
    set_real_num_tx_queues DEVICE VALUE ethtool -L DEVICE tx VALUE
    slow_nic VALUE                      the NIC spends VALUE ns more per packet
    kill WORKER / stop WORKER           SIGKILL / SIGSTOP "cpuN" or "nic" (faults)
    fault FAULT                         a deliberate model bug, for testing the
                                        checks: "lose_one" (the NIC loses one skb
                                        without accounting for it, so the
                                        conservation invariant must fail)
    """

    at: float = 0.0
    action: str = "dev_close"
    device: str | None = None
    worker: str | None = None
    value: int = 0
    #: the fault of a "fault" event: one of netq.kernel.kstructs.FAULTS
    fault: str | None = None


@dataclass
class CostConfig:
    """Emulated per-operation costs (busy-waits), reported in the setup.

    They stand for work the kernel does and Python does not (or does far
    slower), so that lock hold times have the kernel's proportions."""

    enqueue_ns: int = 0
    dequeue_ns: int = 0
    xmit_ns: int = 0
    #: paid when a CPU takes a lock another CPU held last (root_lock,
    #: busylock, _xmit_lock, seqlock: the lock word and the qdisc/queue data
    #: it protects move between caches), and when a CPU pushes onto a
    #: defer_list another CPU touched last
    bounce_ns: int = 0
    #: emulated NUMA: the CPUs are split into this many nodes (contiguous
    #: blocks: CPU c is on node c * numa_nodes // cpus) ...
    numa_nodes: int = 1
    #: ... and a bounce from a CPU of another node costs this much more
    #: (remote memory): what XPS saves on NUMA machines besides contention
    remote_ns: int = 0
    # The virtual clock's other prices (netq.kernel.costs; 0: the profile's
    # era's table).  In the wall clock they are not used.
    sendmsg_ns: int = 0
    pick_tx_ns: int = 0
    #: the driver's doorbell (tail register write), skipped under xmit_more;
    #: also a busy-wait on the wall clock when set
    doorbell_ns: int = 0
    #: kfree_skb of a dropped skb (under the root lock before 4.8); also a
    #: busy-wait on the wall clock when set
    free_ns: int = 0
    completion_ns: int = 0
    lock_ns: int = 0
    atomic_ns: int = 0
    handoff_ns: int = 0
    softirq_ns: int = 0
    spinner_ns: int = 0
    #: the virtual clock's price list: a hardware era of netq.kernel.costs
    #: ("2007", "2010", "2018", "2025"); "" takes the profile's
    era: str = ""


@dataclass
class RunConfig:
    name: str = "custom"
    cpus: int = 2
    #: emulated CPU i -> host core; default i % host cores
    cpu_map: list[int] | None = None
    profile: str = DEFAULT_PROFILE
    #: how a *locked* qdisc is entered: rootlock | busylock | defer; default:
    #: the profile's
    strategy: str | None = None
    #: what-if: pfifo_fast's static_flags with (true) or without (false)
    #: TCQ_F_NOLOCK; default (None): the profile's (NOLOCK from 4.16)
    pfifo_fast_nolock: bool | None = None
    lock_fairness: str = "fifo"
    #: spin | block | adaptive; default chosen from processes vs cores
    lock_wait: str | None = None
    #: adaptive waiting: spin this long before sleeping (default chosen)
    spin_ns: int | None = None
    duration: float = 2.0
    #: stop after this many generated packets in all (0: use duration)
    packets: int = 0
    seed: int | None = None
    #: no delivered-packet progress for this long ends the run as stalled
    stall_timeout: float = 3.0
    #: most descriptors the NIC takes from one ring per round
    nic_batch: int = 256
    #: interrupt moderation (ethtool -C tx-usecs): after a round that found
    #: fewer than nic_batch/4 descriptors the NIC waits this long; 0 = poll
    nic_coalesce_us: int = 100
    devices: list[DeviceConfig] = field(default_factory=lambda: [DeviceConfig()])
    traffic: list[TrafficConfig] = field(default_factory=lambda: [TrafficConfig()])
    costs: CostConfig = field(default_factory=CostConfig)
    events: list[EventConfig] = field(default_factory=list)
    #: net.core.qdisc_max_burst (6.19): most skbs a qdisc's defer_list holds;
    #: a push beyond it is dropped (QDISC_BURST_DROP); the kernel's default
    qdisc_max_burst: int = 1000
    #: net.core.txq_reselection_ms (6.19): a socket's cached TX queue older
    #: than this is re-picked (0: never); the kernel's default
    txq_reselection_ms: int = 1000
    #: developers: each CPU process writes cProfile statistics to
    #: PROFILE_DIR/cpuN.prof (--profile-dir); None: no profiling
    profile_dir: str | None = None
    #: record every process's events and write a Perfetto trace here
    #: (--trace); None: no tracing (the tracepoints cost a test each)
    trace: str | None = None
    #: draw a timeline picture (PNG) of the traced events here (--timeline)
    timeline: str | None = None
    #: events each process's trace log holds; more are counted as dropped
    trace_events: int = 1 << 17
    #: "wall": every figure is the host's time; "virtual": each emulated CPU
    #: and the NIC keep a clock charged by the cost model (docs/virtual-time.md),
    #: and ``duration`` counts virtual seconds
    clock: str = "wall"
    #: virtual clock: how far a participant may run ahead of the slowest
    #: (ns); must stay below the shortest critical section (a root_lock
    #: enqueue holds it ~60-90 ns at the 2010-2025 prices) and below the gap
    #: between two CPUs' requests for it (docs/virtual-time.md: 50 ns let 14%
    #: of root_lock grants go out of order under busylock at 2 senders; once
    #: nested acquires pass the window too, 20 ns spread a 4-CPU busylock
    #: run's CPU per packet by 9% over 8 runs, 0 ns by 1%, at no wall cost)
    slack_ns: int = 0

    # -- derived -----------------------------------------------------------------
    @property
    def virtual(self) -> bool:
        """Whether the run keeps virtual time (``clock = "virtual"``)."""
        return self.clock == "virtual"

    @property
    def traced(self) -> bool:
        """Whether the run records its events (for a trace or a timeline)."""
        return self.trace is not None or self.timeline is not None

    def numa_node(self, cpu: int) -> int:
        """The emulated NUMA node of a CPU (the control process: node 0)."""
        if cpu >= self.cpus:
            return 0
        return cpu * self.costs.numa_nodes // self.cpus

    @property
    def effective_strategy(self) -> str:
        return self.strategy or PROFILES[self.profile].strategy

    @property
    def effective_pfifo_fast_nolock(self) -> bool:
        """pfifo_fast is TCQ_F_NOLOCK: the what-if if set, else the profile's."""
        if self.pfifo_fast_nolock is not None:
            return self.pfifo_fast_nolock
        return PROFILES[self.profile].pfifo_fast_nolock

    def device_loops(self) -> list[list[str]]:
        """Cycles in the device graph (virtual device -> lower), each as the
        list of device names around it, starting at its first-declared
        member.  A loop is legal: the xmit_recursion limit is what cuts it."""
        lower = {d.name: d.lower for d in self.devices if d.is_virtual}
        order = {d.name: i for i, d in enumerate(self.devices)}
        loops, seen = [], set()
        for start in lower:
            path: list[str] = []
            node: str | None = start
            while node in lower and node not in path:
                path.append(node)
                node = lower[node]
            if node in path:
                cyc = path[path.index(node) :]
                key = frozenset(cyc)
                if key not in seen:
                    seen.add(key)
                    i = min(range(len(cyc)), key=lambda k: order[cyc[k]])
                    loops.append(cyc[i:] + cyc[:i])
        return loops

    def device(self, name: str) -> DeviceConfig:
        for d in self.devices:
            if d.name == name:
                return d
        raise KeyError(name)

    # -- validation ----------------------------------------------------------------
    def validate(self) -> RunConfig:
        """Check every value; raise ConfigError naming the first bad field."""
        _int_range("cpus", self.cpus, 1, MAX_CPUS)
        _int_range("trace_events", self.trace_events, 1024, 1 << 24)
        if self.clock not in CLOCKS:
            raise ConfigError("clock", f"one of {', '.join(CLOCKS)}")
        _int_range("slack_ns", self.slack_ns, 0, 1_000_000)
        if self.virtual:
            if self.duration > VIRTUAL_MAX_S:
                raise ConfigError(
                    "duration",
                    f"with the virtual clock, virtual seconds up to {VIRTUAL_MAX_S:g} "
                    "(each costs the host far more)",
                )
            if self.lock_fairness != "fifo":
                raise ConfigError(
                    "lock_fairness",
                    "the virtual clock grants each lock in request order (a ticket or "
                    "queued spinlock); 'unfair' needs the wall clock",
                )
        if self.cpu_map is not None:
            if len(self.cpu_map) != self.cpus:
                raise ConfigError("cpu_map", f"needs one host core per emulated CPU ({self.cpus})")
            allowed = sorted(os.sched_getaffinity(0))
            for c in self.cpu_map:
                if c not in allowed:
                    raise ConfigError("cpu_map", f"host core {c} not available; allowed {allowed}")
        if self.profile not in PROFILES:
            raise ConfigError("profile", f"unknown {self.profile!r}; one of {', '.join(PROFILES)}")
        if self.strategy in RETIRED_STRATEGIES:
            raise ConfigError("strategy", f"{self.strategy!r} {RETIRED_STRATEGIES[self.strategy]}")
        if self.strategy is not None and self.strategy not in STRATEGIES:
            raise ConfigError(
                "strategy", f"unknown {self.strategy!r}; one of {', '.join(STRATEGIES)}"
            )
        if self.lock_fairness not in FAIRNESS:
            raise ConfigError("lock_fairness", f"one of {', '.join(FAIRNESS)}")
        if self.lock_wait is not None and self.lock_wait not in WAITING:
            raise ConfigError("lock_wait", f"one of {', '.join(WAITING)}")
        if self.spin_ns is not None:
            _int_range("spin_ns", self.spin_ns, 0, 10**9)
        _number("duration", self.duration)
        _number("stall_timeout", self.stall_timeout)
        if not (0 < self.duration <= 3600):
            raise ConfigError("duration", "seconds, > 0 and <= 3600")
        _int_range("packets", self.packets, 0, 10**12)
        if not (0.1 <= self.stall_timeout <= 600):
            raise ConfigError("stall_timeout", "seconds, 0.1 to 600")
        _int_range("nic_batch", self.nic_batch, 1, 4096)
        _int_range("nic_coalesce_us", self.nic_coalesce_us, 0, 100_000)
        _int_range("qdisc_max_burst", self.qdisc_max_burst, 1, 2**31 - 1)
        _int_range("txq_reselection_ms", self.txq_reselection_ms, 0, 2**31 - 1)
        if self.seed is not None:
            _int_range("seed", self.seed, 0, 2**32 - 1)
        for f in dataclasses.fields(self.costs):
            if f.name.endswith("_ns"):
                _int_range(f"costs.{f.name}", getattr(self.costs, f.name), 0, 10**8)
        if self.costs.era and self.costs.era not in ERAS:
            raise ConfigError("costs.era", f"one of {', '.join(ERAS)} (or empty: the profile's)")
        _int_range("costs.numa_nodes", self.costs.numa_nodes, 1, self.cpus)
        self._validate_devices()
        self._validate_traffic()
        self._validate_events()
        return self

    def _validate_events(self) -> None:
        names = {d.name: d for d in self.devices}
        workers = {"nic"} | {f"cpu{c}" for c in range(self.cpus)}
        for i, e in enumerate(self.events):
            p = f"events[{i}]"
            if not isinstance(e.at, (int, float)) or not math.isfinite(e.at) or e.at < 0:
                raise ConfigError(f"{p}.at", "seconds after the start, >= 0")
            if e.action not in EVENT_ACTIONS:
                raise ConfigError(f"{p}.action", f"one of {', '.join(EVENT_ACTIONS)}")
            if e.action in ("dev_close", "dev_open", "set_real_num_tx_queues"):
                if e.device not in names:
                    raise ConfigError(f"{p}.device", f"name a device; have {sorted(names)}")
            if e.action == "set_real_num_tx_queues" and e.device is not None:
                _int_range(f"{p}.value", e.value, 1, names[e.device].tx_queues)
            if e.action == "slow_nic":
                _int_range(f"{p}.value", e.value, 0, 10**9)
            if e.action in ("kill", "stop") and e.worker not in workers:
                raise ConfigError(f"{p}.worker", f"one of {', '.join(sorted(workers))}")
            if e.action == "fault" and e.fault not in FAULTS:
                raise ConfigError(
                    f"{p}.fault", f"one of {', '.join(sorted(FAULTS))}, got {e.fault!r}"
                )
            if e.action != "fault" and e.fault is not None:
                raise ConfigError(f"{p}.fault", 'only a "fault" event names a fault')

    def _validate_devices(self) -> None:
        if not self.devices:
            raise ConfigError("devices", "at least one device")
        names = set()
        for i, d in enumerate(self.devices):
            p = f"devices[{i}]"
            if (
                not d.name
                or not d.name.replace("-", "").replace("_", "").replace(".", "").isalnum()
                or len(d.name) > 15
            ):
                raise ConfigError(
                    f"{p}.name", "1-15 characters: letters, digits, '-', '_', '.' (IFNAMSIZ)"
                )
            if d.name in names:
                raise ConfigError(f"{p}.name", f"{d.name!r} used twice")
            names.add(d.name)
            p = f"device {d.name}"
            if d.kind not in DEVICE_KINDS:
                raise ConfigError(f"{p}.kind", f"one of {', '.join(DEVICE_KINDS)}")
            if d.qdisc not in QDISC_KINDS:
                raise ConfigError(f"{p}.qdisc", f"one of {', '.join(QDISC_KINDS)}")
            if d.qdisc == "fq" and self.profile == "2.6.37":
                raise ConfigError(f"{p}.qdisc", "fq came with 3.12: use a profile of 3.13 or later")
            if d.is_virtual:
                if d.qdisc not in ("default", "noqueue"):
                    raise ConfigError(f"{p}.qdisc", "virtual devices are noqueue (IFF_NO_QUEUE)")
                if d.tx_queues != 1:
                    raise ConfigError(f"{p}.tx_queues", "virtual devices have 1 TX queue")
            if d.kind == "phys" and d.lltx and d.qdisc == "noqueue":
                raise ConfigError(
                    f"{p}.lltx",
                    "a physical LLTX device needs a qdisc: without "
                    "HARD_TX_LOCK or a qdisc runner, several CPUs would "
                    "write its TX ring (one producer) at once",
                )
            _int_range(f"{p}.tx_queues", d.tx_queues, 1, MAX_TX_QUEUES)
            _int_range(f"{p}.real_tx_queues", d.real_queues, 1, d.tx_queues)
            if not is_power_of_two(d.ring_size) or not 4 <= d.ring_size <= 65536:
                raise ConfigError(
                    f"{p}.ring_size", f"a power of two from 4 to 65536, got {d.ring_size}"
                )
            _int_range(f"{p}.tx_queue_len", d.tx_queue_len, 1, 65536)
            if d.qdisc == "mq" and d.tx_queues == 1:
                raise ConfigError(f"{p}.qdisc", "mq needs a multi-queue device (tx_queues > 1)")
            if d.select_queue not in SELECT_QUEUE:
                raise ConfigError(f"{p}.select_queue", f"one of {', '.join(SELECT_QUEUE)}")
            _number(f"{p}.line_rate_bps", d.line_rate_bps)
            _number(f"{p}.line_rate_pps", d.line_rate_pps)
            if d.line_rate_bps < 0 or d.line_rate_pps < 0:
                raise ConfigError(f"{p}.line_rate", "rates are >= 0 (0: unlimited)")
            _int_range(f"{p}.wire_overhead", d.wire_overhead, 0, 1024)
            if d.wake_thresh is not None:
                _int_range(f"{p}.wake_thresh", d.wake_thresh, 1, d.ring_size)
            if not isinstance(d.bql, bool):
                raise ConfigError(f"{p}.bql", f"true or false, got {d.bql!r}")
            for q, mask in d.xps.items():
                if not isinstance(q, int) or not 0 <= q < d.tx_queues:
                    raise ConfigError(
                        f"{p}.xps", f"queue {q!r} does not exist (tx-0..tx-{d.tx_queues - 1})"
                    )
                try:
                    m = bitmap_parse(mask, self.cpus)
                except MaskError as e:
                    raise ConfigError(f"{p}.xps tx-{q}", str(e)) from None
                if m >> self.cpus:
                    raise ConfigError(
                        f"{p}.xps tx-{q}",
                        f"mask {mask!r} names a CPU >= {self.cpus} (emulated CPUs 0-{self.cpus - 1})",
                    )
            nrx = d.rx_queues if d.rx_queues is not None else d.tx_queues
            if d.rx_queues is not None:
                _int_range(f"{p}.rx_queues", d.rx_queues, 1, MAX_TX_QUEUES)
            if d.xps_rxqs and not PROFILES[self.profile].xps_rxqs:
                raise ConfigError(
                    f"{p}.xps_rxqs",
                    f"profile {self.profile} has no xps_rxqs (4.18+: profiles "
                    + ", ".join(n for n, pr in PROFILES.items() if pr.xps_rxqs)
                    + ")",
                )
            for q, mask in d.xps_rxqs.items():
                if not isinstance(q, int) or not 0 <= q < d.tx_queues:
                    raise ConfigError(
                        f"{p}.xps_rxqs", f"queue {q!r} does not exist (tx-0..tx-{d.tx_queues - 1})"
                    )
                try:
                    m = bitmap_parse(mask, nrx)
                except MaskError as e:
                    raise ConfigError(f"{p}.xps_rxqs tx-{q}", str(e)) from None
                if m >> nrx:
                    raise ConfigError(
                        f"{p}.xps_rxqs tx-{q}",
                        f"mask {mask!r} names an RX queue >= {nrx} (rx_queues {nrx})",
                    )
            if d.num_tc:
                _int_range(f"{p}.num_tc", d.num_tc, 1, TC_MAX_QUEUE)
                if len(d.tc_to_txq) != d.num_tc:
                    raise ConfigError(f"{p}.tc_to_txq", f"needs {d.num_tc} [count, offset] pairs")
                for tc, pair in enumerate(d.tc_to_txq):
                    if (
                        len(pair) != 2
                        or pair[0] < 1
                        or pair[1] < 0
                        or pair[0] + pair[1] > d.tx_queues
                    ):
                        raise ConfigError(
                            f"{p}.tc_to_txq[{tc}]",
                            f"[count>=1, offset>=0] within {d.tx_queues} queues",
                        )
            if len(d.prio_tc_map) != TC_BITMASK + 1 or any(
                not 0 <= t < max(d.num_tc, 1) for t in d.prio_tc_map
            ):
                raise ConfigError(
                    f"{p}.prio_tc_map", f"16 traffic classes, each 0..{max(d.num_tc, 1) - 1}"
                )
            if d.irq_cpus is not None:
                if len(d.irq_cpus) != d.tx_queues or any(
                    not 0 <= c < self.cpus for c in d.irq_cpus
                ):
                    raise ConfigError(f"{p}.irq_cpus", f"one CPU 0..{self.cpus - 1} per TX queue")
        for d in self.devices:
            if d.is_virtual:
                if d.lower is None or d.lower not in names:
                    raise ConfigError(
                        f"device {d.name}.lower", f"name an existing device; have {sorted(names)}"
                    )
            elif d.lower is not None:
                raise ConfigError(
                    f"device {d.name}.lower", "only virtual devices have a lower device"
                )

    def _validate_traffic(self) -> None:
        if not self.traffic:
            raise ConfigError("traffic", "at least one traffic group")
        names = [d.name for d in self.devices]
        for i, t in enumerate(self.traffic):
            p = f"traffic[{i}]"
            dev = t.device or names[0]
            if dev not in names:
                raise ConfigError(f"{p}.device", f"{dev!r} is not a device; have {names}")
            if t.cpus is not None:
                if not t.cpus or any(
                    not isinstance(c, int) or not 0 <= c < self.cpus for c in t.cpus
                ):
                    raise ConfigError(f"{p}.cpus", f"emulated CPUs 0..{self.cpus - 1}")
            _int_range(f"{p}.sockets_per_cpu", t.sockets_per_cpu, 1, 4096)
            if t.proto not in PROTOS:
                raise ConfigError(f"{p}.proto", f"one of {', '.join(PROTOS)}")
            _int_range(f"{p}.priority", t.priority, 0, 2**32 - 1)
            if t.tos is not None:
                _int_range(f"{p}.tos", t.tos, 0, 255)
            lo, hi = (
                (t.length, t.length)
                if isinstance(t.length, int)
                else (
                    tuple(t.length)
                    if isinstance(t.length, list) and len(t.length) == 2
                    else (None, None)
                )
            )
            if (
                isinstance(lo, bool)
                or isinstance(hi, bool)
                or not isinstance(lo, int)
                or not isinstance(hi, int)
                or not 1 <= lo <= hi <= 65535
            ):
                raise ConfigError(
                    f"{p}.length", "bytes: N or [min, max] with 1 <= min <= max <= 65535"
                )
            _int_range(f"{p}.sndbuf", t.sndbuf, 0, 2**31 - 1)
            _number(f"{p}.rate_pps", t.rate_pps)
            if t.rate_pps < 0:
                raise ConfigError(f"{p}.rate_pps", "packets/s per CPU, >= 0 (0 floods)")
            if t.rx_queue < -1 or t.rx_queue > 65535:
                raise ConfigError(f"{p}.rx_queue", "-1 (not forwarded) or a queue number")
            if t.sk_rx_queue < -1 or t.sk_rx_queue > 65535:
                raise ConfigError(f"{p}.sk_rx_queue", "-1 (none recorded) or an RX queue number")


def _number(name: str, v: Any) -> None:
    """A finite number: NaN and infinity are never a duration or a rate (and
    would make the JSON result invalid for strict parsers)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ConfigError(name, f"a finite number, got {v!r}")


def _int_range(name: str, v: Any, lo: int, hi: int) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ConfigError(name, f"an integer from {lo} to {hi}, got {v!r}")


# -- building from dicts (TOML, presets) -------------------------------------------
def read_toml(path: str, flag: str) -> dict:
    """The TOML file ``path`` (given with ``flag``) as a dict; ConfigError
    naming ``flag`` if it cannot be read or is not TOML (binary, not UTF-8,
    nested too deep)."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise ConfigError(flag, f"cannot read {path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(
            flag,
            f"{path} is not UTF-8 text (TOML files are UTF-8; byte {e.start}: {e.reason})",
        ) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(flag, f"{path} is not valid TOML: {e}") from None
    except RecursionError:
        raise ConfigError(flag, f"{path} nests tables or arrays too deeply") from None


_SECTIONS = {"devices": DeviceConfig, "traffic": TrafficConfig, "events": EventConfig}


def from_dict(d: dict, base: RunConfig | None = None) -> RunConfig:
    """A RunConfig from a dict (an experiment file); unknown keys are errors."""
    cfg = dataclasses.replace(base) if base else RunConfig()
    for k, v in d.items():
        if k == "costs":
            cfg.costs = _fill(CostConfig, v, "costs")
        elif k in _SECTIONS:
            if not isinstance(v, list):
                raise ConfigError(k, f"a list of tables ([[{k}]])")
            setattr(cfg, k, [_fill(_SECTIONS[k], x, f"{k}[{i}]") for i, x in enumerate(v)])
        elif k in _field_names(RunConfig):
            setattr(cfg, k, _coerce(RunConfig, k, v, k))
        else:
            raise ConfigError(
                k, f"unknown key; allowed: {', '.join(sorted(_field_names(RunConfig)))}"
            )
    return cfg


def _field_names(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def _fill(cls, d: Any, path: str):
    if not isinstance(d, dict):
        raise ConfigError(path, f"a table, got {_what(d)}")
    kw = {}
    for k, v in d.items():
        if k not in _field_names(cls):
            raise ConfigError(
                f"{path}.{k}", f"unknown key; allowed: {', '.join(sorted(_field_names(cls)))}"
            )
        kw[k] = _coerce(cls, k, v, f"{path}.{k}")
    return cls(**kw)


# -- types: every value from a file is checked here, before any code uses it ------
@functools.cache
def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(cls, k: str, v: Any, path: str) -> Any:
    """``v`` checked against the declared type of ``cls.k`` (an int where a
    float is declared becomes a float); ConfigError naming ``path`` if it
    has the wrong type.  This is the one place where file values get typed;
    :meth:`RunConfig.validate` then checks ranges and relations."""
    if k in ("xps", "xps_rxqs"):
        if not isinstance(v, dict):
            raise ConfigError(
                path, f'a table of queue = "mask", e.g. {{0 = "1", 1 = "2"}}, got {_what(v)}'
            )
        out = {}
        for q, m in v.items():
            try:
                qi = int(q)
            except (TypeError, ValueError):
                raise ConfigError(path, f"queue {q!r} is not a number") from None
            if not isinstance(m, str):
                raise ConfigError(
                    f"{path}.{q}",
                    f'the mask is a string as {k.replace("xps", "xps_cpus") if k == "xps" else k} takes it, e.g. "3"',
                )
            out[qi] = m
        return out
    return _typed(_hints(cls)[k], v, path)


def _typed(tp: Any, v: Any, path: str) -> Any:
    ok, out = _match(tp, v, path)
    if not ok:
        raise ConfigError(path, f"{_describe(tp)}, got {_what(v)}")
    return out


def _match(tp: Any, v: Any, path: str) -> tuple[bool, Any]:
    """(True, the value) if ``v`` is of type ``tp``; an inner element of the
    wrong type raises ConfigError naming its own path (``path[i]``)."""
    if tp is Any:
        return True, v
    if tp is type(None):
        return v is None, v
    if tp is bool:
        return isinstance(v, bool), v
    if tp is int:
        return isinstance(v, int) and not isinstance(v, bool), v
    if tp is float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return False, v
        return True, float(v)
    if tp is str:
        return isinstance(v, str), v
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for alt in typing.get_args(tp):
            ok, out = _match(alt, v, path)
            if ok:
                return True, out
        return False, v
    if origin is list:
        if not isinstance(v, list):
            return False, v
        (elem,) = typing.get_args(tp)
        return True, [_typed(elem, x, f"{path}[{i}]") for i, x in enumerate(v)]
    if origin is dict:
        return isinstance(v, dict), v
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return isinstance(v, tp), v
    raise TypeError(f"config type {tp!r} of {path} has no check")  # a netq bug


def _describe(tp: Any) -> str:
    if tp is type(None):
        return "absent"
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        alts = [a for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(_describe(a) for a in alts)
    if origin is list:
        (elem,) = typing.get_args(tp)
        return f"a list of {_plural(elem)}"
    if origin is dict:
        return "a table"
    return getattr(tp, "__name__", str(tp))


def _plural(tp: Any) -> str:
    d = _describe(tp)
    return {"an integer": "integers", "a number": "numbers", "a string": "strings"}.get(
        d, "lists of " + _plural(typing.get_args(tp)[0]) if typing.get_origin(tp) is list else d
    )


def _what(v: Any) -> str:
    """A short description of a value of the wrong type, for the message."""
    kind = {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }.get(type(v), type(v).__name__)
    text = repr(v)
    return f"{kind} {text if len(text) <= 40 else text[:37] + '...'}"
