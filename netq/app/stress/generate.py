"""The stress job's generator: configuration *i* of a seed, and what it must end in.

See :mod:`netq.app.stress` for why it is built this way (reproducible from the
seed, every configuration validates, bounded drains).
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass

from netq.kernel.profiles import PROFILES
from netq.kernel.sched.sch_fq import FQ_FLOW_PLIMIT, FQ_LIMIT
from netq.machine.config import (
    ConfigError,
    CostConfig,
    DeviceConfig,
    EventConfig,
    RunConfig,
    TrafficConfig,
)
from shm.lock import FAIRNESS, WAITING

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
#: seconds of traffic per run unless --run-seconds says otherwise
DEFAULT_RUN_SECONDS = 0.5
#: share of the random configurations that run on the virtual clock
VIRTUAL_SHARE = 0.2
#: a virtual run's length, virtual seconds (each costs the host far more)
VIRTUAL_SECONDS = (0.002, 0.006)
#: host seconds one emulated CPU's virtual second costs, for the budget
#: (measured 70-540 with floods on this 2-core host; the high end is used)
VIRTUAL_HOST_S = 500.0
#: the window slacks (ns) a virtual run picks from: lockstep, the default, loose
VIRTUAL_SLACKS = (0, 20, 20, 50, 1000)
#: a virtual run whose every CPU floods keeps its packet budget this often,
#: at most this many packets per CPU (a budget of rate-limited senders would
#: last virtual seconds)
VIRTUAL_BUDGET_SHARE = 0.5
VIRTUAL_BUDGET_PER_CPU = 200


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


def generate(
    seed: int, index: int, chaos: bool = False, run_seconds: float = DEFAULT_RUN_SECONDS
) -> Case:
    """Configuration ``index`` of the job seeded with ``seed`` (deterministic).

    Raises :class:`GeneratorBug` if the configuration does not validate.
    """
    kind = case_kind(index, chaos)
    rng = random.Random(f"netq-stress:{seed}:{index}:{kind}:{run_seconds!r}")
    cfg = _random_config(rng, seed, index, run_seconds, kind)
    if kind != "random":
        _add_chaos(rng, cfg, kind, run_seconds)
    elif rng.random() < VIRTUAL_SHARE:
        _make_virtual(rng, cfg)
    try:
        cfg.validate()
    except ConfigError as e:
        raise GeneratorBug(
            f"seed {seed} index {index}: generated config does not validate: {e}"
        ) from e
    expect = CHAOS_EXPECT.get(kind, "ok")
    return Case(seed, index, kind, cfg, expect, describe(cfg, kind))


class GeneratorBug(Exception):
    """The generator produced a configuration that RunConfig.validate() rejects."""


def _random_config(
    rng: random.Random, seed: int, index: int, run_seconds: float, kind: str
) -> RunConfig:
    cpus = rng.randint(1, 4)
    profile = rng.choice(sorted(PROFILES))
    limit = PROFILES[profile].recursion_limit
    cfg = RunConfig(
        name=f"stress-{seed}-{index:03d}", cpus=cpus, profile=profile, seed=rng.getrandbits(32)
    )
    cfg.strategy = rng.choice([None, "rootlock", "busylock"])
    cfg.lock_fairness = rng.choice(FAIRNESS)
    cfg.lock_wait = rng.choice([None, None, *WAITING])
    if rng.random() < 0.15:
        cfg.spin_ns = rng.choice([0, 1000, 5000, 20000, 50000])
    cfg.stall_timeout = rng.choice([3.0, 3.0, 4.0])
    if rng.random() < 0.2:
        cfg.nic_batch = rng.choice([1, 4, 16, 64])
    if rng.random() < 0.15:
        cores = sorted(os.sched_getaffinity(0))
        style = rng.choice(["one core", "reversed"])
        cfg.cpu_map = (
            [cores[0]] * cpus
            if style == "one core"
            else [cores[(len(cores) - 1 - c) % len(cores)] for c in range(cpus)]
        )
    if rng.random() < 0.3:
        cfg.costs = CostConfig(
            enqueue_ns=rng.choice([0, 500, 1000, 2000]),
            dequeue_ns=rng.choice([0, 500, 1000, 2000]),
            xmit_ns=rng.choice([0, 1000, 2000, 3000]),
            bounce_ns=rng.choice([0, 0, 300, 1000]),
        )

    # devices: one or two physical devices, maybe a stack, maybe a loop
    nphys = 2 if rng.random() < 0.2 else 1
    need_multiq = kind == "set_real_num_tx_queues"
    devices = [
        _phys(rng, f"eth{k}", cpus, min_queues=2 if need_multiq and k == 0 else 1)
        for k in range(nphys)
    ]
    bottoms = [d.name for d in devices]
    if rng.random() < 0.3:
        devices += _loop(rng)
        bottoms.append(devices[-1].name)
    if rng.random() < 0.55:
        lower = rng.choice(bottoms) if rng.random() < 0.2 else rng.choice(bottoms[:nphys])
        # a legal stack passes at depth <= limit; sometimes deeper, to be cut
        depth = (
            rng.randint(1, limit + 1) if rng.random() < 0.8 else rng.randint(limit + 2, limit + 4)
        )
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
            d.tc_to_txq = [
                [per if t < num_tc - 1 else tx - per * (num_tc - 1), t * per] for t in range(num_tc)
            ]
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
        assert d.lower is not None  # a virtual device has a lower one
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
            assert d.lower is not None  # a virtual device has a lower one
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
    t.rate_pps = (
        0.0 if rng.random() < 0.5 else rng.choice([300.0, 1000.0, 3000.0, 10000.0, 30000.0])
    )
    if rng.random() < 0.15:
        t.rx_queue = rng.randint(0, 15)
    return t


def _cap_sockets(groups: list[TrafficConfig], cpus: int) -> None:
    def total() -> int:
        return sum(
            (len(t.cpus) if t.cpus is not None else cpus) * t.sockets_per_cpu for t in groups
        )

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
    return sum(
        len(t.cpus if t.cpus is not None else range(cfg.cpus)) * t.sockets_per_cpu
        for t in cfg.traffic
    )


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


def _make_virtual(rng: random.Random, cfg: RunConfig) -> None:
    """Put ``cfg`` on the virtual clock: a duration in virtual seconds, or
    a small packet budget when every CPU floods, a window slack, and FIFO
    locks."""
    cfg.clock = "virtual"
    cfg.lock_fairness = "fifo"  # the virtual clock grants in request order
    cfg.duration = round(rng.uniform(*VIRTUAL_SECONDS), 4)
    cfg.slack_ns = rng.choice(VIRTUAL_SLACKS)
    keep = cfg.packets and not any(cpu_rates(cfg)) and rng.random() < VIRTUAL_BUDGET_SHARE
    cfg.packets = min(cfg.packets, VIRTUAL_BUDGET_PER_CPU * cfg.cpus) if keep else 0


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
        cfg.events = [
            EventConfig(at=at, action="slow_nic", value=rng.randint(1000, min(top, 100_000)))
        ]
        if rng.random() < 0.5:
            cfg.events.append(
                EventConfig(
                    at=round(at + rng.uniform(0.1, 0.3) * cfg.duration, 3),
                    action="slow_nic",
                    value=0,
                )
            )
        _bound_drain(cfg, slow_ns=max(e.value for e in cfg.events))
    elif kind == "set_real_num_tx_queues":
        cfg.duration = round(max(base, 0.6), 3)
        d = next(d for d in cfg.devices if not d.is_virtual and d.tx_queues > 1)
        n = rng.randint(1, 3)
        times = sorted(round(rng.uniform(0.05, 0.7) * cfg.duration, 3) for _ in range(n))
        cfg.events = [
            EventConfig(
                at=t,
                action="set_real_num_tx_queues",
                device=d.name,
                value=rng.randint(1, d.tx_queues),
            )
            for t in times
        ]
    elif kind == "dev_close":
        cfg.duration = round(max(base, 0.6), 3)
        by_name = {d.name: d for d in cfg.devices}
        path = [cfg.traffic[0].device or cfg.devices[0].name]
        while (lower := by_name[path[-1]].lower) is not None and lower not in path:
            path.append(lower)
        victim = rng.choice(path)
        at = round(rng.uniform(0.05, 0.4) * cfg.duration, 3)
        cfg.events = [EventConfig(at=at, action="dev_close", device=victim)]
        if rng.random() < 0.6:
            cfg.events.append(
                EventConfig(
                    at=round(at + rng.uniform(0.1, 0.4) * cfg.duration, 3),
                    action="dev_open",
                    device=victim,
                )
            )
    else:
        raise ValueError(kind)


def describe(cfg: RunConfig, kind: str) -> str:
    """A one-line summary of a configuration."""
    limit = PROFILES[cfg.profile].recursion_limit
    parts = [
        kind,
        f"{cfg.cpus}cpu {cfg.profile} {cfg.strategy or 'default'} "
        f"{cfg.lock_fairness}/{cfg.lock_wait or 'auto'}",
    ]
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
        devs.append(
            f"stack{len(stack)}>{stack[-1].lower} "
            f"{path_verdict(by_name, stack[0].name, limit).lower()}"
        )
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
    if cfg.virtual:
        run += f" virtual slack{cfg.slack_ns}"
    if cfg.costs != CostConfig():  # any price set (numa_nodes is 1 by default)
        run += " costs"
    if cfg.events:
        run += " " + ",".join(
            f"{e.action}({e.worker or e.device or e.value})@{e.at:g}" for e in cfg.events
        )
    parts.append(run)
    return " | ".join(parts)
