"""A study described in a TOML file (``sweep.py --file STUDY.toml``).

The file names a base experiment and the axes to vary; the points are every
combination of the axes' values, in the order the axes are written (the last
axis varies fastest)::

    name = "senders"                 # the study's name (default: the file's stem)
    summary = "busylock vs rootlock, 1-4 senders"
    duration = 1.0                   # seconds of traffic per point (default 1.5)
    repeat = 3                       # repetitions of every point (default 3)

    [base]                           # an experiment, as ``--config`` reads it
    profile = "3.13"
    [[base.devices]]
    name = "eth0"
    [[base.traffic]]
    sockets_per_cpu = 1

    [axes]                           # dotted paths into [base] -> the values to try
    cpus = [1, 2, 4]
    strategy = ["rootlock", "busylock"]
    "costs.bounce_ns" = [0, 2000]
    "devices.0.tx_queues" = [1, 4]

A path names a key of the experiment (``cpus``), of a table in it
(``costs.bounce_ns``) or of one element of a list of tables
(``devices.0.tx_queues``, ``traffic.1.rate_pps``).  Every point is checked
as ``--config`` checks a file before anything runs: a bad one is one line
naming the axis, its value and the field, exit 2.

The rows have the built-in studies' columns (the point's CPUs, first
device's queues and qdisc, profile, strategy, ...), and ``series`` holds the
axes' values ("cpus=2, strategy=busylock"), so ``--resume``, the table and
the JSON work as for the built-in studies; the plot is one bar per point.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import os
from typing import Any

from netq.machine.config import ConfigError, from_dict, read_toml

from .rows import Usage
from .studies import STUDIES, Point, Study

#: what a study file may hold at its top level
FILE_KEYS = ("name", "summary", "duration", "repeat", "base", "axes")
#: most points one file may describe (every combination of the axes)
MAX_POINTS = 10_000
DEFAULT_DURATION_S = 1.5
DEFAULT_REPEAT = 3


def load(path: str) -> Study:
    """The study ``path`` describes; :class:`Usage` (one line) if it is bad."""
    try:
        doc = read_toml(path, "--file")
    except ConfigError as e:
        raise Usage(str(e)) from None
    for k in doc:
        if k not in FILE_KEYS:
            raise Usage(f"{path}: {k}: unknown key; allowed: {', '.join(FILE_KEYS)}")
    name = doc.get("name", os.path.splitext(os.path.basename(path))[0])
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "-_" for c in name):
        raise Usage(f"{path}: name: letters, digits, '-' and '_' (it names the output files)")
    if name in STUDIES:
        raise Usage(f"{path}: name: {name!r} is a built-in study; choose another")
    summary = doc.get("summary", f"{name} (from {os.path.basename(path)})")
    if not isinstance(summary, str):
        raise Usage(f"{path}: summary: a string")
    duration = doc.get("duration", DEFAULT_DURATION_S)
    if (
        isinstance(duration, bool)
        or not isinstance(duration, (int, float))
        or not 0 < duration <= 3600
    ):
        raise Usage(f"{path}: duration: seconds per point, > 0 and <= 3600")
    repeat = doc.get("repeat", DEFAULT_REPEAT)
    if isinstance(repeat, bool) or not isinstance(repeat, int) or not 1 <= repeat <= 1000:
        raise Usage(f"{path}: repeat: an integer from 1 to 1000")
    base = doc.get("base", {})
    if not isinstance(base, dict):
        raise Usage(f"{path}: base: a table (an experiment, as --config reads it)")
    for k in ("duration", "packets", "name", "seed", "events", "clock"):
        if k in base:
            raise Usage(
                f"{path}: base.{k}: set by the study (a duration per point at the top level, "
                "the seed from the repetition, the clock by --clock; no packet budget, no events)"
            )
    axes = doc.get("axes")
    if not isinstance(axes, dict) or not axes:
        raise Usage(f"{path}: axes: a table of path = [values], e.g. cpus = [1, 2, 4]")
    for k, vals in axes.items():
        if not isinstance(vals, list) or not vals:
            raise Usage(f"{path}: axes.{k}: a non-empty list of values")
        if len({json.dumps(v, sort_keys=True) for v in vals}) != len(vals):
            raise Usage(f"{path}: axes.{k}: the values repeat")
    n = math.prod(len(vals) for vals in axes.values())
    if n > MAX_POINTS:
        raise Usage(f"{path}: axes: {n} points; at most {MAX_POINTS}")
    specs = [
        (_label(axes, combo), _spec(path, base, axes, combo))
        for combo in itertools.product(*axes.values())
    ]

    def points(quick: bool, dur: float, bounce: tuple[int, ...]) -> list[Point]:
        return [_point(name, label, spec, dur) for label, spec in specs]

    return Study(name, summary, float(duration), repeat, (), points, quick_bounce=())


def _label(axes: dict[str, list], combo: tuple) -> str:
    return ", ".join(f"{k}={_text(v)}" for k, v in zip(axes, combo))


def _text(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v)


def _spec(path: str, base: dict, axes: dict[str, list], combo: tuple) -> dict:
    """``base`` with the axes set to ``combo``, checked as --config checks a file."""
    d = copy.deepcopy(base)
    for key, v in zip(axes, combo):
        _set(path, d, key, v)
    try:
        cfg = from_dict(d)
        cfg.validate()
    except ConfigError as e:
        raise Usage(f"{path}: the point {_label(axes, combo)}: {e}") from None
    return d


def _set(path: str, d: dict, key: str, v: Any) -> None:
    parts = key.split(".")
    node: Any = d
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise Usage(
                    f"{path}: axes.{key}: {'.'.join(parts[:i])} has {len(node)} entries in "
                    f"[base]; {part!r} is not one of them"
                )
            node = node[int(part)]
        elif isinstance(node, dict):
            nxt = parts[i + 1]
            node = node.setdefault(part, [] if nxt.isdigit() else {})
        else:
            raise Usage(f"{path}: axes.{key}: {'.'.join(parts[: i + 1])} is not a table")
    if not isinstance(node, dict):
        raise Usage(f"{path}: axes.{key}: does not name a key of a table")
    node[parts[-1]] = v


def _point(study: str, label: str, spec: dict, duration: float) -> Point:
    """A point with the row columns of what it runs."""
    cfg = from_dict(spec)
    phys = next((d for d in cfg.devices if not d.is_virtual), None)
    return Point(
        study,
        cfg.cpus,
        phys.tx_queues if phys else 1,
        ("map" if phys.xps else "none") if phys and phys.tx_queues > 1 else "-",
        cfg.strategy or "default",
        cfg.lock_fairness,
        cfg.costs.bounce_ns,
        duration,
        profile=cfg.profile,
        qdisc=phys.qdisc if phys else "noqueue",
        lock_wait=cfg.lock_wait or "auto",
        pfifo_fast_nolock=cfg.effective_pfifo_fast_nolock,
        series=label,
        spec=json.dumps(spec, sort_keys=True),
    )
