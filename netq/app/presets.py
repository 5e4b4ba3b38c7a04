"""Named experiments: ``python -m netq.run NAME``.

A preset is one or more variants (label, RunConfig) run one after another on
the same workload, and a short text saying what to look at.  Flags given on
the command line apply to every variant (after the preset's own settings).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from netq.machine.config import CostConfig, DeviceConfig, RunConfig, TrafficConfig
from netq.machine.plan import what_if_reasons
from shm.lock import FAIRNESS

from .figures import BUSYLOCK_COMMIT, BUSYLOCK_PPS, BUSYLOCK_SENDERS, ROOTLOCK_PPS

#: emulated costs that give the contended critical sections kernel-like
#: proportions (the busylock preset, the contention and generations workloads):
#: enqueue 1 us, dequeue 1 us, driver xmit 2 us
LOCK_COSTS: dict[str, Any] = {"enqueue_ns": 1000, "dequeue_ns": 1000, "xmit_ns": 2000}


@dataclass
class Preset:
    name: str
    summary: str
    explain: str
    variants: list[tuple[str, RunConfig]] = field(default_factory=list)
    #: result keys the comparison table shows, with headings
    compare: tuple[tuple[str, str], ...] = ()
    #: ratios printed under the table: (numerator label, denominator label,
    #: what it is), each as delivered pps and CPU ns per packet
    ratios: tuple[tuple[str, str, str], ...] = ()

    def configs(self) -> list[tuple[str, RunConfig]]:
        return [(label, copy.deepcopy(cfg)) for label, cfg in self.variants]


def _xps_variants(duration: float) -> list[tuple[str, RunConfig]]:
    def cfg(name: str, xps: dict[int, str]) -> RunConfig:
        return RunConfig(
            name=name,
            cpus=2,
            duration=duration,
            seed=1,
            devices=[DeviceConfig(name="eth0", tx_queues=4, xps=xps)],
            traffic=[TrafficConfig(sockets_per_cpu=4, proto="udp", connected=True, length=1000)],
        )

    return [
        ("xps 1:1", cfg("xps-1to1", {0: "1", 1: "2"})),
        ("no xps (hash)", cfg("xps-none", {})),
        ("shared map", cfg("xps-shared", {0: "3", 1: "3", 2: "3", 3: "3"})),
    ]


COMPARE_XPS = (
    ("pps", "delivered pps"),
    ("cpu_ns_per_packet", "CPU ns/pkt"),
    ("acq_bounces_per_packet", "acq-bounces/pkt"),
    ("contentions_per_packet", "contentions/pkt"),
    ("completion_locality", "local completions"),
)

COMPARE_LOCK = (
    ("pps", "delivered pps"),
    ("projected_pps", "projected pps"),
    ("cpu_ns_per_packet", "CPU ns/pkt"),
    ("owner_ahead_per_relock", "ahead of qdisc owner"),
    ("owner_wait_ns_per_relock", "owner wait ns"),
    ("packets_per_qdisc_run", "pkts/qdisc run"),
    ("busylock_taken", "busylock takes"),
)


COMPARE_RECURSION = (
    ("recursion_limit", "limit"),
    ("xmit_recursion_max", "deepest passed"),
    ("xmit_recursion_cut", "cut at"),
    ("drops_XMIT_RECURSION", "XMIT_RECURSION drops"),
    ("drops_DEAD_LOOP_OWNER", "DEAD_LOOP_OWNER drops"),
    ("pps", "delivered pps"),
)


def _busylock_variants(duration: float) -> list[tuple[str, RunConfig]]:
    """rootlock vs busylock on 3.13's locked pfifo_fast.  rootlock is a
    what-if there (busylock came in 2.6.36, before every profile netq has):
    2.6.35's root lock with 3.13's other traits, the baseline busylock was
    written against; its labels say so."""
    out = []
    for strategy in ("rootlock", "busylock"):
        tag = " (what-if)" if strategy == "rootlock" else ""
        for fairness in FAIRNESS:
            out.append(
                (
                    f"{strategy}{tag} {fairness}",
                    RunConfig(
                        name=f"{strategy}-{fairness}",
                        cpus=4,
                        duration=duration,
                        seed=1,
                        strategy=strategy,
                        lock_fairness=fairness,
                        costs=CostConfig(**LOCK_COSTS),
                        devices=[DeviceConfig(name="eth0", tx_queues=1, ring_size=256)],
                        traffic=[TrafficConfig(sockets_per_cpu=1, proto="udp", length=1000)],
                    ),
                )
            )
    return out


def _recursion_variants(duration: float) -> list[tuple[str, RunConfig]]:
    out = []
    for profile in ("3.13", "6.18"):
        out.append(
            (
                f"profile {profile}",
                RunConfig(
                    name=f"recursion-{profile}",
                    cpus=2,
                    duration=duration,
                    seed=1,
                    profile=profile,
                    devices=recursion_devices(),
                    traffic=[
                        TrafficConfig(device="stk0", sockets_per_cpu=1, rate_pps=2000),
                        TrafficConfig(device="loopa", sockets_per_cpu=1, rate_pps=500),
                        TrafficConfig(device="tun0", sockets_per_cpu=1, rate_pps=500),
                    ],
                ),
            )
        )
    return out


COMPARE_GENERATIONS = (
    ("pps", "delivered pps"),
    ("projected_pps", "projected pps"),
    ("cpu_ns_per_packet", "CPU ns/pkt"),
    ("top_lock", "top contended lock"),
    ("top_lock_wait_ns", "its wait"),
    ("owner_ahead_per_relock", "ahead of qdisc owner"),
    ("anchor", "kernel's figure"),
)


#: SO_SNDBUF of the generations workload: 83 skbs of 1000 bytes (1576 with
#: their truesize) in flight per socket, under fq's flow_limit of 100
GENERATIONS_SNDBUF = 131072
#: the generations workload's cost of a cache line that another CPU touched last
GENERATIONS_BOUNCE_NS = 1000


def _generation_variants(duration: float) -> list[tuple[str, RunConfig]]:
    """One workload (4 senders flooding one TX queue) under every generation,
    each as that kernel runs it: 3.13's locked pfifo_fast under busylock;
    from 4.16 pfifo_fast is TCQ_F_NOLOCK (4.19 without, 6.18 and 6.19 with
    the bypass), whatever the strategy: 6.19's defer_list never meets it.
    Then busylock (6.18) and the defer_list (6.19) where they do meet: on
    locked qdiscs, pfifo (bypasses like pfifo_fast) and fq (never bypasses,
    the qdisc of the kernel's defer_list figures).  Two what-ifs, labelled:
    rootlock (2.6.35's root lock on 2.6.37, which has busylock), and
    pfifo_fast made locked again under 6.18 (what NOLOCK buys)."""
    #: (label, profile, strategy, qdisc, pfifo_fast_nolock what-if or None)
    gens = [
        ("rootlock 2.6.37 (what-if)", "2.6.37", "rootlock", "pfifo_fast", None),
        ("busylock 3.13", "3.13", None, "pfifo_fast", None),
        ("nolock 4.19", "4.19", None, "pfifo_fast", None),
        ("nolock+bypass 6.18", "6.18", None, "pfifo_fast", None),
        ("nolock+bypass 6.19", "6.19", None, "pfifo_fast", None),
        ("locked pfifo_fast 6.18 (what-if)", "6.18", None, "pfifo_fast", False),
        ("pfifo busylock 6.18", "6.18", None, "pfifo", None),
        ("pfifo defer 6.19", "6.19", None, "pfifo", None),
        ("fq busylock 6.18", "6.18", None, "fq", None),
        ("fq defer 6.19", "6.19", None, "fq", None),
    ]
    out = []
    for label, profile, strategy, qdisc, nolock in gens:
        cfg = RunConfig(
            name=f"gen-{label.replace(' ', '-')}",
            cpus=4,
            duration=duration,
            seed=1,
            profile=profile,
            strategy=strategy,
            pfifo_fast_nolock=nolock,
            costs=CostConfig(**LOCK_COSTS, bounce_ns=GENERATIONS_BOUNCE_NS),
            devices=[DeviceConfig(name="eth0", tx_queues=1, ring_size=256, qdisc=qdisc)],
            traffic=[
                TrafficConfig(
                    sockets_per_cpu=1, proto="udp", length=1000, sndbuf=GENERATIONS_SNDBUF
                )
            ],
        )
        # every label says whether some kernel has the configuration
        assert ("(what-if)" in label) == bool(what_if_reasons(cfg)), label
        out.append((label, cfg))
    return out


RATIOS_GENERATIONS = (
    ("fq defer 6.19", "fq busylock 6.18", "defer / busylock, fq"),
    ("pfifo defer 6.19", "pfifo busylock 6.18", "defer / busylock, pfifo"),
    ("nolock+bypass 6.19", "nolock+bypass 6.18", "6.19 / 6.18, pfifo_fast (NOLOCK in both)"),
    (
        "nolock+bypass 6.18",
        "locked pfifo_fast 6.18 (what-if)",
        "NOLOCK / locked pfifo_fast, 6.18 (what-if)",
    ),
)


def recursion_devices(stack_depth: int = 9) -> list[DeviceConfig]:
    """eth0; a legal stack stk0→…→stk{n-1}→eth0 of vlans; a vlan loop
    loopa→loopb→loopa (LLTX: cut by xmit_recursion); a tunnel loop
    tun0→tun1→tun0 (not LLTX: cut by the xmit_lock_owner test)."""
    devs = [DeviceConfig(name="eth0", tx_queues=2)]
    for i in range(stack_depth):
        lower = f"stk{i + 1}" if i + 1 < stack_depth else "eth0"
        devs.append(DeviceConfig(name=f"stk{i}", kind="vlan", lower=lower))
    devs += [
        DeviceConfig(name="loopa", kind="vlan", lower="loopb"),
        DeviceConfig(name="loopb", kind="vlan", lower="loopa"),
        DeviceConfig(name="tun0", kind="tunnel", lower="tun1", lltx=False),
        DeviceConfig(name="tun1", kind="tunnel", lower="tun0", lltx=False),
    ]
    return devs


def default_preset() -> Preset:
    p = presets()["xps"]
    return Preset(
        "default",
        "2 CPUs on a 4-queue device, with XPS 1:1 and without (flows hashed)",
        p.explain,
        p.variants[:2],
        p.compare,
    )


def presets(duration: float = 2.0) -> dict[str, Preset]:
    return {
        p.name: p
        for p in (
            Preset(
                "xps",
                "one workload with XPS 1:1, without XPS, and with a shared map",
                "With XPS 1:1 each CPU keeps its own TX queue, qdisc and locks: acq-bounces per "
                "packet stay near 0 and every completion lands on the CPU that sent (irq CPU = "
                "sender). Without XPS each CPU's flows are hashed over all 4 queues, so both CPUs "
                "take the same queues' root_lock and _xmit_lock: bounces and contentions appear, "
                "and completions land on other CPUs.",
                _xps_variants(duration),
                COMPARE_XPS,
            ),
            Preset(
                "busylock",
                "one TX queue, 4 senders flooding: rootlock vs busylock, fifo vs unfair locks",
                "The qdisc-running CPU must re-take root_lock after every packet it hands to the "
                "driver. Without busylock (rootlock) it queues behind every enqueuer: with a FIFO "
                "lock it finds ~N-1 CPUs ahead of it ('ahead of qdisc owner'). busylock makes "
                "enqueuers serialise on a second lock first, so the owner finds at most one ahead "
                f"and dequeues faster (commit {BUSYLOCK_COMMIT}: ~{ROOTLOCK_PPS / 1e3:g} kpps -> "
                f"~{BUSYLOCK_PPS / 1e3:g} kpps on {BUSYLOCK_SENDERS} senders). "
                "On the wall clock, emulated costs (1 us enqueue, 1 us dequeue, 2 us driver "
                "xmit) give the critical sections kernel-like proportions; the virtual clock "
                "prices them itself (its unfair rows are left out: it grants in request order), "
                "and docs/studies/busylock-commit.toml runs the commit's own workload.",
                _busylock_variants(duration),
                COMPARE_LOCK,
            ),
            Preset(
                "generations",
                "fifteen years of answers to the contended qdisc lock, one workload",
                "Four senders flood one TX queue under each kernel as it runs its default "
                "qdisc: every sender takes root_lock (rootlock, a what-if: 2.6.37 has "
                "busylock); senders that find the qdisc running queue on busylock first "
                "(3.13); from 4.16 pfifo_fast is TCQ_F_NOLOCK, serialised by a seqlock trylock "
                "and the MISSED bit, without (4.19) and with (6.18, 6.19) the empty-queue "
                "bypass: 6.19's defer_list never meets it. busylock (6.18) and the defer_list "
                "(6.19: senders push onto a lock-free list and one sends for all) meet locked "
                "qdiscs: pfifo, which bypasses like pfifo_fast, and fq, which never does (the "
                "kernel measured defer on fq). 'locked pfifo_fast 6.18' is a what-if: what "
                "NOLOCK buys. On the wall clock, emulated costs include a 1 us cache-line "
                "bounce whenever a lock or the defer_list head changes CPU (the virtual clock "
                "prices them itself). SO_SNDBUF is 128 KiB so that no flow exceeds fq's "
                "flow_limit. The kernel's own figures are beside each row; on the wall clock "
                "compare the direction and the mechanism, not the magnitude (see README: "
                "Load studies); docs/studies/defer-list.toml measures the defer_list's "
                "figures on the virtual clock.",
                _generation_variants(duration),
                COMPARE_GENERATIONS,
                RATIOS_GENERATIONS,
            ),
            Preset(
                "recursion",
                "stacked virtual devices: a legal stack of 9 vlans and two loops",
                "Each noqueue device re-enters dev_queue_xmit on its lower device with the per-CPU "
                "xmit_recursion counter raised. The 9-deep stack passes under both profiles; the "
                "vlan loop is cut when the counter exceeds the profile's limit (3.13: 10, 6.18: 8), "
                "the tunnel loop (not LLTX) by the xmit_lock_owner == cpu test, each with the "
                "kernel's rate-limited message and a named drop reason.",
                _recursion_variants(duration),
                COMPARE_RECURSION,
            ),
        )
    }
