"""The studies: their points (in run order) and each point's RunConfig."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

from netq.app.presets import GENERATIONS_BOUNCE_NS, GENERATIONS_SNDBUF, LOCK_COSTS
from netq.kernel.profiles import DEFAULT_PROFILE, PROFILES
from netq.machine.config import CostConfig, DeviceConfig, RunConfig, TrafficConfig, from_dict
from netq.machine.plan import what_if_reasons
from shm.lock import FAIRNESS

from .rows import KEY, _cell

XPS_MODES = ("1:1", "none", "shared")
#: generations: (strategy, profile) of the kernel before and after 100dfa74cad9
GENERATIONS = (("busylock", "6.18"), ("defer", "6.19"))
#: pfifo_fast is TCQ_F_NOLOCK in both kernels (the defer_list never meets
#: it: the pair measures the same code); pfifo and fq are locked qdiscs, the
#: ones busylock and the defer_list are about (pfifo bypasses like
#: pfifo_fast, fq never does)
GEN_QDISCS = ("pfifo_fast", "pfifo", "fq")
GEN_LOCK_WAIT = ("adaptive", "spin")
QUICK_DURATION = 0.3


@dataclass(frozen=True)
class Point:
    """One configuration of a study (repetitions are separate rows)."""

    study: str
    cpus: int
    tx_queues: int
    xps: str  # "1:1", "none", "shared", or "-" (one queue: no XPS)
    strategy: str
    lock_fairness: str
    bounce_ns: int
    duration_s: float
    #: the kernel profile (netq's default unless the study asks for one)
    profile: str = DEFAULT_PROFILE
    #: the device's qdisc ("default": pfifo_fast on one TX queue, mq of pfifo_fast on more)
    qdisc: str = "default"
    #: lock waiting asked for: "spin", "block", "adaptive", or "auto" (netq
    #: chooses from processes vs host cores; the row's lock_waiting says what)
    lock_wait: str = "auto"
    #: pfifo_fast is TCQ_F_NOLOCK (resolved: the profile's unless a what-if)
    pfifo_fast_nolock: bool = False
    #: what ran, for tables and plots: the strategy only where it meets the
    #: qdisc ("nolock" where a NOLOCK pfifo_fast takes its own branch), the
    #: profile, "(what-if)" where no kernel has the configuration
    series: str = ""
    #: "wall" or "virtual" (docs/virtual-time.md)
    clock: str = "wall"
    #: a file study's point: its experiment as JSON (netq.app.sweep.filestudy);
    #: "" for the built-in studies
    spec: str = ""

    def key(self, rep: int) -> tuple[str, ...]:
        d = asdict(self)
        d["rep"] = rep
        return tuple(_cell(d[k]) for k in KEY)

    def label(self) -> str:
        if self.spec:  # a file study's point: its axes' values
            return self.series
        parts = [f"{self.cpus} cpu", f"{self.tx_queues} txq"]
        if self.xps != "-":
            parts.append(f"xps {self.xps}")
        if self.study == "generations":
            parts += [
                self.series,
                self.qdisc,
                self.lock_fairness,
                f"{self.lock_wait} waiting",
            ]
        elif self.study == "contention":
            parts += [self.series, self.lock_fairness]
        else:
            parts += [self.strategy, self.lock_fairness]
        if self.bounce_ns:
            parts.append(f"bounce {self.bounce_ns}")
        return ", ".join(parts)

    def config(self, rep: int) -> RunConfig:
        """The RunConfig of this point's repetition ``rep``."""
        if self.spec:  # a file study's: its experiment, this duration, clock and seed
            cfg = from_dict(json.loads(self.spec))
            cfg.name = f"{self.study}: {self.series}"
            cfg.duration, cfg.clock, cfg.seed = self.duration_s, self.clock, rep + 1
            return cfg
        if self.study == "contention":
            costs = CostConfig(**LOCK_COSTS, bounce_ns=self.bounce_ns)
            traffic = TrafficConfig(sockets_per_cpu=1, proto="udp", length=1000)
        elif self.study == "generations":
            costs = CostConfig(**LOCK_COSTS, bounce_ns=self.bounce_ns)
            traffic = TrafficConfig(
                sockets_per_cpu=1, proto="udp", length=1000, sndbuf=GENERATIONS_SNDBUF
            )
        else:
            costs = CostConfig(bounce_ns=self.bounce_ns)
            traffic = TrafficConfig(sockets_per_cpu=4, proto="udp", connected=True, length=1000)
        if self.clock == "virtual":
            # the virtual clock prices the kernel's work itself (the era's
            # table); the wall clock's emulated busy-waits are not used
            costs = CostConfig(bounce_ns=self.bounce_ns)
        return RunConfig(
            clock=self.clock,
            name=f"{self.study}: {self.label()}",
            cpus=self.cpus,
            duration=self.duration_s,
            seed=rep + 1,
            profile=self.profile,
            strategy=self.strategy,
            pfifo_fast_nolock=self.pfifo_fast_nolock,
            lock_fairness=self.lock_fairness,
            lock_wait=None if self.lock_wait == "auto" else self.lock_wait,
            costs=costs,
            devices=[
                DeviceConfig(
                    name="eth0",
                    tx_queues=self.tx_queues,
                    ring_size=256,
                    qdisc=self.qdisc,
                    xps=xps_map(self.xps, self.cpus, self.tx_queues),
                )
            ],
            traffic=[traffic],
        )


def xps_map(mode: str, cpus: int, queues: int) -> dict[int, str]:
    """xps_cpus masks (hex, as sysfs takes them) per queue.

    ``1:1``: CPU i -> queue i mod n (a queue no CPU maps to gets no mask);
    ``shared``: every CPU in every queue's mask; ``none``/``-``: no XPS."""
    if mode == "1:1":
        masks = [0] * queues
        for c in range(cpus):
            masks[c % queues] |= 1 << c
        return {q: format(m, "x") for q, m in enumerate(masks) if m}
    if mode == "shared":
        return {q: format((1 << cpus) - 1, "x") for q in range(queues)}
    return {}


@dataclass(frozen=True)
class Study:
    name: str
    summary: str
    #: seconds of traffic per point, and repetitions, unless overridden
    duration: float
    repeat: int
    bounce: tuple[int, ...]
    #: (quick, duration, bounce values) -> points, in run order
    points: Callable[[bool, float, tuple[int, ...]], list[Point]]
    #: bounce values with --quick (and no --bounce)
    quick_bounce: tuple[int, ...] = (0,)


def series_of(strategy: str, profile: str, qdisc: str, nolock: bool) -> str:
    """What a point runs, as a label: "nolock 6.18" for a TCQ_F_NOLOCK
    pfifo_fast (no strategy meets it), else "<strategy> <profile>", then the
    qdisc if not the default, then "(what-if)" if no kernel has it."""
    pf = qdisc in ("default", "pfifo_fast")
    name = f"nolock {profile}" if pf and nolock else f"{strategy} {profile}"
    if qdisc != "default":
        name += f" {qdisc}"
    cfg = RunConfig(profile=profile, strategy=strategy, pfifo_fast_nolock=nolock)
    if what_if_reasons(cfg):
        name += " (what-if)"
    return name


#: contention, one TX queue: (strategy, profile, qdisc) of each series.
#: rootlock on 3.13 is a what-if (busylock came in 2.6.36, before every
#: profile), kept as the baseline busylock was written against; then 3.13's
#: locked pfifo_fast under busylock; 6.18's pfifo_fast, TCQ_F_NOLOCK (the
#: default qdisc of every kernel since 4.16); and busylock (6.18) and the
#: defer_list (6.19) on pfifo, the locked bypassing qdisc they meet.
CONTENTION_SERIES = (
    ("rootlock", "3.13", "default"),
    ("busylock", "3.13", "default"),
    ("busylock", "6.18", "default"),
    ("busylock", "6.18", "pfifo"),
    ("defer", "6.19", "pfifo"),
)


def _point(study: str, n: int, strategy: str, fair: str, b: int, dur: float, **kw) -> Point:
    """A one-queue point with its resolved pfifo_fast flags and series."""
    prof = kw.get("profile", DEFAULT_PROFILE)
    qd = kw.get("qdisc", "default")
    nolock = PROFILES[prof].pfifo_fast_nolock
    return Point(
        study,
        n,
        1,
        "-",
        strategy,
        fair,
        b,
        dur,
        pfifo_fast_nolock=nolock,
        series=series_of(strategy, prof, qd, nolock),
        **kw,
    )


def _contention(quick: bool, dur: float, bounce: tuple[int, ...]) -> list[Point]:
    senders = (1, 4) if quick else (1, 2, 4, 8)
    return [
        _point("contention", n, s, f, b, dur, profile=prof, qdisc=qd)
        for b in bounce
        for n in senders
        for s, prof, qd in CONTENTION_SERIES
        for f in FAIRNESS
    ]


def _xps(quick: bool, dur: float, bounce: tuple[int, ...]) -> list[Point]:
    cpus, queues = ((1, 2), (2,)) if quick else ((1, 2, 4), (2, 4))
    return [
        Point("xps", c, n, m, "busylock", "fifo", b, dur)
        for b in bounce
        for n in queues
        for c in cpus
        for m in XPS_MODES
    ]


def _queues(quick: bool, dur: float, bounce: tuple[int, ...]) -> list[Point]:
    queues = (1, 4) if quick else (1, 2, 4, 8)
    return [
        Point("queues", 2, n, m, "busylock", "fifo", b, dur)
        for b in bounce
        for n in queues
        for m in ("1:1", "none")
    ]


def _generations(quick: bool, dur: float, bounce: tuple[int, ...]) -> list[Point]:
    """6.18 and 6.19 side by side: for every qdisc, lock waiting and sender
    count the two kernels run one after the other.  On pfifo_fast both are
    TCQ_F_NOLOCK (the defer_list never meets it); on pfifo and fq busylock
    (6.18) meets the defer_list (6.19)."""
    senders = (1, 4) if quick else (1, 2, 4, 8)
    waits = ("adaptive",) if quick else GEN_LOCK_WAIT
    return [
        _point("generations", n, s, "fifo", b, dur, profile=prof, qdisc=qd, lock_wait=w)
        for b in bounce
        for qd in GEN_QDISCS
        for w in waits
        for n in senders
        for s, prof in GENERATIONS
    ]


STUDIES: dict[str, Study] = {
    s.name: s
    for s in (
        Study(
            "contention",
            "1 TX queue, 1/2/4/8 senders: rootlock 3.13 (what-if), busylock 3.13, nolock 6.18, "
            "busylock 6.18 pfifo, defer 6.19 pfifo x fifo/unfair",
            1.5,
            3,
            (0, 2000),
            _contention,
        ),
        Study(
            "xps",
            "1/2/4 CPUs x 2/4 TX queues x XPS 1:1 / none (hash) / shared map",
            2.0,
            3,
            (0, 2000),
            _xps,
        ),
        Study("queues", "2 CPUs, 1/2/4/8 TX queues, XPS 1:1 vs none", 3.0, 3, (0, 2000), _queues),
        Study(
            "generations",
            "1 TX queue, 1/2/4/8 senders: 6.18 vs 6.19 x pfifo_fast (NOLOCK in both)/pfifo/fq "
            "x adaptive/spin lock waiting",
            1.5,
            3,
            (GENERATIONS_BOUNCE_NS,),
            _generations,
            quick_bounce=(GENERATIONS_BOUNCE_NS,),
        ),
    )
}


@dataclass(frozen=True)
class Options:
    study: Study
    out: str
    duration: float
    repeat: int
    bounce: tuple[int, ...]
    quick: bool
    resume: bool
    #: the runs' clock ("wall" or "virtual")
    clock: str = "wall"
    #: a Dask scheduler's address (``tcp://HOST:8786``), or None
    scheduler: str | None = None
    #: worker processes of a local Dask cluster to start, or None
    local_workers: int | None = None
    #: the TOML file the study came from (--file), or None for a built-in one
    file: str | None = None

    @property
    def distributed(self) -> bool:
        return self.scheduler is not None or self.local_workers is not None

    def plan(self) -> list[tuple[Point, int]]:
        """(point, repetition) in run order: every point once, then again."""
        points = self.study.points(self.quick, self.duration, self.bounce)
        if self.clock != "wall":
            # the virtual clock grants locks in request order: a built-in
            # study's unfair-lock points would repeat its FIFO ones (a file
            # study's are refused before anything runs)
            points = [replace(p, clock=self.clock) for p in points if p.lock_fairness == "fifo"]
        return [(p, r) for r in range(self.repeat) for p in points]

    @property
    def csv_path(self) -> str:
        return os.path.join(self.out, f"{self.study.name}.csv")
