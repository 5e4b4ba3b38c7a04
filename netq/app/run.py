"""``python -m netq.run``: run an experiment and report it.

    python -m netq.run                    the default experiment (XPS on/off)
    python -m netq.run PRESET             a named experiment (--list shows them)
    python -m netq.run --config exp.toml  an experiment file
    python -m netq.run --cleanup          remove IPC objects of crashed runs

Flags override the preset or file for every variant.  Exit codes: 0 ok;
1 a run failed (worker died, stall, an invariant broke); 2 bad usage or
configuration (one line naming the field, nothing created); 130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from netq.machine.config import ConfigError, RunConfig, from_dict
from .presets import Preset, default_preset, presets
from netq.kernel.profiles import PROFILES, STRATEGIES

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
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
    p.add_argument("--qdisc", help="qdisc of the first device: default, pfifo_fast, pfifo, mq, noqueue")
    p.add_argument("--strategy", help="how a locked qdisc is entered: " + ", ".join(STRATEGIES))
    p.add_argument("--profile", help="kernel profile: " + ", ".join(PROFILES))
    p.add_argument("--xps", action="append", metavar="QUEUE=MASK",
                   help="XPS for the first device as tx-QUEUE/xps_cpus takes it (hex mask, "
                        "comma-separated 32-bit groups); repeatable")
    p.add_argument("--rate", type=float, metavar="PPS", help="packets/s per CPU (0 floods)")
    p.add_argument("--sockets", type=int, help="sockets (flows) per CPU")
    p.add_argument("--duration", type=float, metavar="S", help="seconds of traffic per variant")
    p.add_argument("--packets", type=int, help="stop after this many packets (instead of duration)")
    p.add_argument("--seed", type=int, help="fix hashrnd, socket hashes, lengths")
    p.add_argument("--lock-fairness", help="fifo (ticket/qspinlock order) or unfair")
    p.add_argument("--lock-wait", help="spin, block or adaptive (default: chosen from cores)")
    p.add_argument("--stall-timeout", type=float, metavar="S", help="no progress for S seconds = stall")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON (schema in README)")
    p.add_argument("--quiet", action="store_true", help="print only the comparison / summary")
    p.add_argument("--cleanup", action="store_true",
                   help="remove /dev/shm objects of crashed netq runs (live runs untouched)")
    return p


def resolve(args) -> Preset:
    """The variants to run, with the flags applied; raises ConfigError/UsageError."""
    if args.config and args.preset:
        raise UsageError("give a preset or --config, not both")
    if args.config:
        try:
            with open(args.config, "rb") as f:
                data = tomllib.load(f)
        except OSError as e:
            raise UsageError(f"--config: cannot read {args.config}: {e.strerror}") from None
        except tomllib.TOMLDecodeError as e:
            raise UsageError(f"--config: {args.config} is not valid TOML: {e}") from None
        explain = data.pop("explain", "")
        if "variants" in data:
            base = {k: v for k, v in data.items() if k != "variants"}
            variants = []
            for i, v in enumerate(data["variants"]):
                if not isinstance(v, dict):
                    raise ConfigError(f"variants[{i}]", "a table")
                label = v.pop("label", f"variant {i}")
                variants.append((label, from_dict({**base, **v})))
        else:
            variants = [(data.get("name", os.path.basename(args.config)), from_dict(data))]
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
    for _, cfg in preset.variants:
        apply_flags(cfg, args)
        cfg.validate()
    return preset


def apply_flags(cfg: RunConfig, a) -> None:
    simple = {"cpus": "cpus", "strategy": "strategy", "profile": "profile", "duration": "duration",
              "packets": "packets", "seed": "seed", "lock_fairness": "lock_fairness",
              "lock_wait": "lock_wait", "stall_timeout": "stall_timeout"}
    for flag, attr in simple.items():
        v = getattr(a, flag)
        if v is not None:
            setattr(cfg, attr, v)
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
                raise ConfigError("--xps", f"{item!r}: expected QUEUE=MASK, e.g. 0=1 or 3=00000001,00000000")
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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["stress"]:  # the CI stress job has its own flags
        from .stress import main as stress_main

        return stress_main(argv[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.cleanup:
            from shm.ipc import cleanup_stale

            removed = cleanup_stale()
            print(f"removed {len(removed)} stale netq IPC object(s)" +
                  ("".join(f"\n  {r}" for r in removed)))
            return 0
        if args.list:
            for p in presets().values():
                print(f"{p.name:12s} {p.summary}")
            return 0
        preset = resolve(args)
    except UsageError as e:
        print(f"netq: error: {e}", file=sys.stderr)
        return 2
    except ConfigError as e:
        print(f"netq: bad configuration: {e}", file=sys.stderr)
        return 2
    return run_preset(preset, args.json, quiet=args.quiet)


def run_preset(preset: Preset, json_path: str | None, quiet: bool = False) -> int:
    from workers.supervisor import Supervisor

    from . import report

    results = []
    code = 0
    for label, cfg in preset.variants:
        if not quiet:
            print(f"== {preset.name}: {label} ==", flush=True)
        try:
            outcome = Supervisor(cfg).run()
        except KeyboardInterrupt:
            print("netq: interrupted", file=sys.stderr)
            return 130
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
            json.dump(doc, f, indent=1, default=str)
    return code


if __name__ == "__main__":
    sys.exit(main())
