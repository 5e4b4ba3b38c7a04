"""``python -m netq.run stress``: the CI stress job.

Runs seeded random configurations of the emulated transmit path one after
another until a time budget is used up, and checks after each run what SPEC.md
promises (Invariants): every skb delivered or dropped for a named reason, the
qdisc identities, flow order, no lock held, consistent lock statistics, no
worker crash, no stall (watchdog), and no IPC object or child process left
behind.  With ``--chaos`` it adds runs that break something on purpose
(``RunConfig.events``): a killed worker, a stopped worker past the watchdog, a
slow NIC, ``ethtool -L`` and ``ip link set down``/``up`` mid-run.  Each chaos
kind has an expected status known in advance; anything else is a failure.

Why it is built this way:

* **Reproducible from the seed.**  Configuration *i* is a pure function of
  (seed, i, --chaos, --run-seconds): :func:`generate` seeds its own
  ``random.Random`` with a string of those values, so re-running one
  configuration (``--only I``) does not need the ones before it.  Every
  configuration gets its own ``RunConfig.seed`` (hashrnd, socket hashes,
  lengths), so a rerun picks the same queues; the OS schedule is the only
  thing that varies.  ``cpu_map`` names only host cores this process may use,
  so a configuration is host-dependent there and nowhere else.  The mapping
  from seed to configurations holds for one version of netq and of this file
  (a new profile, say, changes it): the TOML a failure writes does not.
* **Every generated config validates.**  The generator builds only what
  :meth:`RunConfig.validate` accepts; if validation rejects one, that is a bug
  here, and it is reported as such (not skipped).
* **Bounded.**  Each run is short (``--run-seconds`` of traffic, or a packet
  budget sized from the CPUs' rates), drains in well under a second (queue
  lengths are sized from the line rate), and has a hard limit: a run that
  outlives it (the supervisor itself hung) is ended with SIGALRM, which the
  supervisor treats like SIGTERM (report, cleanup) and this job as a failure.
  No run starts when its estimate would overrun ``--budget`` (at least one
  run always starts).
* **In process.**  The supervisor runs in this process, so every IPC object a
  run creates carries this process's pid (``/netq.<pid>.…``); after each run
  the job looks for such objects in /dev/shm and for child processes, reports
  them as failures and removes them so that later runs are not blamed.
* **Failures come with a reproducer**: the configuration as TOML that
  ``python -m netq.run --config FILE`` runs, written next to the JUnit/JSON
  output (else to a temporary directory), and the command lines.

Switches for configurations netq once mishandled (both fixed; kept so a
regression can be chased with the generator):

* ``COVER_EVERY_CPU``: give the first traffic group every CPU.  A CPU
  without sockets used to crash; it now only serves softirqs, so the
  generator leaves some CPUs without sockets.
* ``LLTX_NOQUEUE_PHYS``: a physical device with ``lltx = true`` and
  ``qdisc = "noqueue"`` let several CPUs write one single-producer TX ring;
  validation now rejects it, so the generator never makes it.

Not a netq bug, but a trap for a generator: a loop of non-LLTX virtual
devices entered at two devices by two CPUs deadlocks on its _xmit_locks
(ABBA), in the kernel as here; see :func:`_no_lock_order_cycle`.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import random
import signal
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

from netq.machine.config import (
    ConfigError,
    CostConfig,
    DeviceConfig,
    EventConfig,
    RunConfig,
    TrafficConfig,
)
from shm.ipc import child_pids

from .run import output_path_problem
from netq.kernel.kstructs import FAULTS

from netq.kernel.profiles import PROFILES
from netq.kernel.sched.sch_fq import FQ_FLOW_PLIMIT, FQ_LIMIT

#: configuration i is a chaos run when --chaos is given and i % CHAOS_EVERY == CHAOS_AT
CHAOS_EVERY, CHAOS_AT = 3, 2
#: chaos kinds in the order they take turns, and the status each must end in
CHAOS_EXPECT: dict[str, str] = {
    "kill": "fault",
    "stop": "stalled",
    "slow_nic": "ok",
    "set_real_num_tx_queues": "ok",
    "dev_close": "ok",
}
CHAOS_KINDS = tuple(CHAOS_EXPECT)
#: give the first traffic group every CPU (see the module docstring)
COVER_EVERY_CPU = False
#: allow a physical device that is both LLTX and noqueue (rejected by
#: validation; see the module docstring)
LLTX_NOQUEUE_PHYS = False
#: longest drain the generator allows itself (backlog / line rate), seconds
DRAIN_BOUND_S = 0.4
#: most sockets in one configuration
MAX_SOCKETS = 384
#: a flooding CPU's share of a packet budget is at most this
FLOOD_QUOTA = 800
#: first guess of a run's overhead (platform measurement, fork, drain, report)
OVERHEAD_GUESS_S = 1.2
#: a run that takes this much longer than its estimate is ended (hung)
HARD_LIMIT_SLACK_S = 30.0

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143


# -- the generator --------------------------------------------------------------------------
@dataclass
class Case:
    """One configuration of the job, and what it must end in."""

    seed: int
    index: int
    kind: str  # "random" or a chaos kind
    cfg: RunConfig
    expect: str  # the status the run must end with
    desc: str


def case_kind(index: int, chaos: bool) -> str:
    """Which kind of run configuration ``index`` is."""
    if chaos and index % CHAOS_EVERY == CHAOS_AT:
        return CHAOS_KINDS[(index // CHAOS_EVERY) % len(CHAOS_KINDS)]
    return "random"


def generate(seed: int, index: int, chaos: bool = False, run_seconds: float = 0.5) -> Case:
    """Configuration ``index`` of the job seeded with ``seed`` (deterministic).

    Raises :class:`GeneratorBug` if the configuration does not validate.
    """
    kind = case_kind(index, chaos)
    rng = random.Random(f"netq-stress:{seed}:{index}:{kind}:{run_seconds!r}")
    cfg = _random_config(rng, seed, index, run_seconds, kind)
    if kind != "random":
        _add_chaos(rng, cfg, kind, run_seconds)
    try:
        cfg.validate()
    except ConfigError as e:
        raise GeneratorBug(f"seed {seed} index {index}: generated config does not validate: {e}") from e
    expect = CHAOS_EXPECT.get(kind, "ok")
    return Case(seed, index, kind, cfg, expect, describe(cfg, kind))


class GeneratorBug(Exception):
    """The generator produced a configuration that RunConfig.validate() rejects."""


def _random_config(rng: random.Random, seed: int, index: int, run_seconds: float,
                   kind: str) -> RunConfig:
    cpus = rng.randint(1, 4)
    profile = rng.choice(sorted(PROFILES))
    limit = PROFILES[profile].recursion_limit
    cfg = RunConfig(name=f"stress-{seed}-{index:03d}", cpus=cpus, profile=profile,
                    seed=rng.getrandbits(32))
    cfg.strategy = rng.choice([None, "rootlock", "busylock"])
    cfg.lock_fairness = rng.choice(["fifo", "unfair"])
    cfg.lock_wait = rng.choice([None, None, "spin", "block", "adaptive"])
    if rng.random() < 0.15:
        cfg.spin_ns = rng.choice([0, 1000, 5000, 20000, 50000])
    cfg.stall_timeout = rng.choice([3.0, 3.0, 4.0])
    if rng.random() < 0.2:
        cfg.nic_batch = rng.choice([1, 4, 16, 64])
    if rng.random() < 0.15:
        cores = sorted(os.sched_getaffinity(0))
        style = rng.choice(["one core", "reversed"])
        cfg.cpu_map = ([cores[0]] * cpus if style == "one core"
                       else [cores[(len(cores) - 1 - c) % len(cores)] for c in range(cpus)])
    if rng.random() < 0.3:
        cfg.costs = CostConfig(enqueue_ns=rng.choice([0, 500, 1000, 2000]),
                               dequeue_ns=rng.choice([0, 500, 1000, 2000]),
                               xmit_ns=rng.choice([0, 1000, 2000, 3000]),
                               bounce_ns=rng.choice([0, 0, 300, 1000]))

    # devices: one or two physical devices, maybe a stack, maybe a loop
    nphys = 2 if rng.random() < 0.2 else 1
    need_multiq = kind == "set_real_num_tx_queues"
    devices = [_phys(rng, f"eth{k}", cpus, min_queues=2 if need_multiq and k == 0 else 1)
               for k in range(nphys)]
    bottoms = [d.name for d in devices]
    if rng.random() < 0.3:
        devices += _loop(rng)
        bottoms.append(devices[-1].name)
    if rng.random() < 0.55:
        lower = rng.choice(bottoms) if rng.random() < 0.2 else rng.choice(bottoms[:nphys])
        # a legal stack passes at depth <= limit; sometimes deeper, to be cut
        depth = rng.randint(1, limit + 1) if rng.random() < 0.8 else rng.randint(limit + 2, limit + 4)
        devices += _stack(rng, lower, depth)
    for d in devices:
        if not d.is_virtual:
            d.bql = rng.random() < 0.8
            # fq (3.12+): never bypasses, one flow per socket (shrunk back
            # to pfifo by _bound_drain if its flows could not drain in time)
            if profile != "2.6.37" and d.qdisc != "noqueue" and rng.random() < 0.15:
                d.qdisc = "fq"
    cfg.devices = devices
    by_name = {d.name: d for d in devices}

    # traffic: group 0 on every CPU, on a device whose packets reach a NIC
    delivering = [d.name for d in devices if path_verdict(by_name, d.name, limit) == "delivers"]
    ngroups = rng.choice([1, 1, 2, 2, 3])
    groups = []
    for g in range(ngroups):
        dev = rng.choice(delivering) if g == 0 else rng.choice([d.name for d in devices])
        cpus_of = None
        if g > 0 or not COVER_EVERY_CPU:
            if cpus > 1 and rng.random() < 0.5:
                cpus_of = sorted(rng.sample(range(cpus), rng.randint(1, cpus)))
        groups.append(_traffic(rng, dev, cpus_of))
    _cap_sockets(groups, cpus)
    cfg.traffic = groups
    _no_lock_order_cycle(cfg)

    # how long: a duration, or a packet budget the slowest CPU can send in time
    rates = cpu_rates(cfg)
    if kind == "random" and rng.random() < 0.35:
        per_cpu = min(FLOOD_QUOTA if r == 0 else max(int(r * run_seconds * 0.8), 1) for r in rates)
        cfg.packets = rng.randint(min(10, per_cpu), per_cpu) * cpus
    else:
        cfg.duration = round(rng.uniform(min(0.15, run_seconds), run_seconds), 3)
    _bound_drain(cfg)
    return cfg


def _mask_text(rng: random.Random, mask: int) -> str:
    """An xps_cpus mask as one would write it to sysfs."""
    style = rng.choice(["hex", "hex", "padded", "upper", "echo"])
    if style == "padded":
        return f"{mask:08x}"
    if style == "upper":
        return f"{mask:X}"
    if style == "echo":
        return f"{mask:x}\n"  # echo 3 > xps_cpus
    return f"{mask:x}"


def _phys(rng: random.Random, name: str, cpus: int, min_queues: int = 1) -> DeviceConfig:
    tx = rng.choice([q for q in (1, 1, 2, 2, 3, 4, 4, 6, 8) if q >= min_queues] or [min_queues])
    d = DeviceConfig(name=name, tx_queues=tx)
    if tx > 1 and rng.random() < 0.2:
        d.real_tx_queues = rng.randint(1, tx)
    d.ring_size = rng.choice([4, 8, 8, 16, 16, 32, 32, 64, 256])
    d.tx_queue_len = rng.choice([8, 32, 100, 500, 1000])
    qdiscs = ["default", "default", "pfifo_fast", "pfifo"] + (["mq", "mq"] if tx > 1 else [])
    d.qdisc = "noqueue" if rng.random() < 0.07 else rng.choice(qdiscs)
    d.lltx = rng.choice([None, None, None, False, True])
    if d.lltx and d.qdisc == "noqueue" and not LLTX_NOQUEUE_PHYS:
        d.lltx = None
    style = rng.choice(["none", "none", "1:1", "shared", "random"])
    full = (1 << cpus) - 1
    if style == "1:1":
        d.xps = {q: _mask_text(rng, 1 << q) for q in range(min(tx, cpus))}
    elif style == "shared":
        d.xps = {q: _mask_text(rng, full) for q in range(tx)}
    elif style == "random":
        d.xps = {q: _mask_text(rng, rng.randint(0, full)) for q in range(tx) if rng.random() < 0.7}
    if tx > 1 and rng.random() < 0.15:
        num_tc = rng.randint(1, min(4, tx))
        if rng.random() < 0.5:
            per = tx // num_tc
            d.tc_to_txq = [[per if t < num_tc - 1 else tx - per * (num_tc - 1), t * per]
                           for t in range(num_tc)]
        else:
            pairs = []
            for _ in range(num_tc):
                count = rng.randint(1, tx)
                pairs.append([count, rng.randint(0, tx - count)])
            d.tc_to_txq = pairs
        d.num_tc = num_tc
        d.prio_tc_map = [rng.randrange(num_tc) for _ in range(16)]
    if tx > 1 and rng.random() < 0.1:
        d.select_queue = "priority"
    if rng.random() < 0.25:
        d.irq_cpus = [rng.randrange(cpus) for _ in range(tx)]
    r = rng.random()
    if r < 0.15:
        d.line_rate_bps = 1e9
    elif r < 0.25:
        d.line_rate_bps = 100e6
    elif r < 0.3:
        d.line_rate_bps = 0.0
    if rng.random() < 0.15:
        d.line_rate_pps = rng.choice([20000.0, 100000.0])
    if rng.random() < 0.1:
        d.wire_overhead = rng.randint(0, 64)
    if rng.random() < 0.2:
        d.wake_thresh = rng.randint(1, d.ring_size)
    return d


def _virtual(rng: random.Random, name: str, lower: str) -> DeviceConfig:
    kind = rng.choice(["vlan", "tunnel"])
    return DeviceConfig(name=name, kind=kind, lower=lower, lltx=rng.choice([None, True, False]))


def _stack(rng: random.Random, lower: str, depth: int) -> list[DeviceConfig]:
    """vs0 → vs1 → … → vs{depth-1} → lower."""
    return [_virtual(rng, f"vs{k}", f"vs{k + 1}" if k + 1 < depth else lower) for k in range(depth)]


def _loop(rng: random.Random) -> list[DeviceConfig]:
    """lp0 → lp1 → … → lp0 (one to three devices; one is a self-loop)."""
    n = rng.choice([1, 2, 2, 3])
    return [_virtual(rng, f"lp{k}", f"lp{(k + 1) % n}") for k in range(n)]


def path_verdict(devices: dict[str, DeviceConfig], name: str, limit: int) -> str:
    """What happens to an skb sent on ``name``, as __dev_queue_xmit decides it:
    "delivers" (reaches a TX ring), "XMIT_RECURSION" or "DEAD_LOOP_OWNER"."""
    depth = 0
    owners: set[str] = set()
    d = devices[name]
    for _ in range(4 * len(devices) + 64):
        if not (d.is_virtual or d.qdisc == "noqueue"):
            return "delivers"
        if d.name in owners:
            return "DEAD_LOOP_OWNER"
        if depth > limit:
            return "XMIT_RECURSION"
        lltx = d.lltx if d.lltx is not None else d.kind == "vlan"
        if not lltx:
            owners.add(d.name)
        if not d.is_virtual:
            return "delivers"  # a noqueue physical device: straight to the driver
        depth += 1
        d = devices[d.lower]
    raise AssertionError("unreachable: every loop is cut")


def loop_entries(cfg: RunConfig) -> set[str]:
    """The devices of the loop (``lp*``) at which traffic enters it."""
    by_name = {d.name: d for d in cfg.devices}
    entries = set()
    for t in cfg.traffic:
        d = by_name[t.device or cfg.devices[0].name]
        seen = set()
        while d.is_virtual and d.name not in seen and not d.name.startswith("lp"):
            seen.add(d.name)
            d = by_name[d.lower]
        if d.name.startswith("lp"):
            entries.add(d.name)
    return entries


def _no_lock_order_cycle(cfg: RunConfig) -> None:
    """Keep a device loop from deadlocking on its _xmit_locks.

    A noqueue device that is not LLTX holds its queue's _xmit_lock while its
    xmit re-enters dev_queue_xmit on the lower device (HARD_TX_LOCK around
    dev_hard_start_xmit, as in the kernel).  Two CPUs that enter a loop at
    different devices take two such locks in opposite orders: an ABBA
    deadlock, in the kernel as in netq, which the watchdog then reports as a
    stall.  Entering at one device only, or with at most one non-LLTX device
    in the loop, cannot deadlock, so the generator makes the other loop
    devices LLTX when traffic enters the loop at several devices.
    """
    loop = [d for d in cfg.devices if d.name.startswith("lp")]
    locked = [d for d in loop if not (d.lltx if d.lltx is not None else d.kind == "vlan")]
    if cfg.cpus > 1 and len(locked) > 1 and len(loop_entries(cfg)) > 1:
        for d in locked[1:]:
            d.lltx = True


def _traffic(rng: random.Random, dev: str, cpus: list[int] | None) -> TrafficConfig:
    t = TrafficConfig(device=dev, cpus=cpus)
    t.sockets_per_cpu = rng.choice([1, 1, 2, 4, 4, 8, 16, 32, 64])
    t.proto = rng.choice(["udp", "tcp"])
    t.connected = rng.random() < 0.7
    t.priority = rng.choice([0, 0, rng.randint(0, 15), rng.randint(0, 2**32 - 1)])
    if rng.random() < 0.3:
        t.tos = rng.choice([0x00, 0x02, 0x04, 0x08, 0x10, 0x18, rng.randint(0, 255)])
    r = rng.random()
    if r < 0.5:
        t.length = rng.choice([64, 512, 1000, 1500])
    elif r < 0.9:
        lo = rng.randint(1, 1500)
        t.length = [lo, rng.randint(lo, 1500)]
    else:
        t.length = [rng.randint(64, 1500), 9000]
    t.rate_pps = 0.0 if rng.random() < 0.5 else rng.choice([300.0, 1000.0, 3000.0, 10000.0, 30000.0])
    if rng.random() < 0.15:
        t.rx_queue = rng.randint(0, 15)
    return t


def _cap_sockets(groups: list[TrafficConfig], cpus: int) -> None:
    def total() -> int:
        return sum((len(t.cpus) if t.cpus is not None else cpus) * t.sockets_per_cpu for t in groups)

    while total() > MAX_SOCKETS:
        biggest = max(groups, key=lambda t: t.sockets_per_cpu)
        biggest.sockets_per_cpu = max(1, biggest.sockets_per_cpu // 2)


def cpu_rates(cfg: RunConfig) -> list[float]:
    """Packets/s each CPU sends (0: floods), as workers/cpu.py's Generator
    sums them: a CPU floods if any of its groups floods."""
    out = []
    for c in range(cfg.cpus):
        rs = [t.rate_pps for t in cfg.traffic if t.cpus is None or c in t.cpus]
        out.append(0.0 if not rs or 0.0 in rs else float(sum(rs)))
    return out


def _max_len(cfg: RunConfig) -> int:
    return max(t.length if isinstance(t.length, int) else t.length[1] for t in cfg.traffic)


def drain_capacity_pps(cfg: RunConfig, d: DeviceConfig, slow_ns: int = 0) -> float:
    """Packets/s the NIC can put on ``d``'s wire at worst (longest packet)."""
    per_ns = 0.0
    if d.line_rate_bps:
        per_ns = (_max_len(cfg) + d.wire_overhead) * 8e9 / d.line_rate_bps
    if d.line_rate_pps:
        per_ns = max(per_ns, 1e9 / d.line_rate_pps)
    per_ns += slow_ns
    return 1e9 / per_ns if per_ns else math.inf


def backlog_bound(d: DeviceConfig, nsock: int = 0) -> int:
    """Most skbs a physical device can hold: its qdiscs and its TX rings
    (fq: flow_limit per flow, one flow per socket plus the orphan flow)."""
    nqdisc = d.tx_queues if d.qdisc == "mq" or (d.qdisc == "default" and d.tx_queues > 1) else 1
    if d.qdisc == "fq":
        held = min(FQ_LIMIT, FQ_FLOW_PLIMIT * (nsock + 1))
    else:
        held = 0 if d.qdisc == "noqueue" else nqdisc * d.tx_queue_len
    return held + d.tx_queues * d.ring_size


def _nsock(cfg: RunConfig) -> int:
    return sum(len(t.cpus if t.cpus is not None else range(cfg.cpus)) * t.sockets_per_cpu
               for t in cfg.traffic)


def _bound_drain(cfg: RunConfig, slow_ns: int = 0) -> None:
    """Shorten qdisc queues so that a full device drains within DRAIN_BOUND_S."""
    for d in cfg.devices:
        if d.is_virtual:
            continue
        cap = drain_capacity_pps(cfg, d, slow_ns)
        if d.qdisc == "fq" and backlog_bound(d, _nsock(cfg)) > cap * DRAIN_BOUND_S:
            d.qdisc = "pfifo"  # fq's limits are its own: fall back to a FIFO we can shorten
        while backlog_bound(d) > cap * DRAIN_BOUND_S and d.tx_queue_len > 8:
            d.tx_queue_len = max(8, d.tx_queue_len // 2)


def _max_slow_ns(cfg: RunConfig) -> int:
    """The largest slow_nic value that still drains every device in time."""
    backlog = sum(backlog_bound(d, _nsock(cfg)) for d in cfg.devices if not d.is_virtual)
    return max(0, int(DRAIN_BOUND_S * 1e9 / max(backlog, 1)))


def _add_chaos(rng: random.Random, cfg: RunConfig, kind: str, run_seconds: float) -> None:
    """Turn ``cfg`` into a chaos run of ``kind`` (duration mode, timed events)."""
    cfg.packets = 0
    base = max(cfg.duration, 0.5)
    if kind == "kill":
        at = round(rng.uniform(0.1, 0.3), 3)
        worker = rng.choice(["nic"] + [f"cpu{c}" for c in range(cfg.cpus)])
        cfg.events = [EventConfig(at=at, action="kill", worker=worker)]
        cfg.duration = round(at + 1.0, 3)
    elif kind == "stop":
        at = round(rng.uniform(0.1, 0.3), 3)
        worker = rng.choice(["nic"] + [f"cpu{c}" for c in range(cfg.cpus)])
        cfg.stall_timeout = rng.choice([0.5, 0.75, 1.0])
        cfg.events = [EventConfig(at=at, action="stop", worker=worker)]
        cfg.duration = round(at + cfg.stall_timeout + 1.0, 3)
    elif kind == "slow_nic":
        cfg.duration = round(max(base, 0.6), 3)
        for d in cfg.devices:  # room for the slowdown
            d.tx_queue_len = min(d.tx_queue_len, 100)
            d.ring_size = min(d.ring_size, 64)
            if d.wake_thresh is not None:
                d.wake_thresh = min(d.wake_thresh, d.ring_size)
        top = max(1000, _max_slow_ns(cfg))
        at = round(rng.uniform(0.05, 0.3) * cfg.duration, 3)
        cfg.events = [EventConfig(at=at, action="slow_nic", value=rng.randint(1000, min(top, 100_000)))]
        if rng.random() < 0.5:
            cfg.events.append(EventConfig(at=round(at + rng.uniform(0.1, 0.3) * cfg.duration, 3),
                                          action="slow_nic", value=0))
        _bound_drain(cfg, slow_ns=max(e.value for e in cfg.events))
    elif kind == "set_real_num_tx_queues":
        cfg.duration = round(max(base, 0.6), 3)
        d = next(d for d in cfg.devices if not d.is_virtual and d.tx_queues > 1)
        n = rng.randint(1, 3)
        times = sorted(round(rng.uniform(0.05, 0.7) * cfg.duration, 3) for _ in range(n))
        cfg.events = [EventConfig(at=t, action="set_real_num_tx_queues", device=d.name,
                                  value=rng.randint(1, d.tx_queues)) for t in times]
    elif kind == "dev_close":
        cfg.duration = round(max(base, 0.6), 3)
        by_name = {d.name: d for d in cfg.devices}
        path = [cfg.traffic[0].device or cfg.devices[0].name]
        while by_name[path[-1]].lower is not None and by_name[path[-1]].lower not in path:
            path.append(by_name[path[-1]].lower)
        victim = rng.choice(path)
        at = round(rng.uniform(0.05, 0.4) * cfg.duration, 3)
        cfg.events = [EventConfig(at=at, action="dev_close", device=victim)]
        if rng.random() < 0.6:
            cfg.events.append(EventConfig(at=round(at + rng.uniform(0.1, 0.4) * cfg.duration, 3),
                                          action="dev_open", device=victim))
    else:
        raise ValueError(kind)


def describe(cfg: RunConfig, kind: str) -> str:
    """A one-line summary of a configuration."""
    limit = PROFILES[cfg.profile].recursion_limit
    parts = [kind, f"{cfg.cpus}cpu {cfg.profile} {cfg.strategy or 'default'} "
                   f"{cfg.lock_fairness}/{cfg.lock_wait or 'auto'}"]
    by_name = {d.name: d for d in cfg.devices}
    devs = []
    for d in cfg.devices:
        if d.is_virtual:
            continue
        s = f"{d.name} q{d.real_queues}/{d.tx_queues} r{d.ring_size} {d.qdisc}"
        if d.xps:
            s += " xps"
        if d.num_tc:
            s += f" tc{d.num_tc}"
        devs.append(s)
    virt = [d for d in cfg.devices if d.is_virtual]
    stack = [d for d in virt if d.name.startswith("vs")]
    loop = [d for d in virt if d.name.startswith("lp")]
    if stack:
        devs.append(f"stack{len(stack)}>{stack[-1].lower} "
                    f"{path_verdict(by_name, stack[0].name, limit).lower()}")
    if loop:
        devs.append(f"loop{len(loop)}")
    parts.append(", ".join(devs))
    flows = []
    for t in cfg.traffic:
        n = (len(t.cpus) if t.cpus is not None else cfg.cpus) * t.sockets_per_cpu
        rate = "flood" if not t.rate_pps else f"{t.rate_pps:g}pps"
        flows.append(f"{n}x{t.proto}{'' if t.connected else '-unconn'} {rate} on {t.device}")
    parts.append("; ".join(flows))
    run = f"{cfg.packets} pkts" if cfg.packets else f"{cfg.duration:g}s"
    if any(vars(cfg.costs).values()):
        run += " costs"
    if cfg.events:
        run += " " + ",".join(f"{e.action}({e.worker or e.device or e.value})@{e.at:g}"
                              for e in cfg.events)
    parts.append(run)
    return " | ".join(parts)


# -- TOML ----------------------------------------------------------------------------------
def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"no TOML for {v!r}")
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # JSON string escapes are valid TOML basic-string escapes
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise ValueError(f"no TOML for {v!r}")


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return dataclasses.MISSING


def _toml_fields(obj: Any, skip: tuple[str, ...] = (), always: tuple[str, ...] = ()) -> list[str]:
    lines = []
    for f in dataclasses.fields(obj):
        if f.name in skip:
            continue
        v = getattr(obj, f.name)
        if v is None or (v == _default(f) and f.name not in always):
            continue
        lines.append(f"{f.name} = {_toml_value(v)}")
    return lines


def to_toml(cfg: RunConfig, comments: list[str] = ()) -> str:
    """``cfg`` as an experiment file (``python -m netq.run --config``);
    ``netq.machine.config.from_dict(tomllib.loads(text))`` gives ``cfg`` back."""
    out = [f"# {c}" if c else "#" for line in comments for c in line.splitlines() or [""]]
    out += _toml_fields(cfg, skip=("devices", "traffic", "costs", "events"))
    if any(vars(cfg.costs).values()):
        out += ["", "[costs]"] + _toml_fields(cfg.costs)
    for section in ("devices", "traffic", "events"):
        for item in getattr(cfg, section):
            out += ["", f"[[{section}]]"] + _toml_fields(item, always=("name", "device", "action"))
    return "\n".join(out) + "\n"


# -- running and checking --------------------------------------------------------------------
@dataclass
class Record:
    """What one run of the job ended in."""

    case: Case
    status: str = "not run"
    passed: bool = False
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    summary: str = ""
    result: dict | None = None
    config_path: str | None = None
    reproduce: list[str] = field(default_factory=list)

    @property
    def expected_fault(self) -> bool:
        return self.passed and self.case.expect != "ok"


class _HardTimeout(KeyboardInterrupt):
    """A run outlived its hard limit.  A KeyboardInterrupt, because that is
    the one exception posix_ipc (1.3.2) lets out of a semaphore wait that a
    signal interrupts (others become posix_ipc.SignalError, which the lock
    code retries), and the supervisor ends a run on it with full cleanup."""


def _own_ipc() -> list:
    from shm.ipc import netq_objects

    me = os.getpid()
    return [o for o in netq_objects() if o.pid == me]


def _remove_ipc(objs) -> None:
    for o in objs:
        o.unlink()


def _end_children(pids: list[int]) -> None:
    """Kill and reap processes this job forked (by pid) that outlived a run."""
    for pid in pids:
        for sig in (signal.SIGCONT, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 5
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                break
            if done:
                break
            time.sleep(0.01)


def estimate_s(case: Case, overhead_s: float, run_seconds: float) -> float:
    """How long a run of ``case`` should take, for the budget."""
    cfg = case.cfg
    if case.kind == "kill":
        traffic = cfg.events[0].at + 0.2
    elif case.kind == "stop":
        traffic = cfg.events[0].at + cfg.stall_timeout + 0.3
    elif cfg.packets:
        rates = cpu_rates(cfg)
        per_cpu = cfg.packets / cfg.cpus
        traffic = max(per_cpu / r if r else per_cpu / 5000.0 for r in rates)
        traffic = min(traffic, run_seconds)
    else:
        traffic = cfg.duration
    return traffic + overhead_s


def check(case: Case, res: dict) -> list[str]:
    """Everything that is wrong with the result of ``case``."""
    problems = []
    status = res.get("status")
    faults = res.get("faults") or []
    if status != case.expect:
        why = "; ".join(faults)[:600]
        problems.append(f"status {status!r}, expected {case.expect!r}" + (f": {why}" if why else ""))
    if case.expect == "ok" or status == "ok":
        for c in res.get("invariants", []):
            if not c["ok"]:
                problems.append(f"invariant {c['name']}: {c['detail']}")
        if res.get("invariants_ok") is False and not any(p.startswith("invariant") for p in problems):
            problems.append("invariants_ok is false")
    if status == "ok":
        drops = sum(res.get("drops", {}).values())
        if res.get("generated") != res.get("delivered", 0) + drops:
            problems.append(f"result: generated {res.get('generated')} != delivered "
                            f"{res.get('delivered')} + dropped {drops}")
        on_wire = sum(q["packets"] for q in res.get("queues", []))
        if on_wire != res.get("delivered"):
            problems.append(f"result: per-queue NIC packets {on_wire} != delivered {res.get('delivered')}")
    done = [e["action"] for e in res.get("events", []) if e["action"] != "fault"]
    if case.kind == "kill" and status == "fault":
        victim = case.cfg.events[0].worker
        if not any(f.startswith(f"{victim} (pid") and "killed by signal 9" in f for f in faults):
            problems.append(f"fault does not name the killed worker {victim}: {'; '.join(faults)}")
    elif case.kind == "stop" and status == "stalled":
        if "stop" not in done:
            problems.append("stalled before the SIGSTOP was sent")
        elif not any("no progress" in f for f in faults):
            problems.append(f"stall report does not say what made no progress: {'; '.join(faults)}")
    elif case.kind != "random" and case.expect == "ok" and status == "ok":
        want = [e.action for e in sorted(case.cfg.events, key=lambda e: e.at)]
        if done != want:
            problems.append(f"events carried out {done}, planned {want}")
    return problems


def summary_line(case: Case, res: dict | None, status: str) -> str:
    if res is None:
        return f"#{case.index:03d} {status}: no result"
    drops = {k: v for k, v in res.get("drops", {}).items() if v}
    dtext = ", ".join(f"{k} {v}" for k, v in drops.items())
    s = (f"#{case.index:03d} {status}: generated {res.get('generated')}, delivered "
         f"{res.get('delivered')}, dropped {sum(drops.values())}" + (f" ({dtext})" if dtext else "")
         + f", {res.get('pps', 0) / 1000:.1f} kpps, invariants "
         + ("hold" if res.get("invariants_ok") else "BROKEN"))
    if status != "ok" and res.get("faults"):
        s += "; " + "; ".join(res["faults"])[:300]
    return s


class Job:
    """The stress job: generate, run, check, report."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.seed: int = args.seed
        self.records: list[Record] = []
        self.overhead_s = OVERHEAD_GUESS_S
        self.t0 = time.monotonic()
        self._artifacts: str | None = None
        self._timed_out = False
        self.stopped: str | None = None  # "interrupted" / "terminated"

    # -- output ------------------------------------------------------------------------
    def say(self, text: str = "") -> None:
        print(text, flush=True)

    def artifacts_dir(self) -> str:
        if self._artifacts is None:
            out = self.args.junit or self.args.json
            if out:
                self._artifacts = os.path.dirname(os.path.abspath(out))
            else:
                self._artifacts = tempfile.mkdtemp(prefix=f"netq-stress-{self.seed}-")
            os.makedirs(self._artifacts, exist_ok=True)
        return self._artifacts

    def reproduce_cmds(self, case: Case, path: str) -> list[str]:
        env = ""  # the config file carries a --fault as a "fault" event
        job = f"python -m netq.run stress --seed {case.seed} --only {case.index}"
        if self.args.fault:
            job += f" --fault {self.args.fault}"
        if self.args.chaos:
            job += " --chaos"
        if self.args.run_seconds != DEFAULT_RUN_SECONDS:
            job += f" --run-seconds {self.args.run_seconds:g}"
        return [f"{env}python -m netq.run --config {path}", f"{env}{job}"]

    # -- one run -------------------------------------------------------------------------
    def run_case(self, case: Case) -> Record:
        from workers.supervisor import Supervisor

        rec = Record(case)
        est = estimate_s(case, self.overhead_s, self.args.run_seconds)
        hard = max(1, int(math.ceil(est + self.args.hard_limit)))
        me = os.getpid()
        self._timed_out = False
        old = signal.signal(signal.SIGALRM, self._on_alarm)
        signal.alarm(hard)
        t0 = time.monotonic()
        res = None
        try:
            try:
                res = Supervisor(case.cfg).run().result
            except _HardTimeout:
                pass  # raised outside the supervisor's own handling
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)
            rec.seconds = time.monotonic() - t0
        if self._timed_out:
            # The supervisor took the alarm for Ctrl-C and cleaned up; it hung.
            hang = (f"the run did not end within its hard limit of {hard} s (the supervisor "
                    "itself hung, its watchdog included); ended by SIGALRM")
            res = dict(res or {}, status="hung")
            res["faults"] = [hang] + list(res.get("faults") or [])
        elif res is not None and res.get("status") in ("interrupted", "terminated"):
            self.stopped = res["status"]
        rec.result = res
        rec.status = res.get("status", "?") if res else "?"
        if res is not None:
            rec.problems += check(case, res)
        left = _own_ipc()
        if left:
            rec.problems.append(f"/dev/shm objects left by this run (owner pid {me}): "
                                + ", ".join(o.entry for o in left[:8])
                                + (f" and {len(left) - 8} more" if len(left) > 8 else ""))
            _remove_ipc(left)
        kids = child_pids(me)
        if kids:
            rec.problems.append(f"child processes left after the run: {kids}")
            _end_children(kids)
        rec.passed = not rec.problems
        rec.summary = summary_line(case, res, rec.status)
        # learn the overhead (what a run costs beyond its traffic time)
        if not self._timed_out:
            extra = max(0.0, rec.seconds - estimate_s(case, 0.0, self.args.run_seconds))
            self.overhead_s = 0.7 * self.overhead_s + 0.3 * min(extra, 10.0)
        return rec

    def _on_alarm(self, signum: int, frame: object) -> None:
        self._timed_out = True
        signal.alarm(10)  # once more if the cleanup hangs too
        raise _HardTimeout()

    def fail_report(self, rec: Record) -> None:
        case = rec.case
        path = os.path.join(self.artifacts_dir(),
                            f"stress-seed{case.seed}-{case.index:03d}.toml")
        rec.config_path = path
        rec.reproduce = self.reproduce_cmds(case, path)
        comments = [
            f"netq stress job, seed {case.seed}, configuration {case.index} ({case.kind}, "
            f"expected status {case.expect!r}, got {rec.status!r})",
            *[f"problem: {p}" for p in rec.problems],
            "reproduce:",
            *[f"  {c}" for c in rec.reproduce],
            "",
        ]
        with open(path, "w") as f:
            f.write(to_toml(case.cfg, comments))
        if rec.result is not None and not self.args.quiet:
            from . import report

            try:
                text = report.text(rec.result)
            except Exception as e:  # the report must not hide the failure
                text = f"(report failed: {e!r})"
            self.say("\n".join("    | " + line for line in text.splitlines()))
        self.say(f"  FAILED: seed {case.seed}, configuration {case.index} ({case.kind}): {case.desc}")
        for p in rec.problems:
            self.say(f"    - {p}")
        self.say(f"    config: {path}")
        self.say(f"    reproduce: {rec.reproduce[0]}")
        self.say(f"           or: {rec.reproduce[1]}")

    # -- the job ---------------------------------------------------------------------------
    def indices(self):
        if self.args.only:
            yield from self.args.only
            return
        i = 0
        while self.args.runs is None or i < self.args.runs:
            yield i
            i += 1

    def run(self) -> int:
        a = self.args
        chaos = " --chaos" if a.chaos else ""
        self.say(f"netq stress: seed {self.seed}, budget {a.budget:g} s, {a.run_seconds:g} s of "
                 f"traffic per run{', with chaos runs' if a.chaos else ''} "
                 f"(rerun: python -m netq.run stress --seed {self.seed}{chaos})")
        if a.fault:
            self.say(f"netq stress: --fault {a.fault}: runs are broken on purpose (test-only)")
        from shm.ipc import Terminated

        try:
            for i in self.indices():
                case = generate(self.seed, i, a.chaos, a.run_seconds)
                if a.fault:
                    case.cfg.events.append(EventConfig(at=0.0, action="fault", fault=a.fault))
                elapsed = time.monotonic() - self.t0
                est = estimate_s(case, self.overhead_s, a.run_seconds)
                if self.records and not a.only and elapsed + est > a.budget:
                    self.say(f"netq stress: budget reached ({elapsed:.1f} s used, next run ~{est:.1f} s)")
                    break
                rec = self.run_case(case)
                self.records.append(rec)
                self.progress(rec)
                if self.stopped:
                    break
                if not rec.passed:
                    self.fail_report(rec)
                    if a.fail_fast:
                        break
        except KeyboardInterrupt:
            self.stopped = "interrupted"
        except Terminated:
            self.stopped = "terminated"
        except GeneratorBug as e:
            self.say(f"netq stress: GENERATOR BUG: {e}")
            self.finish()
            return EXIT_FAILED
        return self.finish()

    def progress(self, rec: Record) -> None:
        c = rec.case
        if rec.passed:
            verdict = "ok  " if c.expect == "ok" else f"ok (expected {rec.status})"
        else:
            verdict = "FAIL"
        self.say(f"[{len(self.records):3d}] #{c.index:03d} {verdict} {rec.seconds:5.1f}s  {c.desc}")
        self.say(f"        {rec.summary}")

    def totals(self) -> dict:
        recs = self.records
        kinds: dict[str, int] = {}
        for r in recs:
            if r.expected_fault:
                kinds[r.case.kind] = kinds.get(r.case.kind, 0) + 1
        return {
            "runs": len(recs),
            "passed": sum(r.passed for r in recs),
            "failed": sum(not r.passed for r in recs),
            "expected_faults": sum(r.expected_fault for r in recs),
            "expected_faults_by_kind": kinds,
            "chaos_runs": sum(r.case.kind != "random" for r in recs),
            "seconds": round(time.monotonic() - self.t0, 2),
        }

    def finish(self) -> int:
        t = self.totals()
        if self.stopped == "interrupted":
            code = EXIT_INTERRUPTED
        elif self.stopped == "terminated":
            code = EXIT_TERMINATED
        else:
            code = EXIT_FAILED if t["failed"] or not t["runs"] else EXIT_OK
        line = (f"netq stress summary: seed {self.seed}: {t['runs']} runs, {t['passed']} passed, "
                f"{t['failed']} failed, {t['expected_faults']} expected faults"
                + (" (" + ", ".join(f"{k} {v}" for k, v in t["expected_faults_by_kind"].items()) + ")"
                   if t["expected_faults_by_kind"] else "")
                + f", {t['chaos_runs']} chaos runs, {t['seconds']:.1f} s")
        if self.stopped:
            line += f" - {self.stopped.upper()}"
        self.say(line)
        for r in self.records:
            if not r.passed:
                self.say(f"  FAILED #{r.case.index:03d} ({r.case.kind}): {r.problems[0] if r.problems else ''}")
                if r.config_path:
                    self.say(f"    reproduce: {r.reproduce[0]}")
        if self.args.junit:
            write_junit(self.args.junit, self, t)
            self.say(f"netq stress: JUnit XML written to {self.args.junit}")
        if self.args.json:
            write_json(self.args.json, self, t, code)
            self.say(f"netq stress: JSON written to {self.args.json}")
        return code


# -- JUnit and JSON ------------------------------------------------------------------------
def write_junit(path: str, job: Job, totals: dict) -> None:
    """JUnit XML: one testsuite, one testcase per configuration run."""
    suites = ET.Element("testsuites", name="netq stress", tests=str(totals["runs"]),
                        failures=str(totals["failed"]), errors="0", time=f"{totals['seconds']:.3f}")
    suite = ET.SubElement(suites, "testsuite", {
        "name": f"netq.app.stress.seed{job.seed}", "tests": str(totals["runs"]),
        "failures": str(totals["failed"]), "errors": "0", "skipped": "0",
        "time": f"{totals['seconds']:.3f}",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime()),
        "hostname": platform.node()})
    props = ET.SubElement(suite, "properties")
    for k, v in (("seed", job.seed), ("budget", job.args.budget), ("chaos", job.args.chaos),
                 ("run_seconds", job.args.run_seconds),
                 ("fault", job.args.fault or "")):
        ET.SubElement(props, "property", name=k, value=str(v))
    for r in job.records:
        c = r.case
        tc = ET.SubElement(suite, "testcase", classname=f"netq.app.stress.{c.kind}",
                           name=f"#{c.index:03d} {c.desc}", time=f"{r.seconds:.3f}")
        if not r.passed:
            fail = ET.SubElement(tc, "failure", message=(r.problems[0] if r.problems else "failed")[:500],
                                 type=r.status)
            fail.text = "\n".join(
                [f"seed {c.seed}, configuration {c.index} ({c.kind}), expected {c.expect!r}, "
                 f"got {r.status!r}"] + [f"- {p}" for p in r.problems]
                + ([f"config: {r.config_path}"] if r.config_path else [])
                + [f"reproduce: {cmd}" for cmd in r.reproduce])
        out = ET.SubElement(tc, "system-out")
        out.text = r.summary
    ET.indent(suites)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)


def write_json(path: str, job: Job, totals: dict, code: int) -> None:
    runs = []
    for r in job.records:
        res = r.result or {}
        runs.append({
            "index": r.case.index, "kind": r.case.kind, "description": r.case.desc,
            "expected_status": r.case.expect, "status": r.status, "passed": r.passed,
            "seconds": round(r.seconds, 3), "problems": r.problems, "summary": r.summary,
            "config_path": r.config_path, "reproduce": r.reproduce,
            "generated": res.get("generated"), "delivered": res.get("delivered"),
            "drops": {k: v for k, v in res.get("drops", {}).items() if v},
            "pps": res.get("pps"), "invariants_ok": res.get("invariants_ok"),
            "faults": res.get("faults", []),
        })
    doc = {"version": 1, "seed": job.seed, "budget_s": job.args.budget, "chaos": job.args.chaos,
           "run_seconds": job.args.run_seconds, "exit_code": code, "summary": totals, "runs": runs}
    with open(path, "w") as f:
        json.dump(doc, f, indent=1, default=str)


# -- command line --------------------------------------------------------------------------
DEFAULT_BUDGET = 60.0
DEFAULT_RUN_SECONDS = 0.5


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        raise UsageError(message)


def _indices(text: str) -> list[int]:
    try:
        out = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: comma-separated configuration numbers") from None
    if not out or any(i < 0 for i in out):
        raise argparse.ArgumentTypeError(f"{text!r}: comma-separated configuration numbers >= 0")
    return out


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m netq.run stress",
        description="The CI stress job: seeded random configurations (and, with --chaos, "
                    "runs broken on purpose), each checked for every invariant, deadlock, "
                    "worker crash and leaked IPC object.  Exit 0 when all pass, 1 otherwise.",
        epilog="Examples:\n"
               "  python -m netq.run stress --budget 60 --chaos --seed 1 --junit stress-junit.xml\n"
               "  python -m netq.run stress --seed 1 --only 7          rerun configuration 7\n"
               "  python -m netq.run stress --seed 1 --dry-run --runs 20  list configurations\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--budget", type=float, default=DEFAULT_BUDGET, metavar="SECONDS",
                   help=f"start no run that would end after this (default {DEFAULT_BUDGET:g}); "
                        "at least one run is made")
    p.add_argument("--seed", type=int, help="the job's seed (default: random, printed)")
    p.add_argument("--chaos", action="store_true",
                   help="every third run breaks something on purpose: kill, stop, slow_nic, "
                        "set_real_num_tx_queues, dev_close (expected outcomes)")
    p.add_argument("--run-seconds", type=float, default=DEFAULT_RUN_SECONDS, metavar="S",
                   help=f"at most this much traffic per run (default {DEFAULT_RUN_SECONDS:g})")
    p.add_argument("--junit", metavar="PATH", help="write JUnit XML (one testcase per run)")
    p.add_argument("--fault", choices=sorted(FAULTS),
                   help="test the checks: break every run on purpose with this fault event "
                        "(lose_one: the NIC loses one skb without a trace)")
    p.add_argument("--json", metavar="PATH", help="write the job's results as JSON")
    p.add_argument("--only", type=_indices, metavar="I[,J...]",
                   help="run only these configurations of the seed (ignores --budget)")
    p.add_argument("--runs", type=int, metavar="N", help="at most N runs")
    p.add_argument("--fail-fast", action="store_true", help="stop at the first failure")
    p.add_argument("--hard-limit", type=float, default=HARD_LIMIT_SLACK_S, metavar="S",
                   help="end a run (as hung, a failure) that takes S seconds longer than "
                        f"expected (default {HARD_LIMIT_SLACK_S:g})")
    p.add_argument("--dry-run", action="store_true",
                   help="generate and validate the configurations (--runs, default 20) and print "
                        "them; run nothing")
    p.add_argument("--quiet", action="store_true", help="do not print the full report of a failed run")
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.seed is None:
            args.seed = int.from_bytes(os.urandom(4), "little") & 0x7FFFFFFF
        if args.seed < 0:
            raise UsageError("--seed: a number >= 0")
        if not 0 <= args.budget <= 86400:
            raise UsageError("--budget: seconds, 0 to 86400")
        if not 0.1 <= args.run_seconds <= 30:
            raise UsageError("--run-seconds: seconds, 0.1 to 30")
        if not 1 <= args.hard_limit <= 3600:
            raise UsageError("--hard-limit: seconds, 1 to 3600")
        if args.runs is not None and args.runs < 0:
            raise UsageError("--runs: a number >= 0")
        for flag in ("junit", "json"):  # refused now, not after the whole job
            path = getattr(args, flag)
            problem = path and output_path_problem("--" + flag, path)
            if problem:
                raise UsageError(problem)
    except UsageError as e:
        print(f"netq stress: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    if args.dry_run:
        return dry_run(args)
    job = Job(args)
    old = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, _terminated)
    try:
        return job.run()
    finally:
        signal.signal(signal.SIGTERM, old)


def _terminated(signum: int, frame: object) -> None:
    from shm.ipc import Terminated

    raise Terminated(signum)


def dry_run(args: argparse.Namespace) -> int:
    idx = args.only or range(args.runs if args.runs is not None else 20)
    print(f"netq stress: seed {args.seed} (dry run: generate and validate only)")
    for i in idx:
        try:
            case = generate(args.seed, i, args.chaos, args.run_seconds)
        except GeneratorBug as e:
            print(f"GENERATOR BUG: {e}")
            return EXIT_FAILED
        print(f"#{i:03d} expect {case.expect:7s} {case.desc}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
