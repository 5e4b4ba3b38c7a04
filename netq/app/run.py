"""``python -m netq.run``: run an experiment and report it.

    python -m netq.run                    the default experiment (XPS on/off)
    python -m netq.run PRESET             a named experiment (--list shows them)
    python -m netq.run --config exp.toml  an experiment file
    python -m netq.run --cleanup          remove IPC objects of crashed runs

Flags override the preset or file for every variant, except the axis a
preset (or file) varies between its variants: that is refused, since every
variant would run the same configuration under its old label.  Exit codes:
0 ok; 1 a run failed (worker died, stall, an invariant broke); 2 bad usage or
configuration (one line naming the field, nothing created, checked before
anything runs -- output paths included); 130 interrupted (SIGINT); 143
terminated (SIGTERM or SIGHUP).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import math
import os
import sys
from typing import NoReturn

from netq.kernel.profiles import PROFILES, STRATEGIES
from netq.machine.config import (
    CLOCKS,
    QDISC_KINDS,
    VIRTUAL_DEFAULT_S,
    ConfigError,
    CostConfig,
    RunConfig,
    from_dict,
    read_toml,
)
from netq.machine.result import EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_USAGE
from netq.machine.tracedata import TraceData
from shm.ipc import Terminated, cleanup_stale, end_stale_processes, terminate_on_signals
from workers.supervisor import Supervisor

from . import report
from .outputs import output_path_problem
from .presets import Preset, default_preset, presets
from .stress import main as stress_main


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m netq.run",
        description="Emulate the Linux transmit path with real processes and measure it.",
        epilog="Examples:\n"
        "  python -m netq.run                      XPS 1:1 vs hashed, 2 CPUs, 4 queues\n"
        "  python -m netq.run busylock             rootlock vs busylock on one queue\n"
        "  python -m netq.run recursion            stacked and looping virtual devices\n"
        "  python -m netq.run --cpus 2 --tx-queues 2 --xps 0=1 --xps 1=2 --json out.json\n"
        "  python -m netq.run --config exp.toml\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("preset", nargs="?", help="a preset name (see --list); default: the XPS demo")
    p.add_argument("--list", action="store_true", help="list the presets and exit")
    p.add_argument("--config", metavar="FILE", help="an experiment file (TOML)")
    p.add_argument("--cpus", type=int, help="emulated CPUs (processes)")
    p.add_argument("--cpu-map", metavar="LIST", help="host core per emulated CPU, e.g. 0,1,0,1")
    p.add_argument("--tx-queues", type=int, help="TX queues of the first device")
    p.add_argument("--ring-size", type=int, help="TX ring descriptors per queue (power of two)")
    p.add_argument("--qdisc", help="qdisc of the first device: " + ", ".join(QDISC_KINDS))
    p.add_argument("--strategy", help="how a locked qdisc is entered: " + ", ".join(STRATEGIES))
    p.add_argument("--profile", help="kernel profile: " + ", ".join(PROFILES))
    p.add_argument(
        "--xps",
        action="append",
        metavar="QUEUE=MASK",
        help="XPS for the first device as tx-QUEUE/xps_cpus takes it (hex mask, "
        "comma-separated 32-bit groups); repeatable",
    )
    p.add_argument("--rate", type=float, metavar="PPS", help="packets/s per CPU (0 floods)")
    p.add_argument("--sockets", type=int, help="sockets (flows) per CPU")
    p.add_argument("--duration", type=float, metavar="S", help="seconds of traffic per variant")
    p.add_argument("--packets", type=int, help="stop after this many packets (instead of duration)")
    p.add_argument("--seed", type=int, help="fix hashrnd, socket hashes, lengths")
    p.add_argument("--lock-fairness", help="fifo (ticket/qspinlock order) or unfair")
    p.add_argument("--lock-wait", help="spin, block or adaptive (default: chosen from cores)")
    p.add_argument(
        "--stall-timeout", type=float, metavar="S", help="no progress for S seconds = stall"
    )
    p.add_argument(
        "--clock",
        choices=CLOCKS,
        help="wall: the host's time (default); virtual: each emulated CPU and the NIC keep a "
        "clock charged by the cost model, --duration counts virtual seconds "
        f"(default {VIRTUAL_DEFAULT_S:g}) and the presets' emulated busy-wait costs are not "
        "used (config key clock; docs/virtual-time.md)",
    )
    p.add_argument(
        "--slack",
        type=int,
        metavar="NS",
        help="virtual clock: how far a CPU may run ahead of the slowest, ns (default 0; "
        "config key slack_ns)",
    )
    p.add_argument(
        "--json",
        metavar="PATH",
        help="write the results as JSON (schema in README; "
        "strict JSON: a figure that is not a finite number is null)",
    )
    p.add_argument(
        "--profile-dir",
        metavar="DIR",
        help="developers: cProfile every CPU process and the NIC into DIR/cpuN.prof and "
        "DIR/nic.prof (an existing, writable directory; config key profile_dir)",
    )
    p.add_argument(
        "--trace",
        metavar="PATH",
        help="record every process's events and write a Perfetto trace (ui.perfetto.dev) "
        "to PATH, one file per variant; the trace extra (config key trace)",
    )
    p.add_argument(
        "--timeline",
        metavar="PATH.png",
        help="draw a 2 ms window of the traced events, one row per CPU, to PATH.png; "
        "the plot extra (config key timeline)",
    )
    p.add_argument("--quiet", action="store_true", help="print only the comparison / summary")
    p.add_argument(
        "--cleanup",
        action="store_true",
        help="end the leftover worker processes of crashed netq runs and remove their "
        "/dev/shm objects (live runs untouched); takes no other argument",
    )
    return p


def _string(data: dict, key: str, path: str, default: str) -> str:
    v = data.pop(key, default)
    if not isinstance(v, str):
        raise ConfigError(path, f"a string, got {type(v).__name__} {v!r:.40}")
    return v


def resolve(args) -> Preset:
    """The variants to run, with the flags applied; raises ConfigError/UsageError."""
    if args.config and args.preset:
        raise UsageError("give a preset or --config, not both")
    if args.config:
        try:
            data = read_toml(args.config, "--config")
        except ConfigError as bad:  # the file itself, not a setting in it
            raise UsageError(str(bad)) from None
        explain = _string(data, "explain", "explain", "")
        if "variants" in data:
            raw = data.pop("variants")
            if not isinstance(raw, list) or not raw:
                raise ConfigError("variants", "one or more [[variants]] tables")
            variants = []
            for i, v in enumerate(raw):
                if not isinstance(v, dict):
                    raise ConfigError(f"variants[{i}]", "a table")
                v = dict(v)
                label = _string(v, "label", f"variants[{i}].label", f"variant {i}")
                with _in_variant(i, label):
                    variants.append((label, from_dict({**data, **v})))
        else:
            name = data.get("name", os.path.basename(args.config))
            if not isinstance(name, str):
                raise ConfigError("name", f"a string, got {type(name).__name__} {name!r:.40}")
            variants = [(name, from_dict(data))]
        preset = Preset(os.path.basename(args.config), "experiment file", explain, variants)
    elif args.preset:
        all_presets = presets()
        if args.preset not in all_presets:
            raise UsageError(f"unknown preset {args.preset!r}; one of {', '.join(all_presets)}")
        preset = all_presets[args.preset]
        preset.variants = preset.configs()
    else:
        preset = default_preset()
        preset.variants = preset.configs()
    axes = varied_axes([cfg for _, cfg in preset.variants])
    for i, (label, cfg) in enumerate(preset.variants):
        with _in_variant(i, label, len(preset.variants) > 1 and bool(args.config)):
            if args.clock == "virtual" and not args.config:
                # a preset's emulated busy-waits stand in for the kernel's work
                # on the wall clock; the virtual clock prices that work itself
                cfg.costs = CostConfig(numa_nodes=cfg.costs.numa_nodes)
                if cfg.lock_fairness != "fifo":
                    continue  # dropped below
                if args.duration is None:
                    cfg.duration = VIRTUAL_DEFAULT_S
                cfg.packets = 0
            apply_flags(cfg, args)
            cfg.validate()
    if args.clock == "virtual" and not args.config:
        # the virtual clock grants locks in request order: a preset's
        # unfair-lock variants would run as its FIFO ones (and be refused)
        preset.variants = [(lb, c) for lb, c in preset.variants if c.lock_fairness == "fifo"]
    refuse_axis_override(preset, axes, args)
    many = len(preset.variants) > 1
    for label, cfg in preset.variants:
        if cfg.profile_dir is not None:
            check_output_dir(
                "--profile-dir" if args.profile_dir else "profile_dir", cfg.profile_dir
            )
        for key in ("trace", "timeline"):
            path = getattr(cfg, key)
            if path is not None:
                flag = "--" + key if getattr(args, key) else key
                extra = {"trace": "perfetto", "timeline": "matplotlib"}[key]
                if importlib.util.find_spec(extra) is None:
                    raise UsageError(
                        f"{flag}: {extra} is not installed; install the "
                        f"{'trace' if key == 'trace' else 'plot'} extra: pip install '.[{'trace' if key == 'trace' else 'plot'}]'"
                    )
                check_output_file(flag, variant_path(path, label) if many else path)
        for k, e in enumerate(cfg.events):
            if not cfg.packets and e.at >= cfg.duration:
                warn(
                    f"events[{k}].at: {e.at:g} s is not before the end of the run "
                    f"({cfg.duration:g} s{'' if len(preset.variants) == 1 else ', ' + label}); "
                    "it will not happen"
                )
    if args.packets and args.duration is not None:
        warn("--duration is ignored with --packets: the run ends when the packets are sent")
    same = identical_variants(preset.variants)
    if same:
        warn(
            "variants "
            + "; ".join(" = ".join(repr(x) for x in g) for g in same)
            + " are the same configuration: their rows differ only by measurement noise"
        )
    if args.json:
        check_output_file("--json", args.json)
    return preset


class _in_variant:
    """Prefix a ConfigError raised inside with the variant it concerns."""

    def __init__(self, i: int, label: str, on: bool = True) -> None:
        self.where = f"variants[{i}] ({label!r})" if on else ""

    def __enter__(self) -> None:
        return None

    def __exit__(self, tp, e, tb) -> None:
        if self.where and isinstance(e, ConfigError) and not getattr(e, "_variant", False):
            err = ConfigError(f"{self.where}: {e.field}", str(e)[len(e.field) + 2 :])
            err._variant = True  # type: ignore[attr-defined]
            raise err from None


def warn(message: str) -> None:
    """A dubious but legal input: said on stderr, as tc and ethtool do."""
    print(f"netq: warning: {message}", file=sys.stderr)


def check_output_file(flag: str, path: str) -> None:
    problem = output_path_problem(flag, path)
    if problem:
        raise UsageError(problem)


def check_output_dir(flag: str, path: str) -> None:
    if not os.path.isdir(path):
        raise UsageError(f"{flag}: {path} is not an existing directory")
    check_output_file(flag, os.path.join(path, f".netq-probe-{os.getpid()}"))


#: flag -> the config paths it sets (paths as varied_axes names them)
FLAG_AXES = {
    "cpus": ("cpus",),
    "cpu_map": ("cpu_map",),
    "strategy": ("strategy",),
    "profile": ("profile",),
    "lock_fairness": ("lock_fairness",),
    "lock_wait": ("lock_wait",),
    "tx_queues": ("devices[0].tx_queues", "devices[0].real_tx_queues"),
    "ring_size": ("devices[0].ring_size",),
    "qdisc": ("devices[0].qdisc",),
    "xps": ("devices[0].xps",),
    "rate": ("traffic.rate_pps",),
    "sockets": ("traffic.sockets_per_cpu",),
    "duration": ("duration",),
    "packets": ("packets",),
    "seed": ("seed",),
    "stall_timeout": ("stall_timeout",),
}


def _axes_of(cfg: RunConfig) -> dict[str, object]:
    out: dict[str, object] = {
        k: v
        for k, v in dataclasses.asdict(cfg).items()
        if k not in ("name", "devices", "traffic", "costs", "events")
    }
    out["strategy"] = cfg.effective_strategy  # a profile brings its own strategy
    for i, d in enumerate(cfg.devices):
        for k, v in dataclasses.asdict(d).items():
            out[f"devices[{i}].{k}"] = repr(v)
    for k in ("rate_pps", "sockets_per_cpu"):
        out[f"traffic.{k}"] = repr([getattr(t, k) for t in cfg.traffic])
    return out


def varied_axes(cfgs: list[RunConfig]) -> dict[str, list]:
    """The settings that differ between the variants: path -> their values."""
    if len(cfgs) < 2:
        return {}
    rows = [_axes_of(c) for c in cfgs]
    return {k: [r.get(k) for r in rows] for k in rows[0] if len({repr(r.get(k)) for r in rows}) > 1}


def refuse_axis_override(preset: Preset, axes: dict[str, list], args) -> None:
    """A flag that sets what the variants differ in would run them all the
    same under their old labels (a 4x "difference" between identical
    configurations): refused, naming the axis."""
    for flag, paths in FLAG_AXES.items():
        if getattr(args, flag) is None:
            continue
        hit = [p for p in paths if p in axes]
        if hit:
            opt = "--" + flag.replace("_", "-")
            vals = ", ".join(dict.fromkeys(str(v) for v in axes[hit[0]]))
            raise UsageError(
                f"{opt}: {preset.name!r} compares variants that differ in "
                f"{hit[0]} ({vals}); {opt} would make them all the same: drop it, "
                "or run one setting with --config"
            )


def identical_variants(variants: list[tuple[str, RunConfig]]) -> list[list[str]]:
    """Groups of variant labels whose configurations are equal (names aside)."""
    groups: dict[str, list[str]] = {}
    for label, cfg in variants:
        groups.setdefault(repr(dataclasses.replace(cfg, name="")), []).append(label)
    return [g for g in groups.values() if len(g) > 1]


def apply_flags(cfg: RunConfig, a) -> None:
    simple = {
        "cpus": "cpus",
        "strategy": "strategy",
        "profile": "profile",
        "duration": "duration",
        "packets": "packets",
        "seed": "seed",
        "lock_fairness": "lock_fairness",
        "lock_wait": "lock_wait",
        "stall_timeout": "stall_timeout",
    }
    for flag in ("rate", "duration", "stall_timeout"):
        v = getattr(a, flag)
        if v is not None and not math.isfinite(v):
            raise ConfigError("--" + flag.replace("_", "-"), f"a finite number, got {v!r}")
    for flag, attr in simple.items():
        v = getattr(a, flag)
        if v is not None:
            setattr(cfg, attr, v)
    if a.profile_dir is not None:
        cfg.profile_dir = a.profile_dir
    if a.clock is not None:
        cfg.clock = a.clock
    if a.slack is not None:
        cfg.slack_ns = a.slack
    if a.trace is not None:
        cfg.trace = a.trace
    if a.timeline is not None:
        cfg.timeline = a.timeline
    if not cfg.devices:
        raise ConfigError("devices", "at least one device ([[devices]])")
    if a.cpu_map is not None:
        try:
            cfg.cpu_map = [int(x) for x in a.cpu_map.split(",")]
        except ValueError:
            raise ConfigError("--cpu-map", "comma-separated host core numbers, e.g. 0,1") from None
    dev = cfg.devices[0]
    if a.tx_queues is not None:
        dev.tx_queues = a.tx_queues
        dev.real_tx_queues = None
        if dev.qdisc == "mq" and a.tx_queues == 1:
            dev.qdisc = "default"
    if a.ring_size is not None:
        dev.ring_size = a.ring_size
    if a.qdisc is not None:
        dev.qdisc = a.qdisc
    if a.xps:
        dev.xps = {}
        for item in a.xps:
            q, sep, mask = item.partition("=")
            if not sep or not q.strip().isdigit():
                raise ConfigError(
                    "--xps",
                    f"{item!r}: expected QUEUE=MASK with QUEUE a queue "
                    "number >= 0, e.g. 0=1 or 3=00000001,00000000",
                )
            if int(q) in dev.xps:
                raise ConfigError(
                    "--xps",
                    f"queue {int(q)} given twice ({dev.xps[int(q)]!r} and "
                    f"{mask!r}); one mask per queue",
                )
            dev.xps[int(q)] = mask
    for t in cfg.traffic:
        if a.rate is not None:
            t.rate_pps = a.rate
        if a.sockets is not None:
            t.sockets_per_cpu = a.sockets
    if a.cpus is not None:
        # per-device maps sized for the old CPU count no longer apply
        for d in cfg.devices:
            if d.irq_cpus is not None and any(c >= a.cpus for c in d.irq_cpus):
                d.irq_cpus = None
        for t in cfg.traffic:
            if t.cpus is not None:
                t.cpus = [c for c in t.cpus if c < a.cpus] or None


def _join_dash_values(argv: list[str]) -> list[str]:
    """``--xps -1=1`` as ``--xps=-1=1``: argparse takes a value starting
    with '-' for an option and says only "expected one argument"; joined,
    the value reaches the check that names what is wrong with it."""
    out, i = [], 0
    while i < len(argv):
        if (
            argv[i] in ("--xps", "--cpu-map")
            and i + 1 < len(argv)
            and argv[i + 1].startswith("-")
            and not argv[i + 1].startswith("--")
        ):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def _alone(args, flag: str) -> None:
    """--cleanup and --list act alone: any other argument is refused, not ignored."""
    others = [
        k
        for k, v in vars(args).items()
        if k not in (flag, "quiet") and v is not None and v is not False
    ]
    if others:
        names = ", ".join(
            "the preset" if k == "preset" else "--" + k.replace("_", "-") for k in others
        )
        raise UsageError(f"--{flag} takes no other argument (got {names})")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["stress"]:  # the CI stress job has its own flags
        return stress_main(argv[1:])
    parser = build_parser()
    try:
        with terminate_on_signals():
            try:
                args = parser.parse_args(_join_dash_values(argv))
                if args.cleanup:
                    _alone(args, "cleanup")
                    ended = end_stale_processes()
                    removed = cleanup_stale()
                    print(
                        f"ended {len(ended)} leftover netq process(es)"
                        + "".join(f"\n  {r}" for r in ended)
                    )
                    print(
                        f"removed {len(removed)} stale netq IPC object(s)"
                        + "".join(f"\n  {r}" for r in removed)
                    )
                    return 0
                if args.list:
                    _alone(args, "list")
                    for p in presets().values():
                        print(f"{p.name:12s} {p.summary}")
                    return 0
                preset = resolve(args)
            except UsageError as e:
                print(f"netq: error: {e}", file=sys.stderr)
                return EXIT_USAGE
            except ConfigError as e:
                print(f"netq: bad configuration: {e}", file=sys.stderr)
                return EXIT_USAGE
            return run_preset(preset, args.json, quiet=args.quiet)
    except KeyboardInterrupt:
        print("netq: interrupted (SIGINT)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Terminated as e:
        print(f"netq: terminated by signal {e.signum}", file=sys.stderr)
        return EXIT_TERMINATED


def variant_path(path: str, label: str) -> str:
    """``PATH`` for one of several variants: ``STEM-LABEL.EXT`` (the label
    made a file name), so that each variant's file is its own."""
    stem, ext = os.path.splitext(path)
    return f"{stem}-{_slug(label)}{ext}"


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label).strip("._") or "variant"


def _write_trace(t: TraceData, cfg: RunConfig, label: str, many: bool, quiet: bool) -> None:
    """Write a traced variant's Perfetto trace and timeline picture."""
    for key in ("trace", "timeline"):
        path = getattr(cfg, key)
        if path is None:
            continue
        path = variant_path(path, label) if many else path
        if key == "trace":
            # the trace extra's; imported only when a trace is written
            from . import perfetto

            perfetto.write(t, path)
        else:
            from . import timeline

            timeline.draw(t, path)
        if not quiet:
            lost = (
                f" ({t.total_dropped} events dropped: the logs were full)"
                if t.total_dropped
                else ""
            )
            print(f"netq: wrote {path}{lost}", flush=True)


def _variant_dir(base: str, label: str) -> str:
    """``base/LABEL`` (the label made a file name), created."""
    path = os.path.join(base, _slug(label))
    os.makedirs(path, exist_ok=True)
    return path


def run_preset(preset: Preset, json_path: str | None, quiet: bool = False) -> int:
    """Run every variant and report; the exit code (see the module doc).

    Ctrl-C or SIGTERM/SIGHUP inside a run end that run with a partial report
    and 130/143; outside a run (starting, reporting) they reach main()."""
    results = []
    code = 0
    for label, cfg in preset.variants:
        if not quiet:
            print(f"== {preset.name}: {label} ==", flush=True)
        if cfg.profile_dir is not None and len(preset.variants) > 1:
            # one directory per variant, or each would overwrite the last's
            cfg = dataclasses.replace(cfg, profile_dir=_variant_dir(cfg.profile_dir, label))
        outcome = Supervisor(cfg).run()
        if outcome.trace is not None:
            _write_trace(outcome.trace, cfg, label, len(preset.variants) > 1, quiet)
        res = outcome.result
        res["label"] = label
        results.append(res)
        if not quiet or outcome.exit_code:
            print(report.text(res), flush=True)
        if outcome.exit_code:
            code = outcome.exit_code
            break
    if len(results) > 1 or preset.compare:
        print(report.comparison(preset, results))
    if preset.explain and not quiet:
        print(report.wrap("What to look at: " + preset.explain))
    if json_path:
        # The top level is the first variant (so every documented key is
        # there); a multi-variant preset also lists all variants.
        doc = dict(results[0])
        doc["preset"] = preset.name
        if len(results) > 1:
            doc["variants"] = results
        if preset.ratios:
            doc["ratios"] = report.ratios(preset, results)
        with open(json_path, "w") as f:
            json.dump(strict_json(doc), f, indent=1, default=str, allow_nan=False)
    if code == EXIT_INTERRUPTED:
        print("netq: interrupted (SIGINT)", file=sys.stderr)
    elif code == EXIT_TERMINATED:
        print("netq: terminated", file=sys.stderr)
    return code


def strict_json(v):
    """``v`` with every NaN/infinity as null: the JSON is always strict
    (RFC 8259 has no NaN), so any parser reads it."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: strict_json(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [strict_json(x) for x in v]
    return v


if __name__ == "__main__":
    sys.exit(main())
